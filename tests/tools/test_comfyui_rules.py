"""tools/comfyui_rules.py: the ComfyUI departures it emulates act where ComfyUI's rule says, and nowhere else."""
from __future__ import annotations

import dataclasses

import torch

from ltxgraph_ops.models.transformer import LTXAVTransformer
from tools.comfyui_rules import cross_modulation_step, fractional_mask_step


def test_cross_modulation_rule_moves_both_streams_and_is_undone_on_exit() -> None:
    original = LTXAVTransformer._cross
    step = cross_modulation_step()
    assert LTXAVTransformer._cross is original
    assert step["video"]["relative_l2"] > 0.01 and step["audio"]["relative_l2"] > 0.01


def test_cross_modulation_rule_for_ltx23_keeps_the_model_config() -> None:
    from tools.comfyui_rules import comfyui_cross_modulation, noise, tiny_model
    step = cross_modulation_step("2.3")
    assert step["video"]["relative_l2"] > 0.01 and step["audio"]["relative_l2"] > 0.01
    model = tiny_model(version="2.3")
    config = model.transformer.config
    with comfyui_cross_modulation(), torch.inference_mode():
        model(noise(), (torch.ones(1, 1, 1, 1, 1), torch.ones(1, 1, 1, 1)), torch.tensor(1.0))
    assert config.av_modulation_own_timesteps and model.transformer.config is config      # restored per call


def test_fractional_mask_rule_differs_only_for_fractional_masks() -> None:
    assert fractional_mask_step(strength=0.6)["relative_l2"] > 0.01
    assert fractional_mask_step(strength=1.0)["max_abs"] < 1e-6      # mask 0: both keep the clean latent
    assert fractional_mask_step(strength=0.0)["max_abs"] == 0.0      # mask 1: both generate


def test_fractional_mask_rule_samples_an_unmasked_state_and_shows_the_model_its_blend() -> None:
    from ltxgraph_ops.sampling.denoiser import MaskedDenoiser
    from tools.comfyui_rules import comfyui_fractional_mask
    seen = []

    def model(latents, timesteps, sigma):       # a model whose clean estimate is its input
        seen.append((latents[0].clone(), timesteps[0].clone()))
        return latents

    clean, mask, noise = torch.full((1, 1, 2), 4.0), torch.tensor([[[0.25, 1.0]]]), torch.ones(1, 1, 2)
    reference = MaskedDenoiser(model, [clean], [mask])
    with comfyui_fractional_mask():
        comfyui = MaskedDenoiser(model, [clean], [mask])
        x = comfyui.start([noise], torch.tensor(0.5))
        assert torch.equal(x, torch.tensor([[2.5, 2.5]]))                  # 0.5 noise + 0.5 clean, unmasked
        out = comfyui(x, torch.tensor(0.5))
    assert torch.equal(seen[-1][0], torch.tensor([[[3.625, 2.5]]]))         # m x + (1 - m) clean
    assert torch.equal(seen[-1][1], torch.tensor([[[0.125, 0.5]]]))         # per-token timesteps m sigma
    assert torch.equal(out, torch.tensor([[3.90625, 2.5]]))                 # m x0 + (1 - m) clean
    assert torch.equal(reference.start([noise], torch.tensor(0.5)), torch.tensor([[3.625, 2.5]]))  # undone


def test_gemma_norm_rule_rounds_the_scale_to_bf16_and_is_undone_on_exit() -> None:
    from ltxgraph_ops.models.gemma_layers import GemmaRMSNorm
    from tools.comfyui_rules import comfyui_gemma_norm_scale
    norm = GemmaRMSNorm(2, eps=0.0)
    norm.weight.copy_(torch.tensor([0.001, -0.25]))
    x = torch.ones(1, 2)                                  # rms 1: the output is the scale itself
    assert torch.allclose(norm(x), torch.tensor([[1.001, 0.75]]))
    with comfyui_gemma_norm_scale():
        assert torch.equal(norm(x), torch.tensor([[1.0, 0.75]]))   # 1.001 in bf16 is 1 (spacing 2^-7)
    assert torch.allclose(norm(x), torch.tensor([[1.001, 0.75]]))


def test_unstripped_prompt_rule_keeps_a_trailing_newline_as_a_token() -> None:
    from ltxgraph_ops.models.gemma_tokenizer import GemmaTokenizer
    from ltxgraph_ops.tiny import gemma
    from tools.comfyui_rules import comfyui_unstripped_prompt
    tokenizer = GemmaTokenizer(gemma.train_tiny_spm())
    stripped = tokenizer.tokenize("A lighthouse at dusk.\n")
    assert stripped == tokenizer.tokenize("A lighthouse at dusk.")          # ltx-core: surrounding space dropped
    with comfyui_unstripped_prompt():
        kept = tokenizer.tokenize("A lighthouse at dusk.\n")
    assert kept[:len(stripped)] == stripped and len(kept) == len(stripped) + 1
    assert tokenizer.tokenize("A lighthouse at dusk.\n") == stripped       # undone on exit


def test_generated_token_embedding_rule_rounds_one_token_rows_to_bf16_only() -> None:
    from ltxgraph_ops.models.gemma import GemmaTextModel
    from tools.comfyui_rules import comfyui_generated_token_embedding

    class Table:
        config = type("Config", (), {"hidden_size": 24})()

        def embed_tokens(self, ids, dtype):
            return torch.full((*ids.shape, 2), 1.001).to(dtype)

    table, one, two = Table(), torch.tensor([[5]]), torch.tensor([[5, 6]])
    with comfyui_generated_token_embedding():
        generated = GemmaTextModel.embed(table, one)
        prompt = GemmaTextModel.embed(table, two)
    assert generated.dtype == torch.float32
    assert torch.equal(generated, (torch.tensor(1.0, dtype=torch.bfloat16) * 24 ** 0.5).float().expand(1, 1, 2))
    assert torch.allclose(prompt, torch.full((1, 2, 2), 1.001 * 24 ** 0.5))        # the prompt: float32


def test_text_encoder_lora_rule_keeps_only_files_comfyui_reads(tmp_path) -> None:
    from safetensors.torch import save_file

    from ltxgraph_ops.nodes.loaders import LoraTextEncoder
    from tools.comfyui_rules import comfyui_text_encoder_lora_names
    ours, theirs = tmp_path / "model_prefixed.safetensors", tmp_path / "comfy_named.safetensors"
    save_file({"model.layers.0.mlp.up_proj.lora_A.weight": torch.zeros(1, 2)}, str(ours))
    save_file({"text_encoders.gemma3_12b.transformer.model.layers.0.mlp.up_proj.lora_A.weight": torch.zeros(1, 2)},
              str(theirs))
    attached = []

    def applied(self):
        attached.append(self.loras)
        return self

    original = LoraTextEncoder.applied_gemma
    LoraTextEncoder.applied_gemma = applied
    try:
        others = {f.name: None for f in dataclasses.fields(LoraTextEncoder) if f.name != "loras"}
        clip = LoraTextEncoder(**others, loras=((str(ours), 1.0), (str(theirs), 0.5)))
        with comfyui_text_encoder_lora_names():
            LoraTextEncoder.applied_gemma(clip)
    finally:
        LoraTextEncoder.applied_gemma = original
    assert attached == [((str(theirs), 0.5),)]


def test_attention_norm_eps_rule_builds_q_and_k_norms_with_comfyuis_eps() -> None:
    from ltxgraph_ops.models.attention import Attention
    from tools.comfyui_rules import COMFYUI_ATTENTION_NORM_EPS, comfyui_attention_norm_eps
    with comfyui_attention_norm_eps():
        inside = Attention(8, 8, 2, 4, eps=1e-6)
    outside = Attention(8, 8, 2, 4, eps=1e-6)
    assert inside.q_norm.eps == inside.k_norm.eps == COMFYUI_ATTENTION_NORM_EPS == 1e-5
    assert outside.q_norm.eps == outside.k_norm.eps == 1e-6                         # the reference's, undone


def test_rope_time_rule_rounds_video_times_as_comfyui_and_nothing_else() -> None:
    from tools.comfyui_rules import comfyui_rope_time_reciprocal, tiny_model
    model = tiny_model()
    latent = torch.zeros(1, 128, 16, 2, 4)                     # 121 frames: times up to 4.8 s
    reference = model._video_layout(latent, model.positive)[1]
    with comfyui_rope_time_reciprocal():
        comfyui = model._video_layout(latent, model.positive)[1]
    assert torch.equal(model._video_layout(latent, model.positive)[1], reference)     # undone on exit
    assert torch.equal(comfyui[:, 1:], reference[:, 1:])                            # height, width untouched
    pixel_frames = (reference[:, 0] * 25).round()
    assert torch.equal(comfyui[:, 0], pixel_frames * (1.0 / 25)) and torch.equal(reference[:, 0], pixel_frames / 25)
    apart = (comfyui[:, 0] - reference[:, 0]).abs()
    ulp = torch.nextafter(reference[:, 0], torch.tensor(float("inf"))) - reference[:, 0]
    assert bool((apart > 0).any()) and bool((apart <= ulp).all())                    # one float32 rounding apart
