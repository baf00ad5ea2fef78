from __future__ import annotations

import pytest
import torch

from ltxgraph_ops.handles import ModelHandle


class AddOne:
    def attach(self, module):
        module.weight.data += 1
        return lambda: module.weight.data.sub_(1)


def test_patches_apply_only_inside_the_block_and_handles_stay_independent() -> None:
    module = torch.nn.Linear(2, 2, bias=False)
    torch.nn.init.zeros_(module.weight)
    base = ModelHandle(module, "x.safetensors")
    patched = base.with_patch(AddOne(), {"reference_downscale_factor": 2}).with_patch(AddOne())
    with patched.applied() as m:
        assert torch.equal(m.weight, torch.full((2, 2), 2.0))
    with base.applied() as m:
        assert torch.equal(m.weight, torch.zeros(2, 2))
    with pytest.raises(RuntimeError):
        with patched.applied():
            raise RuntimeError("sampler failed")
    assert torch.equal(module.weight, torch.zeros(2, 2)) and patched.metadata == {"reference_downscale_factor": 2}
    assert base.patches == () and base.metadata == {}
