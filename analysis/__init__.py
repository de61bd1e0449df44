"""Pure analysis of recorded sessions shared by the CLI and the dashboard: diff, conversation,
latency statistics and export formats, over the plain dicts that `storage` reads return."""
