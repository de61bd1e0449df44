"""Benchmarks: rtrec against stock mitmdump and LiteLLM, run with `python -m benchmarks.run`."""
