from __future__ import annotations

import math
import multiprocessing
from pathlib import Path

import pytest
import torch

from ltxgraph import Registry
from ltxgraph.cache import DiskStore, MemoryCache, node_key
from ltxgraph.graph import NodeRef
from ltxgraph.values import Audio, AudioLatent, AVLatent, VideoLatent


def storable() -> dict[str, type]:
    return Registry().storable


def test_memory_cache_is_bounded_in_bytes_and_lru() -> None:
    cache = MemoryCache(max_bytes=3 * 400)
    for name in "abc":
        cache.put(name, torch.zeros(100))  # 400 bytes each
    cache.get("a")
    cache.put("d", torch.zeros(100))
    assert cache.get("b") is None and cache.get("a") is not None and len(cache) == 3
    cache.put("huge", torch.zeros(1000))
    assert cache.get("huge") is None and cache.used_bytes == 1200


def test_disk_store_round_trips_values(tmp_path: Path) -> None:
    store = DiskStore(tmp_path, storable())
    video = VideoLatent(torch.randn(1, 4, 2, 3, 3), fps=24.0, frames=9, noise_mask=torch.ones(1, 1, 2, 1, 1))
    audio = AudioLatent(torch.randn(1, 8, 5, 16), latents_per_second=25.0, seconds=0.2)
    values = (AVLatent(video, audio), Audio(torch.randn(1, 2, 50), 16000), 3, float("nan"), "text", None, [1.5, (2,)])
    assert store.put("k1", values)
    back = store.get("k1")
    assert torch.equal(back[0].video.samples, video.samples) and back[0].video.fps == 24.0
    assert torch.equal(back[0].video.noise_mask, video.noise_mask) and back[0].audio.noise_mask is None
    assert back[1].sample_rate == 16000 and back[2] == 3 and math.isnan(back[3])
    assert back[4:] == ("text", None, [1.5, (2,)])


def test_disk_store_is_trimmed_least_recently_used_first(tmp_path: Path) -> None:
    import os
    probe = DiskStore(tmp_path / "probe", storable())
    probe.put("ee00", (torch.zeros(1000),))
    entry_bytes = probe.info()["bytes"]
    limit = 2 * entry_bytes + 100                     # room for two entries, not three
    store = DiskStore(tmp_path / "s", storable(), max_bytes=limit)
    for age, key in enumerate(("aa01", "aa02")):
        store.put(key, (torch.full((1000,), float(age)),))
        os.utime(tmp_path / "s" / "aa" / key / "meta.json", (1000 + age, 1000 + age))   # aa01 older than aa02
    assert store.get("aa01") is not None               # a read makes aa01 the most recently used
    store.put("aa03", (torch.zeros(1000),))
    assert store.get("aa02") is None and store.get("aa01") is not None and store.get("aa03") is not None
    assert 0 < store.info()["bytes"] <= limit
    store.put("bb00", (torch.zeros(5000),))           # larger than the limit alone: kept, everything else goes
    assert [e.name for e in store.entries()] == ["bb00"] and store.get("bb00") is not None


def test_models_are_not_written_to_disk(tmp_path: Path) -> None:
    store = DiskStore(tmp_path, storable())
    assert not store.put("m", (torch.nn.Linear(2, 2),))
    assert store.get("m") is None and store.info()["entries"] == 0


@pytest.mark.parametrize("damage", ["flip_tensor_byte", "truncate_tensors", "garbage_meta", "delete_meta",
                                    "wrong_key"])
def test_damaged_entries_are_discarded(tmp_path: Path, damage: str) -> None:
    store = DiskStore(tmp_path, storable())
    store.put("abcd", (torch.arange(1000, dtype=torch.float32),))
    entry = tmp_path / "ab" / "abcd"
    tensors, meta = entry / "values.safetensors", entry / "meta.json"
    if damage == "flip_tensor_byte":
        data = bytearray(tensors.read_bytes())
        data[-5] ^= 0xFF
        tensors.write_bytes(bytes(data))
    elif damage == "truncate_tensors":
        tensors.write_bytes(tensors.read_bytes()[:100])
    elif damage == "garbage_meta":
        meta.write_text("{not json")
    elif damage == "delete_meta":
        meta.unlink()
    else:
        meta.write_text(meta.read_text().replace('"abcd"', '"abce"'))
    assert store.get("abcd") is None
    assert not entry.exists()


def test_unknown_classes_in_entries_are_refused(tmp_path: Path) -> None:
    store = DiskStore(tmp_path, storable())
    store.put("abcd", (Audio(torch.zeros(1, 1, 4), 8000),))
    meta = tmp_path / "ab" / "abcd" / "meta.json"
    meta.write_text(meta.read_text().replace("ltxgraph.values.Audio", "os.system"))
    assert store.get("abcd") is None


def _store_many(root: str, worker: int) -> None:
    store = DiskStore(Path(root), Registry().storable)
    for i in range(40):
        store.put(f"{i:04d}", (torch.full((256,), float(i)),))
        other = (i * 7) % 40
        got = store.get(f"{other:04d}")  # the other process may not have written it yet; never a partial entry
        assert got is None or torch.equal(got[0], torch.full((256,), float(other)))


def test_two_processes_share_a_store(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_store_many, args=(str(tmp_path), w)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    store = DiskStore(tmp_path, storable())
    for i in range(40):
        assert torch.equal(store.get(f"{i:04d}")[0], torch.full((256,), float(i)))
    assert store.info()["entries"] == 40
    assert not list(tmp_path.glob("??/.*"))  # no staging leftovers


def test_node_keys_change_with_each_ingredient() -> None:
    base = node_key("Op", "1", {"x": 1, "r": NodeRef("a", "OUT")}, {"a": "k"}, {})
    assert base == node_key("Op", "1", {"r": NodeRef("a", "OUT"), "x": 1}, {"a": "k"}, {})
    variants = [
        node_key("Op2", "1", {"x": 1, "r": NodeRef("a", "OUT")}, {"a": "k"}, {}),
        node_key("Op", "2", {"x": 1, "r": NodeRef("a", "OUT")}, {"a": "k"}, {}),
        node_key("Op", "1", {"x": 1.0, "r": NodeRef("a", "OUT")}, {"a": "k"}, {}),
        node_key("Op", "1", {"x": 1, "r": NodeRef("a", "OUT2")}, {"a": "k"}, {}),
        node_key("Op", "1", {"x": 1, "r": NodeRef("a", "OUT")}, {"a": "k2"}, {}),
        node_key("Op", "1", {"x": 1, "r": NodeRef("a", "OUT")}, {"a": "k"}, {"f": "sha256:1"}),
    ]
    assert len({base, *variants}) == 7


def _stored_tensors(store: DiskStore, key: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file
    return load_file(store.root / key[:2] / key / "values.safetensors")


def test_images_on_the_8bit_grid_are_stored_as_bytes_and_read_back_bit_identical(tmp_path: Path) -> None:
    from ltxgraph import unorm8
    from ltxgraph.values import Video
    frames = unorm8.snap(torch.rand(5, 32, 48, 3, generator=torch.Generator().manual_seed(3)))   # a decode
    loaded = torch.randint(0, 256, (1, 32, 48, 3), dtype=torch.uint8).to(torch.bfloat16) / 255     # bf16 image
    waveform = torch.randn(1, 2, 100)
    values = (frames, Video(frames, 25.0, Audio(waveform, 24000)), loaded, torch.zeros(1, 4, 2, 2, 2))
    store = DiskStore(tmp_path, storable())
    assert store.put("f00d", values, "VAEDecode")
    stored = _stored_tensors(store, "f00d")
    assert len(stored) == 4 and [t.dtype for t in stored.values()].count(torch.uint8) == 3   # frames stored once
    assert sum(t.numel() * t.element_size() for t in stored.values()) == (5 + 1) * 32 * 48 * 3 + 2 * 100 * 4 + 32
    back = store.get("f00d")
    assert back[0].dtype == torch.float32 and torch.equal(back[0].view(torch.int32), frames.view(torch.int32))
    assert torch.equal(back[1].images.view(torch.int32), frames.view(torch.int32)) and back[1].fps == 25.0
    assert torch.equal(back[1].audio.waveform, waveform)
    assert back[2].dtype == torch.bfloat16 and torch.equal(back[2].view(torch.int16), loaded.view(torch.int16))
    assert back[3].dtype == torch.float32 and torch.equal(back[3], torch.zeros(1, 4, 2, 2, 2))


def test_values_off_the_grid_stay_float_and_exact(tmp_path: Path) -> None:
    images = torch.rand(2, 8, 8, 3)
    images[0, 0, 0, 0] = -0.0
    store = DiskStore(tmp_path, storable())
    store.put("beef", (images, torch.tensor([0.0, 1.0, float("nan")])))
    assert {t.dtype for t in _stored_tensors(store, "beef").values()} == {torch.float32}
    back = store.get("beef")
    assert torch.equal(back[0].view(torch.int32), images.view(torch.int32)) and back[1][2].isnan()


@pytest.mark.parametrize("damage", ["flip_code_byte", "restore_as_float16", "restore_as_int", "drop_unorm8"])
def test_damaged_8bit_entries_are_discarded(tmp_path: Path, damage: str) -> None:
    from ltxgraph import unorm8
    store = DiskStore(tmp_path, storable())
    store.put("abcd", (unorm8.unpack(torch.arange(256, dtype=torch.uint8).reshape(1, 4, 64, 1)),))
    entry = tmp_path / "ab" / "abcd"
    tensors, meta = entry / "values.safetensors", entry / "meta.json"
    text = meta.read_text()
    assert '"unorm8": "float32"' in text
    if damage == "flip_code_byte":
        data = bytearray(tensors.read_bytes())
        data[-3] ^= 0x01
        tensors.write_bytes(bytes(data))
    elif damage == "restore_as_float16":
        meta.write_text(text.replace('"unorm8": "float32"', '"unorm8": "float16"'))
    elif damage == "restore_as_int":
        meta.write_text(text.replace('"unorm8": "float32"', '"unorm8": "int64"'))
    else:
        meta.write_text(text.replace(', "unorm8": "float32"', ""))
    assert store.get("abcd") is None and not entry.exists()


def test_a_damaged_description_with_a_recomputed_checksum_is_still_refused(tmp_path: Path) -> None:
    import hashlib
    import json
    store = DiskStore(tmp_path, storable())
    store.put("abcd", (torch.arange(256, dtype=torch.uint8).float() / 255,))
    meta_path = tmp_path / "ab" / "abcd" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["value"]["list"][0]["unorm8"] = "uint8"      # a description no decoder accepts, even if checksummed
    blob = (tmp_path / "ab" / "abcd" / "values.safetensors").read_bytes()
    meta["sha256"] = hashlib.sha256(blob + json.dumps(meta["value"], sort_keys=True,
                                                      separators=(",", ":")).encode()).hexdigest()
    meta_path.write_text(json.dumps(meta))
    assert store.get("abcd") is None


def test_entries_of_format_1_are_still_read(tmp_path: Path) -> None:
    import hashlib
    import json
    from safetensors.torch import save
    blob = save({"t0": torch.arange(4, dtype=torch.float32)})
    entry = tmp_path / "ol" / "old1"
    entry.mkdir(parents=True)
    (entry / "values.safetensors").write_bytes(blob)
    (entry / "meta.json").write_text(json.dumps({"format": 1, "key": "old1", "value": {"list": [{"tensor": "t0"}]},
                                                 "sha256": hashlib.sha256(blob).hexdigest()}))
    store = DiskStore(tmp_path, storable())
    assert store.info()["by_op"] == {"unknown": {"entries": 1, "bytes": store.info()["bytes"]}}
    assert torch.equal(store.get("old1")[0], torch.arange(4, dtype=torch.float32))


def test_info_counts_entries_and_bytes_by_op(tmp_path: Path) -> None:
    store = DiskStore(tmp_path, storable(), max_bytes=10**9)
    store.put("aa01", (torch.zeros(1000),), "VAEDecode")
    store.put("aa02", (torch.ones(10),), "VAEDecode")
    store.put("bb01", (torch.randn(2000),), "SamplerCustomAdvanced")
    store.put("cc01", (3,))
    sizes = {e.name: sum(f.stat().st_size for f in e.iterdir()) for e in store.entries()}
    info = store.info()
    assert info["by_op"] == {
        "SamplerCustomAdvanced": {"entries": 1, "bytes": sizes["bb01"]},
        "VAEDecode": {"entries": 2, "bytes": sizes["aa01"] + sizes["aa02"]},
        "unknown": {"entries": 1, "bytes": sizes["cc01"]}}
    assert list(info["by_op"]) == sorted(info["by_op"], key=lambda op: -info["by_op"][op]["bytes"])
    assert info["entries"] == 4 and info["bytes"] == sum(sizes.values()) and info["limit"] == 10**9
