"""Text features and connectors: parity with ltx-core (tools/oracle/text.py, batch of two with different
padding), registers, and the 19B connector layout against the manifest."""
from __future__ import annotations

import json

import pytest
import torch

from ltxgraph_ops.models.text_connectors import ConnectorConfig, with_registers
from ltxgraph_ops.tiny import connector as tiny
from tools.oracle import text as oracle

from ..conftest import REFERENCE


def test_valid_tokens_move_to_the_front_and_registers_fill_the_rest() -> None:
    x = torch.arange(2 * 4 * 1, dtype=torch.float32).view(2, 4, 1) + 100
    mask = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 1]])
    registers = torch.tensor([[1.0], [2.0]])
    out = with_registers(x, mask, registers)
    assert out[0, :, 0].tolist() == [102, 103, 1, 2] and out[1, :, 0].tolist() == [105, 106, 107, 2]
    short = with_registers(x[:, 1:], mask[:, 1:], registers)   # 3 tokens -> 4 (a multiple of the 2 registers)
    assert short[0, :, 0].tolist() == [102, 103, 1, 2] and short[1, :, 0].tolist() == [105, 106, 107, 2]


def test_connectors_without_feed_forward_bias_are_refused() -> None:
    with pytest.raises(ValueError, match="connector_ff_bias"):
        ConnectorConfig.from_header({**tiny.full_config(), "connector_ff_bias": False})


def test_full_size_layout_matches_the_manifest() -> None:
    manifest = json.loads((REFERENCE / "ltx2_19b_manifest.json").read_text())["connector"]
    model = tiny.build(tiny.full_config(), device="meta")
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == {k: v[0] for k, v in manifest.items()}


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(oracle.CHECKS))
def test_parity(name: str) -> None:
    assert oracle.CHECKS[name]() <= 1e-5
