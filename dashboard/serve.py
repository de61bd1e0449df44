"""The dashboard's server process: imports what the pages use, then runs Streamlit's server.

Streamlit runs every page script in this process, where `sys.modules` is shared: importing the
dashboard's modules (pandas, SQLAlchemy, storage, analysis) here, before the server listens, takes
that cost off the first browser session, which would otherwise pay seconds for it.
It also turns Nagle's algorithm off on the server's connections (`serve_without_nagle`) and
freezes the start-up heap out of the garbage collector's reach (`settle_heap`).
`python -m dashboard.serve run dashboard/app.py --server.port …` takes `streamlit`'s own arguments.
"""

from __future__ import annotations

import gc
import importlib
import logging
import pkgutil
import socket
import sys
from types import ModuleType

import dashboard

# The entry script and the modules that start and warm the server are no part of a page.
NOT_PAGE_MODULES = frozenset({"app", "launch", "serve", "warm"})
# What Streamlit itself imports only when a page first draws a table (pandas' Styler brings
# Jinja2: a third of a second) or a chart.
FIRST_DRAW_MODULES = (
    "pyarrow",
    "pandas.io.formats.style",
    "streamlit.dataframe_util",
    "streamlit.elements.vega_charts",
)


def _no_runtime_yet(record: logging.LogRecord) -> bool:
    # `st.cache_data` checks its parameters against a runtime that starts after these imports;
    # the check passes, and its warning about the missing runtime would only puzzle a reader.
    return "No runtime found" not in record.getMessage()


def preload() -> list[ModuleType]:
    """Import every module the pages use, and what Streamlit needs to draw their tables."""
    names = [
        f"dashboard.{info.name}"
        for info in pkgutil.iter_modules(dashboard.__path__)
        if info.name not in NOT_PAGE_MODULES
    ]
    cache_log = logging.getLogger("streamlit.runtime.caching.cache_data_api")
    cache_log.addFilter(_no_runtime_yet)
    try:
        return [importlib.import_module(name) for name in (*names, *FIRST_DRAW_MODULES)]
    finally:
        cache_log.removeFilter(_no_runtime_yet)


def serve_without_nagle() -> None:
    """Has Streamlit's server send on its connections with Nagle's algorithm off (TCP_NODELAY).

    Streamlit binds its listening socket with protocol number 0, and asyncio turns Nagle off only
    on sockets that say IPPROTO_TCP: every response after a connection's first then waits for
    the browser's delayed ACK (40 ms on Linux) between its headers and its body, and the first
    page's ~130 static files spend most of a second waiting. Accepted sockets inherit the option.
    """
    from streamlit.web.server.starlette import starlette_server

    bind = getattr(starlette_server, "_bind_socket", None)
    if bind is None:  # another Streamlit: `tests/test_dashboard_serve.py` says so
        logging.getLogger(__name__).warning("Streamlit binds its socket elsewhere: Nagle stays on")
        return

    def bind_without_nagle(address: str, port: int, backlog: int) -> socket.socket:
        listening: socket.socket = bind(address, port, backlog)
        listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return listening

    starlette_server._bind_socket = bind_without_nagle


def settle_heap() -> None:
    """Moves every object alive now (the imported libraries: ~140,000) out of the collector's
    reach. Streamlit collects all generations after each script run (`runner.postScriptGC`),
    holding the GIL while the run's last message, the one that ends the page's "Running…", waits
    for the event loop: 0.15 s per run over the start-up heap on this machine, next to none after.
    """
    gc.collect()
    gc.freeze()


def main() -> None:
    preload()
    serve_without_nagle()
    from streamlit.web import cli

    settle_heap()
    sys.argv = ["streamlit", *sys.argv[1:]]
    cli.main(prog_name="streamlit")


if __name__ == "__main__":
    main()
