"""Gemma 3 and Gemma 4 text decoders, as LTX-2 uses them: all hidden states of a prompt for the text features, and
greedy or sampled generation (prompt enhancement). LTX-2.0 / 2.3 encode with Gemma 3, LTX-2.5 with Gemma 4 12B
(transformers' ``gemma4_unified`` text model); config fields (:mod:`ltxgraph_ops.models.gemma_config`) switch
between the two; the layers are in :mod:`ltxgraph_ops.models.gemma_layers`.

Embeddings are scaled by sqrt(hidden). The last hidden state is taken after the final norm. Image soft tokens
(:class:`ImageTokens`) take the vision tower's projected features in place of their (scaled) embeddings. Gemma 4
caps the logits softly (``30 tanh(logits / 30)``, as ComfyUI's Gemma 4 and transformers'
``final_logit_softcapping``).

Gemma 4 E2B / E4B (transformers' ``gemma4``, LTX-2.5's prompt enhancer) also have per-layer inputs: each token's
input embedding projected to L x P (times D^-1/2, RMSNorm per layer's slice) plus its row of a second table (times
sqrt(P); an image soft token reads the padding token's row), the sum times 2^-1/2; layer l adds its slice to its
output. Their last ``kv_shared_layers`` layers take the keys and values of the last earlier layer of their kind
(sliding or global) instead of computing their own, and may have wider feed-forwards (per-layer sizes read from
the tensors).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ltxgraph_ops.models.gemma_config import GemmaConfig
from ltxgraph_ops.models.gemma_layers import Embedding, GemmaLayer, GemmaRMSNorm, attention_bias, rope_tables
from ltxgraph_ops.models.layers import Linear
from ltxgraph_ops.models.next_token import TokenSampling, next_token
from ltxgraph_ops.models.progress import Counter, counted


@dataclass(frozen=True)
class ImageTokens:
    """Images placed in a prompt: ``slots`` [B, T] bool marks the soft-token positions (row-major order),
    ``features`` [N_images, n, D] their projected embeddings (N_images * n = number of slots). ``bidirectional``:
    an image's soft tokens attend to each other both ways (Gemma 3's processor, transformers) or, False, causally
    like text (ComfyUI's Gemma 3)."""

    slots: torch.Tensor
    features: torch.Tensor
    bidirectional: bool = True

    def blocks(self) -> torch.Tensor:
        """[B, T] index of the image each soft token belongs to (a run of consecutive slots), -1 for text."""
        previous = F.pad(self.slots, (1, 0), value=False)[:, :-1]
        starts = self.slots & ~previous
        return torch.where(self.slots, starts.long().cumsum(dim=1) - 1, -1)



class GemmaTextModel(nn.Module):
    """State-dict keys: ``embed_tokens.weight``, ``layers.N.*``, ``norm.weight`` (the file's text-model keys
    minus their prefix). ``compute_dtype``: what the layers compute in (hidden states are in it; RMSNorm and
    RoPE angles in float32)."""

    def __init__(self, cfg: GemmaConfig, compute_dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.config = cfg
        self.compute_dtype = compute_dtype
        self.embed_tokens = Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList([GemmaLayer(cfg, i) for i in range(cfg.num_hidden_layers)])
        self.norm = GemmaRMSNorm(cfg.hidden_size, cfg.rms_norm_eps, cfg.norm_offset)
        self.embed_tokens_per_layer = self.per_layer_model_projection = self.per_layer_projection_norm = None
        if cfg.per_layer_input_size:
            total = cfg.num_hidden_layers * cfg.per_layer_input_size
            self.embed_tokens_per_layer = Embedding(cfg.per_layer_vocab_size, total)
            self.per_layer_model_projection = Linear(cfg.hidden_size, total, bias=False)
            self.per_layer_projection_norm = GemmaRMSNorm(cfg.per_layer_input_size, cfg.rms_norm_eps, cfg.norm_offset)

    def _ropes(self, positions: torch.Tensor, dtype: torch.dtype) -> dict[bool, tuple[torch.Tensor, torch.Tensor]]:
        c = self.config
        return {False: rope_tables(positions, c.head_dim_of(False), c.rope_local_base_freq, 1.0, dtype),
                True: rope_tables(positions, c.head_dim_of(True), c.rope_theta, c.rope_scaling_factor, dtype,
                                  c.global_rope_fraction)}

    def _biases(self, mask: torch.Tensor, new_tokens: int, dtype: torch.dtype,
                images: ImageTokens | None = None) -> dict[bool, torch.Tensor]:
        blocks = None if images is None or not images.bidirectional else images.blocks()
        return {False: attention_bias(mask, new_tokens, self.config.sliding_window, dtype, blocks),
                True: attention_bias(mask, new_tokens, None, dtype, blocks)}

    def embed(self, ids: torch.Tensor, dtype: torch.dtype = torch.float32,
              images: ImageTokens | None = None) -> torch.Tensor:
        """Scaled token embeddings [B, T, D]; image slots hold the image features instead (not scaled)."""
        if images is None:
            return self.embed_tokens(ids, dtype) * torch.tensor(math.sqrt(self.config.hidden_size), dtype=dtype)
        if int(images.slots.sum()) != images.features.shape[0] * images.features.shape[1]:
            raise ValueError(f"{int(images.slots.sum())} image slots in the prompt for {images.features.shape[0]} "
                             f"images of {images.features.shape[1]} tokens")
        ids = torch.where(images.slots | (ids >= self.config.vocab_size), 0, ids)
        x = self.embed(ids, dtype)
        return x.masked_scatter(images.slots[..., None], images.features.to(dtype))

    def per_layer_inputs(self, ids: torch.Tensor, x: torch.Tensor, images: ImageTokens | None = None
                         ) -> torch.Tensor | None:
        """Every layer's input [B, T, L, P] for tokens ``ids`` [B, T] embedded as ``x`` [B, T, D] (image slots read
        the padding token's row of the table); None for a model without per-layer inputs."""
        cfg = self.config
        if not cfg.per_layer_input_size:
            return None
        shape = (*ids.shape, cfg.num_hidden_layers, cfg.per_layer_input_size)
        if images is not None:
            ids = torch.where(images.slots, 0, ids)
        projected = self.per_layer_model_projection(x) * (cfg.hidden_size ** -0.5)
        projected = self.per_layer_projection_norm(projected.reshape(shape))
        table = self.embed_tokens_per_layer(ids, x.dtype) * torch.tensor(math.sqrt(cfg.per_layer_input_size),
                                                                          dtype=x.dtype)
        return (projected + table.reshape(shape)) * (2.0 ** -0.5)

    def _run_layers(self, x: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, offset: int,
                    caches: list[list[torch.Tensor] | None], images: ImageTokens | None = None,
                    on_layer: Counter | None = None, states: list[torch.Tensor] | None = None) -> torch.Tensor:
        """New tokens ``ids`` [B, T] embedded as ``x`` [B, T, D] at positions ``offset + t`` through every layer
        (keys masked by ``mask`` [B, S]); layer i extends ``caches[i]`` (a key/value-sharing layer reads its
        source's); each layer's output appended to ``states``."""
        ropes = self._ropes(torch.arange(offset, offset + ids.shape[1]), x.dtype)
        biases = self._biases(mask, ids.shape[1], x.dtype, images)
        layer_inputs = self.per_layer_inputs(ids, x, images)
        for index, layer in enumerate(counted(self.layers, on_layer)):
            attention = layer.self_attn
            cache = caches[index if attention.kv_source is None else attention.kv_source]
            x = layer(x, ropes[attention.is_global], biases[attention.is_global], cache,
                      None if layer_inputs is None else layer_inputs[:, :, index])
            if states is not None:
                states.append(x)
        return x

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                position_offset: int = 0, on_layer: Counter | None = None,
                images: ImageTokens | None = None) -> list[torch.Tensor]:
        """ids and mask [B, T] (left padding) -> the L + 1 hidden states [B, T, D]: embeddings, then every
        layer's output, the last one after the final norm. Tokens sit at positions ``position_offset + t`` (a
        caller that dropped leading padding columns passes how many it dropped); ``images`` fill their slots.
        ``on_layer(done, total)`` after each layer (resident or streamed)."""
        x = self.embed(input_ids, self.compute_dtype, images)
        states = [x]
        # key/value-sharing layers read their source's keys and values: those layers keep them for the pass
        caches = [[] if self.config.kv_shared_layers else None for _ in range(self.config.num_hidden_layers)]
        x = self._run_layers(x, input_ids, attention_mask, position_offset, caches, images, on_layer, states)
        states[-1] = self.norm(x)
        return states

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Final hidden states [B, T, D] -> logits [B, T, vocab] (tied head; Gemma 4 caps them softly)."""
        logits = self.embed_tokens.logits(hidden)
        cap = self.config.final_logit_softcapping
        return cap * torch.tanh(logits / cap) if cap else logits

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int,
                 stop_tokens: tuple[int, ...] = (1, 106), sampling: TokenSampling | None = None,
                 seed: int = 0, on_token: Counter | None = None,
                 images: ImageTokens | None = None, suppressed_tokens: tuple[int, ...] = ()) -> torch.Tensor:
        """Continue each prompt (left-padded ids / mask [B, T]) for up to ``max_new_tokens`` tokens with a
        key/value cache: greedy when ``sampling`` is None, else drawn as it says (penalties count the new tokens
        only, as ComfyUI's generation loop does) with a generator seeded by ``seed``. Returns the new tokens [B, N] (a finished
        sequence continues with its stop token). ``images`` fill their slots in the prompt; ``suppressed_tokens``
        are never written (their logits at the lowest float); ``on_token(done, max_new_tokens)`` after each new
        token."""
        generator = torch.Generator().manual_seed(seed)
        caches: list[list[torch.Tensor] | None] = [[] for _ in range(self.config.num_hidden_layers)]
        mask, ids, produced = attention_mask.clone(), input_ids, []
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool)
        offset = 0
        for _ in range(max_new_tokens):
            prompt_images = images if offset == 0 else None   # new tokens are text: their own block is none
            x = self.embed(ids, self.compute_dtype, prompt_images)
            x = self._run_layers(x, ids, mask, offset, caches, prompt_images)
            logits = self.logits(self.norm(x[:, -1:]))[:, -1].float()
            if suppressed_tokens:
                logits[:, list(suppressed_tokens)] = torch.finfo(logits.dtype).min
            if offset == 0:
                seen = torch.zeros(logits.shape, dtype=torch.bool)
            token = next_token(logits, seen, sampling, generator)
            token = torch.where(done, torch.full_like(token, stop_tokens[0]), token)
            produced.append(token)
            if on_token is not None:
                on_token(len(produced), max_new_tokens)
            done |= torch.isin(token, torch.tensor(stop_tokens))
            seen[torch.arange(len(token)), token] = True
            if bool(done.all()):
                break
            offset += ids.shape[1]
            ids = token[:, None]
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        return torch.stack(produced, dim=1)
