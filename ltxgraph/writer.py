"""Write graph dicts as readable YAML (block style, multi-line strings as literal blocks)."""
from __future__ import annotations

from typing import Any

import yaml


class _GraphDumper(yaml.SafeDumper):
    pass


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_GraphDumper.add_representer(str, _string)


def graph_yaml(graph: dict[str, Any], header: str = "") -> str:
    """The YAML text of a graph dict; ``header`` lines become leading comments."""
    body = yaml.dump(graph, Dumper=_GraphDumper, sort_keys=False, allow_unicode=True, width=100)
    comments = "".join(f"# {line}\n" for line in header.splitlines())
    return comments + body
