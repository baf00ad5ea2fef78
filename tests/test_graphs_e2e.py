"""Every shipped graph end to end on the tiny models (written once under their real names): the MP4 each one
writes is decoded and its frames, frame rate, resolution and audio duration checked; what a workflow keeps (the
first frame, the given audio, the original frames, the untouched time range) is checked to be kept; and the cache
serves a repeated run and re-runs only the sampling cone for a new seed."""
from __future__ import annotations

from pathlib import Path

import av
import pytest
import torch

from ltxgraph import api
from ltxgraph.paths import Folders
from ltxgraph.values import Audio, Video
from ltxgraph_ops.audio_ops import ltxv_audio_vae_encode, ltxv_audio_vae_loader
from ltxgraph_ops.guides import img_to_video_inplace
from ltxgraph_ops.latents import empty_ltxv_latent_video
from ltxgraph_ops.media_audio import load_audio, pad_audio_to_duration, trim_audio_duration
from ltxgraph_ops.media_image import load_image
from ltxgraph_ops.media_video import VideoFileFrames, encode_mp4, ltxv_preprocess, read_video
from ltxgraph_ops.resize_node import resize_image_mask
from ltxgraph_ops.sampling.preview import png_bytes
from ltxgraph_ops.tiny.files import write_tiny_models
from ltxgraph_ops.vae_ops import checkpoint_loader_simple, vae_encode

GRAPHS = Path(__file__).resolve().parent.parent / "graphs"
AUDIO_TOLERANCE = 1024 / 24000 + 0.01          # AAC frames are 1024 samples
SMALL = {"width": 128, "height": 64}
TWO_STAGE = {"width": 256, "height": 128}      # stage 1 runs at half: 128 x 64


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("e2e")
    models, inputs = root / "models", root / "input"
    write_tiny_models(models)
    inputs.mkdir()
    y, x = torch.meshgrid(torch.linspace(0, 1, 80), torch.linspace(0, 1, 120), indexing="ij")
    (inputs / "first_frame.png").write_bytes(png_bytes((torch.stack([x, y, (x + y) / 2], -1) * 255).round()
                                                       .to(torch.uint8)))
    (inputs / "last_frame.png").write_bytes(png_bytes((torch.stack([y, 1 - x, x * y], -1) * 255).round()
                                                      .to(torch.uint8)))
    y, x = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 128), indexing="ij")
    frames = torch.stack([torch.stack([x, y, (x + y + t / 30) % 1], -1) for t in range(30)])
    t = torch.arange(round(30 / 25 * 24000)) / 24000
    audio = Audio(torch.stack([torch.sin(2 * torch.pi * 440 * t)] * 2)[None] * 0.3, 24000)
    for name in ("clip.mp4", "control.mp4", "reference.mp4"):
        encode_mp4(str(inputs / name), Video(frames, 25.0, audio), {})
    encode_mp4(str(inputs / "soundtrack.m4a"), Video(frames[:1], 25.0, audio), {})
    return {"root": root, "models": models, "input": inputs}


def run(world, graph: str, params: dict, use_cache: bool = False):
    runner = api.Runner(use_cache=use_cache, cache_dir=world["root"] / "cache",
                        folders=Folders(models=(world["models"],), input=world["input"],
                                        output=world["root"] / "out" / graph))
    result = runner.run(api.load(GRAPHS / f"{graph}.yaml"), params)
    [path] = [p for p in result.report.files if p.endswith(".mp4")]
    return result, Path(path)


def probe(path: Path) -> dict:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        info = {"width": video.codec_context.width, "height": video.codec_context.height,
                "fps": float(video.average_rate), "codec": video.codec_context.name,
                "audio_codec": container.streams.audio[0].codec_context.name if container.streams.audio else None}
    decoded = read_video(path)
    info["frames"] = decoded.images.shape[0]
    info["audio_seconds"] = decoded.audio.seconds if decoded.audio is not None else 0.0
    return info


def tiny_vae(world, checkpoint: str = "ltx-2-19b-distilled-fp8.safetensors"):
    return checkpoint_loader_simple(str(world["models"] / "checkpoints" / checkpoint))[2]


@pytest.mark.parametrize("graph, params, frames", [
    ("ltx2_t2v_distilled", {"length": 25}, 25),
    ("ltx2_t2v_two_stage", {"length": 17, "steps": 3}, 17),
    ("ltx23_t2v_distilled", {"length": 17}, 17),
    ("ltx23_t2v_two_stage", {"length": 17}, 17),
    ("ltx25_t2v", {"length": 17, "fps": 25}, 17),
])
def test_text_to_video_graphs(world, graph, params, frames) -> None:
    result, path = run(world, graph, {**TWO_STAGE, **params})
    info = probe(path)
    assert (info["frames"], info["fps"], info["width"], info["height"]) == (frames, 25.0, 256, 128)
    assert (info["codec"], info["audio_codec"]) == ("h264", "aac")
    assert abs(info["audio_seconds"] - frames / 25) < AUDIO_TOLERANCE
    assert tuple(result.outputs["latent"].video.samples.shape[-2:]) == (4, 8)   # 2x stage 1's 2 x 4 cells


@pytest.mark.parametrize("graph, params, checkpoint, crf", [
    ("ltx2_i2v", {"steps": 3}, "ltx-2-19b-dev-fp8.safetensors", 33),
    ("ltx23_i2v", {}, "ltx-2.3-22b-dev-fp8.safetensors", 18),
    ("ltx25_i2v", {}, "ltx-2.5-22b-distilled.safetensors", 18),
])
def test_image_to_video_keeps_the_first_frame(world, graph, params, checkpoint, crf) -> None:
    result, path = run(world, graph, {**TWO_STAGE, "length": 17, **params})
    info = probe(path)
    assert (info["frames"], info["width"], info["height"]) == (17, 256, 128)
    vae = tiny_vae(world, checkpoint)
    image = ltxv_preprocess(load_image(str(world["input"] / "first_frame.png"))[0].float(), crf)
    expected = img_to_video_inplace(vae, image, empty_ltxv_latent_video(256, 128, 17)).samples[:, :, 0]
    assert torch.equal(result.outputs["latent"].video.samples[:, :, 0], expected)


def test_ltx25_duration_graph_proposes_an_8n_plus_1_length(world) -> None:
    from ltxgraph_ops.models.duration_head import frames_for_seconds
    runner = api.Runner(use_cache=False, folders=Folders(models=(world["models"],), input=world["input"],
                                                         output=world["root"] / "out" / "duration"))
    outputs = runner.run(api.load(GRAPHS / "ltx25_duration.yaml"), {"prompt": "a dog runs", "fps": 25.0}).outputs
    assert (outputs["num_frames"] - 1) % 8 == 0 and outputs["seconds"] > 0
    assert outputs["num_frames"] == frames_for_seconds(outputs["seconds"], 25.0, 1.0, 20.0)


def given_audio_latent(world, checkpoint: str) -> torch.Tensor:
    """The first second of the soundtrack, padded to 25 frames at 25 fps, encoded by ``checkpoint``'s audio VAE."""
    audio_vae = ltxv_audio_vae_loader(str(world["models"] / "checkpoints" / checkpoint))
    given = trim_audio_duration(load_audio(str(world["input"] / "soundtrack.m4a")), 0.0, 1.0)
    return ltxv_audio_vae_encode(pad_audio_to_duration(given, frames=25, fps=25.0), audio_vae).samples


def test_audio_to_video_keeps_the_audio(world) -> None:
    result, path = run(world, "ltx2_audio_to_video", {**SMALL, "length": 25, "audio": "soundtrack.m4a"})
    info = probe(path)
    assert (info["frames"], info["width"]) == (25, 128) and abs(info["audio_seconds"] - 1.0) < AUDIO_TOLERANCE
    latent = result.outputs["latent"]
    assert torch.equal(latent.audio.samples, given_audio_latent(world, "ltx-2-19b-distilled-fp8.safetensors"))
    assert latent.audio.noise_mask.max() == 0


def test_audio_and_image_to_video(world) -> None:
    result, path = run(world, "ltx2_audio_image_to_video", {**SMALL, "length": 25, "audio": "soundtrack.m4a"})
    assert probe(path)["frames"] == 25
    mask = result.outputs["latent"].video.noise_mask
    assert mask[0, 0, 0].max() == 0 and mask[0, 0, 1:].min() == 1     # first frame kept, the rest generated


def test_video_to_audio_keeps_the_frames(world) -> None:
    result, path = run(world, "ltx2_video_to_audio", {**SMALL, "length": 25})
    info = probe(path)
    assert info["frames"] == 25 and abs(info["audio_seconds"] - 1.0) < AUDIO_TOLERANCE
    latent = result.outputs["latent"]
    assert latent.video.noise_mask.max() == 0 and latent.audio.noise_mask.min() == 1
    clip = read_video(world["input"] / "clip.mp4").images.float()[:25]
    written = read_video(path).images.float()
    assert (written - clip).abs().mean() < 0.03


def test_extension_joins_without_repeating_the_connector(world) -> None:
    _, path = run(world, "ltx2_extend_video", {**SMALL, "context_frames": 9, "new_frames": 16})
    info = probe(path)
    assert info["frames"] == 30 + 16 and abs(info["audio_seconds"] - 46 / 25) < AUDIO_TOLERANCE
    original = read_video(world["input"] / "clip.mp4").images.float()
    assert (read_video(path).images.float()[:30] - original).abs().mean() < 0.03


def test_inpainting_keeps_the_untouched_range(world) -> None:
    result, path = run(world, "ltx2_inpaint_by_time",
                       {**SMALL, "length": 25, "start_time": 0.36, "end_time": 0.72, "inpaint_audio": False})
    assert probe(path)["frames"] == 25
    latent = result.outputs["latent"]
    mask = latent.video.noise_mask[0, 0, :, 0, 0]
    assert mask.tolist() == [0, 0, 1, 0]                 # pixel frames 9..18: latent frame 2 (pixels 10..17)
    clip = read_video(world["input"] / "clip.mp4").images.float()[:25]
    encoded = vae_encode(resize_image_mask(clip, "scale dimensions", 128, 64, "center", scale_method="area"),
                         tiny_vae(world)).samples
    kept = mask == 0
    assert torch.equal(latent.video.samples[:, :, kept], encoded[:, :, kept])
    assert latent.audio.noise_mask.max() == 0


@pytest.mark.parametrize("graph, extra", [("ltx2_iclora_control", {}), ("ltx2_iclora_canny", {}),
                                          ("ltx2_iclora_i2v", {}), ("ltx23_iclora_union_control", {})])
def test_iclora_graphs(world, graph, extra) -> None:
    result, path = run(world, graph, {**SMALL, "length": 17, **extra})
    info = probe(path)
    assert (info["frames"], info["width"], info["height"]) == (17, 128, 64)
    assert result.outputs["latent"].video.samples.shape[2] == 3 + 3   # generated frames + guide frames


def test_detailer_with_temporal_tiles(world) -> None:
    _, path = run(world, "ltx2_detailer", {**SMALL, "length": 25, "temporal_tile_size": 24, "temporal_overlap": 16})
    info = probe(path)
    assert (info["frames"], info["width"], info["height"]) == (25, 128, 64)


def test_cache_serves_a_repeat_and_reruns_only_the_sampling_cone(world) -> None:
    params = {**TWO_STAGE, "length": 17}
    first, _ = run(world, "ltx2_t2v_distilled", params, use_cache=True)
    again, _ = run(world, "ltx2_t2v_distilled", params, use_cache=True)
    assert again.report.executed() == [] and len(first.report.executed()) == len(first.report.nodes)
    # served from the disk store (a new runner each time); the video output is the file SaveVideo wrote, so the
    # store keeps its path: the streamed decode and CreateVideo store nothing, no entry holds the frames
    fresh, served = first.outputs["video"].images, again.outputs["video"].images
    assert isinstance(served, VideoFileFrames) and served.path == fresh.path and served.shape == (17, 128, 256, 3)
    assert torch.equal(served.codes(), fresh.codes())
    assert torch.equal(again.outputs["latent"].video.samples, first.outputs["latent"].video.samples)
    by_op = api.Runner(cache_dir=world["root"] / "cache").disk.info()["by_op"]
    assert "VAEDecodeTiled" not in by_op and "CreateVideo" not in by_op
    assert by_op["SaveVideo"]["bytes"] < 17 * 128 * 256 * 3 / 4        # the audio and a path, not the frames
    reseeded, _ = run(world, "ltx2_t2v_distilled", {**params, "seed": 7}, use_cache=True)
    executed = set(reseeded.report.executed())
    assert {"noise", "stage1", "stage2", "frames", "save"} <= executed
    # the prompt's encoding and the empty latents come from the cache; model loaders run again (a loader only
    # checks its file's header: models are never written to the disk cache)
    assert not executed & {"text_encoder", "prompt", "conditioning", "video_latent", "audio_latent"}


# LTX-2.3 graphs of their own kind (the 2.3 text- and image-to-video graphs run in the tests above)
def test_ltx23_first_and_last_frame_guides_are_cropped(world) -> None:
    result, path = run(world, "ltx23_flf2v", {**SMALL, "length": 17})
    info = probe(path)
    assert (info["frames"], info["fps"], info["width"], info["height"]) == (17, 25.0, 128, 64)
    assert abs(info["audio_seconds"] - 17 / 25) < AUDIO_TOLERANCE
    latent = result.outputs["latent"].video
    assert latent.samples.shape[2] == 3 + 1 + 1                      # generated frames + one per guide image
    assert (latent.noise_mask[0, 0, 3:] - 0.3).abs().max() < 1e-6    # guides held at strength 0.7


def test_ltx23_audio_and_image_to_video_keeps_both(world) -> None:
    result, path = run(world, "ltx23_ia2v", {**TWO_STAGE, "length": 25, "fps": 25, "audio": "soundtrack.m4a"})
    info = probe(path)
    assert (info["frames"], info["width"], info["height"]) == (25, 256, 128)
    assert abs(info["audio_seconds"] - 1.0) < AUDIO_TOLERANCE
    latent = result.outputs["latent"]
    assert torch.equal(latent.audio.samples, given_audio_latent(world, "ltx-2.3-22b-dev-fp8.safetensors"))
    mask = latent.video.noise_mask
    assert mask[0, 0, 0].max() == 0 and mask[0, 0, 1:].min() == 1 and latent.audio.noise_mask.max() == 0

