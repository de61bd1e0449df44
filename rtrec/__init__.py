"""rtrec: a recording proxy for the OpenAI Realtime API."""

__version__ = "0.1.0"
