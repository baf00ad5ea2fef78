"""Parity checks against Lightricks' reference implementation (ltx-core 1.0.0, a test-only dependency).

One module per component family. Each module exposes ``CHECKS: dict[str, Callable[[], float]]``: every callable
builds identical tiny weights in ltxgraph's module and in the reference's, runs both in float32 on the CPU and
returns the max absolute error. ``tools/parity.py`` runs them all; ``tests/`` asserts each against its bound.
"""
