"""rtrec's relay with recording switched off: what recording costs is measured against it.

`python -m benchmarks.unrecorded PORT UPSTREAM` runs the same lean mitmproxy master as
`rtrec proxy`, without the recorder addon, until SIGTERM.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys

from proxy.master import relay_master


async def serve(port: int, upstream: str) -> None:
    master = relay_master()
    # mitmproxy's OptManager.update is unannotated.
    master.options.update(  # type: ignore[no-untyped-call]
        mode=[f"reverse:{upstream}"], listen_host="127.0.0.1", listen_port=port
    )
    gc.collect()
    gc.freeze()  # as `rtrec proxy` does
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, master.shutdown)
    await master.run()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), sys.argv[2]))
