"""ltxgraph: a declarative graph execution engine, headless, with typed ports and a content-hash cache.

    import ltxgraph
    result = ltxgraph.load("graphs/ltx2_t2v_distilled.yaml").run(params={"seed": 7, "length": 49})
    print(result.report.files)
"""
from .api import Graph, RunResult, Runner, load
from .context import RunSettings
from .errors import InvalidInput, LtxGraphError, NodeError, ValidationError
from .events import ProgressEvent
from .media_limits import MediaLimits
from .paths import Folders
from .registry import Port, Registry, graph_check, op

__all__ = ["Graph", "RunResult", "Runner", "load", "op", "graph_check", "Port", "Registry", "Folders", "RunSettings",
           "MediaLimits", "ProgressEvent", "LtxGraphError", "InvalidInput", "NodeError", "ValidationError"]
