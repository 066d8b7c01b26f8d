"""The cases of `tool/benchmark.py`, one module each; `measure` holds the timing and memory
helpers they share."""
