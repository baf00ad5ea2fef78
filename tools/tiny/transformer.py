"""Transitional alias of :mod:`ltxgraph_ops.tiny.transformer`."""
from ltxgraph_ops.tiny.transformer import *  # noqa: F401,F403
from ltxgraph_ops.tiny.transformer import full_config, tiny_config, build, COMPONENT, PREFIX, SECTION  # noqa: F401
