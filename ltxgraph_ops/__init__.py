"""ltxgraph's op library: LTX-2 models and the ops that expose them to graphs.

The engine discovers ops through the ``ltxgraph.ops`` entry-point group; this package is registered there as
``builtin``. Model code lives in :mod:`ltxgraph_ops.models` (pure torch) and knows nothing of graphs.
"""
