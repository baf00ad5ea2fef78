"""ComfyUI's paid cloud-API nodes (the "partner" nodes of its ``comfy_api_nodes`` package): they send prompts and
media to a provider's servers and bill an account. ltxgraph computes everything locally, so an active one is
refused by name. They are told apart by their names, which start with the provider (``KlingTextToVideoNode``,
``LtxvApiImageToVideo``, ``GeminiNode``, ``ElevenLabsTextToSpeech``) or end in ``Api`` (``WanTextToVideoApi``)."""
from __future__ import annotations

PROVIDERS = ("Anthropic", "Beeble", "Bria", "ByteDance", "CambAI", "Claude", "ElevenLabs", "FishAudio", "FluxPro",
             "FluxKontextPro", "FluxKontextMax", "Gemini", "Grok", "HeyGen", "HitPaw", "Ideogram", "Kling", "Krea",
             "LtxvApi", "Luma", "Magnific", "Meshy", "MiniMax", "Minimax", "Moonvalley", "OpenAI", "OpenRouter",
             "Pika", "PixVerse", "Pixverse", "Quiver", "Recraft", "ReveImage", "Rodin", "Runway", "Sora", "Stability",
             "Topaz", "Tripo", "Veo", "Vidu", "WaveSpeed", "Wavespeed")
SUFFIXES = ("Api", "ApiNode")


def is_cloud_node(node_type: str) -> bool:
    """Whether ``node_type`` names a ComfyUI node that calls a paid cloud API."""
    return node_type.startswith(PROVIDERS) or node_type.endswith(SUFFIXES)
