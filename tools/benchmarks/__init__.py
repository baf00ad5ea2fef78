"""Benchmarks (not tests). One module per subject; each exposes ``BENCHMARKS: dict[str, Callable[[], dict]]``
whose callables return JSON-serialisable figures. ``tools/bench.py`` runs them."""
