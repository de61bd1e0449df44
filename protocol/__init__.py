"""What rtrec knows about the APIs it records, as pure functions over decoded events.

`events` names every event type and set, `readers` reads events, responses, items, usage and
sessions, `pricing` and `redact` hold the price table and the secret rules. The names of `events`
and `readers` are also the package's own (`protocol.RESPONSE_DONE`, `protocol.response_usage`), so
callers write `import protocol`. This package imports no other product package.
"""

from protocol.events import *  # noqa: F403
from protocol.readers import *  # noqa: F403
