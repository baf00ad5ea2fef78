"""The testing kit's model handles are version-coherent: each draw of an op's inputs takes every model handle (and
every value made from one, such as CLIPTextEncode's conditioning) from one model set (LTX-2.0, 2.3 or 2.5), among
the sets that can feed the op; LTX-2.5's set (MODEL_PATCH included) is what feeds LTXVDurationPredictor. Each set
is one a real run accepts together: its files are of its version and its Gemma is the generation that version
reads."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from ltxgraph.testing import InputStrategies
from ltxgraph.testing.handles import DEFAULT_SET, MODEL_SETS, MODEL_TYPES
from ltxgraph_ops.diffusion_vae import is_diffusion_vae
from ltxgraph_ops.gemma_generation import check_gemma_fits
from ltxgraph_ops.model_set import file_version
from ltxgraph_ops.nodes.duration import DurationHeadHandle
from ltxgraph_ops.weights.safetensors_file import SafetensorsFile


def _spec(strategies: InputStrategies, name: str):
    spec = strategies.registry.get(name)
    assert spec is not None
    return spec


def test_an_op_is_drawn_from_the_sets_that_feed_it(strategies: InputStrategies) -> None:
    assert strategies.model_sets(_spec(strategies, "LTXVDurationPredictor")) == ["2.5"]   # only 2.5 has MODEL_PATCH
    assert strategies.model_sets(_spec(strategies, "CFGGuider")) == ["2.0", "2.3", "2.5"]  # MODEL + CONDITIONING
    assert strategies.model_sets(_spec(strategies, "VAEDecode")) == ["2.0", "2.3", "2.5"]
    empty = _spec(strategies, "EmptyLTXVLatentVideo")
    assert not strategies.reads_models(empty) and strategies.model_sets(empty) == ["2.0"]
    assert strategies.reads_models(_spec(strategies, "CFGGuider"))   # through CLIPTextEncode's conditioning
    assert "MODEL_PATCH" in MODEL_TYPES and strategies.undrawable(_spec(strategies, "LTXVDurationPredictor")) == []


def test_each_draw_reads_one_model_set(strategies: InputStrategies, monkeypatch) -> None:
    asked: list[tuple[str, str]] = []
    handle = strategies.tiny.handle

    def recording(port_type: str, version: str = DEFAULT_SET):
        asked.append((port_type, version))
        return handle(port_type, version)
    monkeypatch.setattr(strategies.tiny, "handle", recording)
    seen: list[set[tuple[str, str]]] = []

    @settings(max_examples=6, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(strategies.inputs(_spec(strategies, "CFGGuider")))
    def draw(kwargs: dict) -> None:
        seen.append(set(asked))
        asked.clear()
    draw()
    for handles in seen:
        assert len({version for _, version in handles}) == 1, handles   # never a 2.0 model with 2.5 text
        assert {port for port, _ in handles} == {"MODEL", "CLIP"}


def test_the_duration_predictor_gets_the_25_set(strategies: InputStrategies, monkeypatch) -> None:
    drawn: list[dict] = []

    @settings(max_examples=2, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(strategies.inputs(_spec(strategies, "LTXVDurationPredictor")))
    def draw(kwargs: dict) -> None:
        drawn.append(kwargs)
    draw()
    model, head = strategies.tiny.handle("MODEL", "2.5"), strategies.tiny.handle("MODEL_PATCH", "2.5")
    assert isinstance(head, DurationHeadHandle) and head.source == MODEL_SETS["2.5"].duration_head
    for kwargs in drawn:
        assert kwargs["model"] is model and kwargs["duration_head"] is head
        width = model.structure().config.video_dim
        assert kwargs["positive"].video_context.shape[-1] == width


def test_each_model_set_is_one_a_run_accepts(strategies: InputStrategies) -> None:
    models = strategies.tiny.models
    for version, files in MODEL_SETS.items():
        checkpoint = models / "checkpoints" / files.checkpoint
        assert file_version(checkpoint, "checkpoint") == version
        assert file_version(models / "latent_upscale_models" / files.upscaler, "latent upscaler") == version
        check_gemma_fits(SafetensorsFile(models / "text_encoders" / files.text_encoder), SafetensorsFile(checkpoint))
        assert strategies.tiny.handle("VAE", version).source == files.checkpoint
        assert is_diffusion_vae(SafetensorsFile(checkpoint)) == (version == "2.5")   # 2.5's own video VAE
