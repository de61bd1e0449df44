"""`python -m recorder.check_db URL`: the recorder's checks of a database URL, for the relay.

The relay validates `rtrec_db` without loading SQLAlchemy itself: it runs this and reads one line,
`ready` or `error: …`, as it reads the recorder process's start. Only the URL and file checks, no
connection, so a database that is down does not stop a proxy from starting.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from storage.db import DatabaseURLError, make_engine


def main(argv: Sequence[str] | None = None) -> int:
    (db_url,) = sys.argv[1:] if argv is None else argv
    try:
        make_engine(db_url).dispose()
    except DatabaseURLError as exc:
        reason = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        print(f"error: {reason}", flush=True)
        return 2
    print("ready", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
