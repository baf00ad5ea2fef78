"""ltxgraph: a declarative graph execution engine, headless, with typed ports and a content-hash cache.

    import ltxgraph
    result = ltxgraph.load("graphs/t2v_distilled.yaml").run(params={"seed": 7})
"""
from .api import Graph, RunResult, Runner, load
from .errors import InvalidInput, LtxGraphError, NodeError, ValidationError
from .registry import Port, Registry, op

__all__ = ["Graph", "RunResult", "Runner", "load", "op", "Port", "Registry",
           "LtxGraphError", "InvalidInput", "NodeError", "ValidationError"]
