"""The error every command raises for a problem the user can fix."""


class CommandError(Exception):
    """A problem the user can fix, reported as one line and exit status 1."""
