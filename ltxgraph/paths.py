"""Path safety: names from graph files and workflows never reach outside their folders."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InvalidInput
from .wording import API_NAMES, OptionNames

MODEL_FOLDERS = ("checkpoints", "diffusion_models", "loras", "text_encoders", "latent_upscale_models", "vae")


class UnsafePath(InvalidInput):
    """A name would resolve outside the folder it must stay in."""


def inside(folder: Path, name: str, allow_outside: bool = False, names: OptionNames = API_NAMES) -> Path:
    """``folder / name`` resolved, refusing absolute names, ``..`` and symlinks that leave ``folder`` (the
    message names the option that allows them, as ``names`` spells it)."""
    if not name or "\x00" in name:
        raise UnsafePath(f"invalid file name {name!r}")
    candidate = Path(name)
    if allow_outside:
        return (candidate if candidate.is_absolute() else folder / candidate).resolve()
    if candidate.is_absolute() or ".." in candidate.parts:
        raise UnsafePath(f"'{name}' must be a name inside {folder}, not a path that leaves it "
                         f"({names.allow_outside_paths} allows it)")
    root = folder.resolve()
    resolved = (root / candidate).resolve()
    if resolved != root and root not in resolved.parents:
        raise UnsafePath(f"'{name}' resolves to {resolved}, outside {root} (a symlink that leaves the folder?)")
    return resolved


@dataclass(frozen=True)
class Folders:
    """Where a run reads models and inputs and writes outputs.

    models: roots laid out like ComfyUI's models folder (checkpoints/, loras/, text_encoders/, ...); a file may
    also sit directly in a root. allow_outside: accept absolute paths and ``..`` in names (explicit opt-in).
    names: how the caller spells these options in messages (the CLI's flags or the API's arguments).
    """

    models: tuple[Path, ...] = ()
    input: Path = field(default_factory=lambda: Path.cwd())
    output: Path = field(default_factory=lambda: Path.cwd() / "output")
    allow_outside: bool = False
    names: OptionNames = field(default=API_NAMES, compare=False, repr=False)

    def __post_init__(self) -> None:  # accept str and ~ as well as Path, and any sequence of model folders
        if isinstance(self.models, (str, Path)):
            raise TypeError("Folders(models=...) takes a list of folders, not one folder")
        object.__setattr__(self, "models", tuple(Path(m).expanduser() for m in self.models))
        object.__setattr__(self, "input", Path(self.input).expanduser())
        object.__setattr__(self, "output", Path(self.output).expanduser())

    def find(self, kind: str, name: str) -> Path:
        """Resolve a file name of folder ``kind`` ("input" or a models subfolder); raise if absent."""
        roots = [self.input] if kind == "input" else [r / kind for r in self.models] + list(self.models)
        if self.allow_outside and Path(name).is_absolute():
            roots = [Path("/")]
        tried = []
        for root in roots:
            path = inside(root, name, self.allow_outside, self.names)
            if path.is_file():
                return path
            tried.append(str(root))
        if not tried:
            raise InvalidInput(f"{kind} file '{name}' needs a models folder: none was given "
                               f"({self.names.models_dir})")
        raise InvalidInput(f"{kind} file '{name}' not found in {', '.join(tried)}")

    def check_output(self) -> None:
        """Refuse an output folder that cannot be one: an existing file, or a path under a file."""
        blocking = self.output if self.output.exists() and not self.output.is_dir() else file_in_the_way(self.output)
        if blocking is not None:
            what = "is a file" if blocking == self.output else f"lies under the file {blocking}"
            raise InvalidInput(f"output folder {self.output} {what}, not a folder "
                               f"(name another with {self.names.output_dir})")

    def output_file(self, relative: str) -> Path:
        """A path for a new output inside the output folder (created); refuses names that escape it."""
        self.output.mkdir(parents=True, exist_ok=True)
        path = inside(self.output, relative, self.allow_outside, self.names)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


def file_in_the_way(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` when it is a file, not a folder (nothing can be created at
    ``path`` then); None when it is a folder."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
