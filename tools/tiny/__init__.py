"""Transitional: tiny-model modules being written here move to :mod:`ltxgraph_ops.tiny` (the contract is
documented there)."""
