"""Related inputs of the built-in ops drawn to agree (:data:`~ltxgraph.testing.strategies.Fit`), so a contract
check (:func:`ltxgraph.testing.check_ops`, ``ltxgraph ops --check``, the contract suite) checks every draw instead of
discarding the ones the op refuses. The refusals themselves are tested beside the op (tests/test_looping_sampler.py)
and at validation (tests/test_refusals_at_validation.py)."""
from __future__ import annotations

from typing import Any, Callable

from hypothesis import strategies as st

from ltxgraph_ops.latents import FRAMES_PER_LATENT, pixel_frames

from .strategies import Fit, video_latent

MIN_TEMPORAL_OVERLAP, MAX_TEMPORAL_OVERLAP = 16, 80   # the temporal_overlap port's range
MAX_SPATIAL_OVERLAP = 8                                # the spatial_overlap port's maximum


@st.composite
def spatial_tiling(draw: Callable[[st.SearchStrategy[Any]], Any], height: int, width: int) -> dict[str, int]:
    """Vertical and horizontal tiles, then a spatial overlap they advance past on a latent of ``height`` x ``width``
    cells: several tiles along an axis of ``cells`` only when ``cells >= overlap + tiles``
    (:func:`~ltxgraph_ops.looping_sampler.spatial_tile_size`)."""
    vertical, horizontal = draw(st.integers(1, max(1, height - 1))), draw(st.integers(1, max(1, width - 1)))
    room = min((cells - tiles for cells, tiles in ((height, vertical), (width, horizontal)) if tiles > 1),
               default=MAX_SPATIAL_OVERLAP)
    return {"vertical_tiles": vertical, "horizontal_tiles": horizontal, "spatial_overlap": draw(st.integers(1, room))}


@st.composite
def looping_sampler_inputs(draw: Callable[[st.SearchStrategy[Any]], Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """LTXVLoopingSampler: no per-tile prompts or negative-index latents (not supported: refused); a temporal
    overlap below the tile; guiding and normalizing latents of the latents' [F, H, W]; one keyframe index per
    conditioning image, within the video's pixel frames (negative ones too); spatial tiles that fit the latent."""
    _, _, frames, height, width = kwargs["latents"].samples.shape
    step = FRAMES_PER_LATENT                        # the tile and overlap are pixel frames, multiples of 8
    longest = min(MAX_TEMPORAL_OVERLAP, kwargs["temporal_tile_size"] - step)
    fitted = {
        "optional_positive_conditionings": None,
        "optional_negative_index_latents": None,
        "temporal_overlap": draw(st.integers(MIN_TEMPORAL_OVERLAP // step, longest // step)) * step,
        **draw(spatial_tiling(height, width)),
    }
    for name in ("optional_guiding_latents", "optional_normalizing_latents"):
        if kwargs[name] is not None:
            fitted[name] = draw(video_latent((frames, height, width)))
    images = kwargs["optional_cond_images"]
    if images is not None:
        total = pixel_frames(frames)
        indices = draw(st.lists(st.integers(-total, total - 1), min_size=images.shape[0], max_size=images.shape[0]))
        fitted["optional_cond_image_indices"] = ", ".join(map(str, indices))
    return {**kwargs, **fitted}


FITS: dict[str, Fit] = {"LTXVLoopingSampler": looping_sampler_inputs}
"""Op name -> the :data:`Fit` of its related inputs, for the built-in ops that refuse most independent draws."""
