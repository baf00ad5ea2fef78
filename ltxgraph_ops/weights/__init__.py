"""Weights on disk: reading safetensors checkpoints strictly and lazily, loading components, LoRAs, writing."""
