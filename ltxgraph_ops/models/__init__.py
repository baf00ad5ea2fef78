"""Pure torch implementations of the LTX-2 models. One file per model; configs come from checkpoint headers."""
