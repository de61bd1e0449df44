"""One module per `rtrec` command: each has `add_parser(commands)` and `run(args)`.

A command module imports only argparse-level things at the top; what its command needs (SQLAlchemy,
mitmproxy, Streamlit …) it imports inside `run`, so `rtrec --help` loads none of it.
"""
