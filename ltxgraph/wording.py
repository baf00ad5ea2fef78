"""How a caller names the run options in messages: the command line's flags or the Python API's arguments.

Errors and notes about an option (e.g. "no models folder given") are phrased once, with the option's name taken
from the :class:`OptionNames` of whoever started the run; :class:`~ltxgraph.paths.Folders` carries them.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OptionNames:
    models_dir: str
    input_dir: str
    output_dir: str
    allow_outside_paths: str
    memory_budget: str
    dtype: str
    media_limits: str


API_NAMES = OptionNames(models_dir="Folders(models=[DIR])", input_dir="Folders(input=DIR)",
                        output_dir="Folders(output=DIR)",
                        allow_outside_paths="Folders(allow_outside=True)",
                        memory_budget="RunSettings(memory_budget=BYTES)",
                        dtype="RunSettings(dtype=...)",
                        media_limits="RunSettings(media_limits=MediaLimits({name}=...))")
CLI_NAMES = OptionNames(models_dir="--models-dir DIR", input_dir="--input-dir DIR",
                        output_dir="--out DIR",
                        allow_outside_paths="--allow-outside-paths", memory_budget="--memory-budget SIZE",
                        dtype="--dtype", media_limits="--media-limits {name}=...")
