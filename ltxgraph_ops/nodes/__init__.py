"""Ops for the ComfyUI and ComfyUI-LTXVideo nodes that LTX-2.3 workflows use, one module per ComfyUI category:
loaders, latents, guides, sampling, media (images, masks, audio), text, vae and utility (logic, math, display)."""
