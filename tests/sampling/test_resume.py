"""Per-step sampler checkpoints (ltxgraph.resume): every sampler stopped after step k and run again from its
checkpoint gives the bit-identical result of an uninterrupted run; a damaged checkpoint or one of another node
key is discarded with a warning and the sampler starts from step 0; --no-resume removes old checkpoints."""
from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import torch

from ltxgraph.cache import DiskStore
from ltxgraph.resume import NodeCheckpoints, StopRequest, checkpoint_name, decode_state, encode_state, SamplerState
from ltxgraph_ops.sampling.samplers import SAMPLERS, sample_euler_ancestral

SIGMAS = torch.tensor([1.0, 0.9, 0.7, 0.45, 0.2, 0.0])
KEY = "a" * 40


class ToyDenoiser:
    """A fixed nonlinear x0 prediction with a negative-prompt estimate (for the CFG++ samplers)."""

    def __init__(self) -> None:
        self.calls = 0
        self.unconditional = None

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.unconditional = torch.tanh(x * 0.5)
        return torch.tanh(x * (1.0 - 0.3 * sigma)) * 0.8

    def keep_unconditional(self) -> bool:
        return True

    def last_unconditional(self) -> torch.Tensor:
        return self.unconditional


class StopAfter(NodeCheckpoints):
    """Checkpoints whose run is asked to stop once step ``stop_at`` is written (as Ctrl-C would)."""

    def __init__(self, folder: Path, stop_at: int, **kwargs) -> None:
        self.stop_at = stop_at
        super().__init__(folder, KEY, **kwargs)

    def next_call(self, total: int):
        checkpoint = super().next_call(total)
        save = checkpoint.save

        def save_then_stop(step, x, generators, history=None):
            self.stop.requested = step == self.stop_at
            save(step, x, generators, history)

        checkpoint.save = save_then_stop
        return checkpoint


def run(sampler, checkpoints: NodeCheckpoints | None, seed: int = 7) -> tuple[torch.Tensor, int]:
    start = torch.randn(2, 48, generator=torch.Generator().manual_seed(1))
    denoiser = ToyDenoiser()
    checkpoint = None if checkpoints is None else checkpoints.next_call(len(SIGMAS) - 1)
    out = sampler(denoiser, start, SIGMAS, generator=torch.Generator().manual_seed(seed), checkpoint=checkpoint)
    return out, denoiser.calls


SAMPLER_CASES = {**SAMPLERS, "euler_ancestral_eta_half": partial(sample_euler_ancestral, eta=0.5, s_noise=0.9)}


@pytest.mark.parametrize("name", sorted(SAMPLER_CASES))
@pytest.mark.parametrize("stop_at", [1, 3, 5])
def test_stopped_sampler_resumes_bit_identically(tmp_path, name, stop_at):
    sampler = SAMPLER_CASES[name]
    clean, clean_calls = run(sampler, None)
    with pytest.raises(KeyboardInterrupt):
        run(sampler, StopAfter(tmp_path, stop_at))
    assert [p.name for p in tmp_path.iterdir()] == [checkpoint_name(0, stop_at)]   # only the newest step kept
    resumed_at = []
    resumed, calls = run(sampler, NodeCheckpoints(tmp_path, KEY, on_resumed=lambda k, n: resumed_at.append((k, n))))
    assert resumed_at == [(stop_at, len(SIGMAS) - 1)]
    assert torch.equal(resumed, clean)
    assert calls < clean_calls or stop_at == len(SIGMAS) - 1 and calls <= clean_calls


def test_ancestral_resume_needs_the_generator_state(tmp_path):
    """The restored generator state matters: the same checkpoint with its generator state dropped would differ."""
    clean, _ = run(sample_euler_ancestral, None)
    with pytest.raises(KeyboardInterrupt):
        run(sample_euler_ancestral, StopAfter(tmp_path, 2))
    path = tmp_path / checkpoint_name(0, 2)
    x = torch.zeros(2, 48)
    state = decode_state(path.read_bytes(), KEY, 0, len(SIGMAS) - 1, x)
    fresh = torch.Generator().manual_seed(7).get_state()
    path.write_bytes(encode_state(KEY, 0, SamplerState(state.step, state.total, state.x, state.history,
                                                       {"noise": fresh})))
    assert not torch.equal(run(sample_euler_ancestral, NodeCheckpoints(tmp_path, KEY))[0], clean)


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_damaged_checkpoint_is_discarded_and_recomputed(tmp_path, damage):
    clean, clean_calls = run(SAMPLERS["euler_ancestral"], None)
    with pytest.raises(KeyboardInterrupt):
        run(SAMPLERS["euler_ancestral"], StopAfter(tmp_path, 3))
    path = tmp_path / checkpoint_name(0, 3)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[-5] ^= 0xFF
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    warnings: list[str] = []
    out, calls = run(SAMPLERS["euler_ancestral"], NodeCheckpoints(tmp_path, KEY, warn=warnings.append))
    assert torch.equal(out, clean) and calls == clean_calls
    assert len(warnings) == 1 and "damaged sampler checkpoint call-000-step-000003.ckpt" in warnings[0]


def test_checkpoint_of_another_key_or_shape_is_not_used(tmp_path):
    clean, clean_calls = run(SAMPLERS["euler"], None)
    with pytest.raises(KeyboardInterrupt):
        run(SAMPLERS["euler"], StopAfter(tmp_path, 3))
    warnings: list[str] = []
    out, calls = run(SAMPLERS["euler"], NodeCheckpoints(tmp_path, "b" * 40, warn=warnings.append))
    assert torch.equal(out, clean) and calls == clean_calls
    assert "key" in warnings[0]
    with pytest.raises(KeyboardInterrupt):
        run(SAMPLERS["euler"], StopAfter(tmp_path, 3))
    other = NodeCheckpoints(tmp_path, KEY, warn=warnings.append).next_call(len(SIGMAS) - 1)
    step, _ = other.restore(torch.zeros(3, 48), {})
    assert step == 0 and "shape" in warnings[-1]


def test_no_resume_removes_old_checkpoints(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run(SAMPLERS["euler"], StopAfter(tmp_path / "node", 2))
    assert (tmp_path / "node").is_dir()
    NodeCheckpoints(tmp_path / "node", KEY, resume=False)
    assert not (tmp_path / "node").exists()


def test_stop_request_defers_only_inside_a_sampler():
    stop = StopRequest()
    with pytest.raises(KeyboardInterrupt):
        stop._handle(2, None)
    with stop.deferred():
        stop._handle(2, None)             # first signal: finish the step
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            stop._handle(2, None)         # second signal: at once
    with pytest.raises(KeyboardInterrupt):
        stop.check()


def test_checkpoint_writes_trim_the_disk_cache_to_its_limit(tmp_path):
    store = DiskStore(tmp_path, {}, max_bytes=15_000)
    assert store.put("e" * 40, (torch.zeros(1000),), "Old")                  # ~1.3 KB entry
    checkpoints = NodeCheckpoints(store.checkpoint_folder(KEY), KEY,
                                  on_write=lambda size: store.count_written(KEY, size))
    call = checkpoints.next_call(3)
    call.save(1, torch.zeros(1, 2000), {})                                      # ~8.3 KB: 9.6 KB in all, fits
    assert store.has("e" * 40)
    call.save(2, torch.zeros(1, 2000), {}, {"denoised": torch.ones(1, 2000)})  # ~16.4 KB + 1.3 KB > 15 KB
    assert not store.has("e" * 40)                                              # the older entry went
    assert [p.name for p in store.checkpoint_folder(KEY).iterdir()] == [checkpoint_name(0, 2)]
    store.discard_checkpoints(KEY)
    assert not store.checkpoint_folder(KEY).exists() and store.info()["bytes"] == 0
