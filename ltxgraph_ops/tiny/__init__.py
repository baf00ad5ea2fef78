"""Tiny random models in the exact real checkpoint key layout.

One module per checkpoint component. Each exposes ``COMPONENT`` (a name), ``PREFIX`` (its key prefix in the
single-file checkpoint, "" for a file of its own), ``SECTION`` (its header ``config`` section name, or None),
``tiny_config() -> dict`` (in the header's own format) and ``build(config) -> torch.nn.Module`` (whose
state-dict keys, with PREFIX prepended, are the checkpoint's keys). :mod:`ltxgraph_ops.tiny.files` writes files from them.
"""
