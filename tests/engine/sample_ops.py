"""Small ops that exercise the engine: scalars, tensors, latents, a model-like object, failures.
Loaded by tests through Registry.from_modules and by CLI tests through ``--plugin tests.engine.sample_ops``."""
from __future__ import annotations

from typing import Annotated

import torch

from ltxgraph import Port, op
from ltxgraph.context import OpContext
from ltxgraph.errors import InputValueError
from ltxgraph.values import SavedFile, VideoLatent


@op("Const", outputs={"VALUE": "INT"})
def const(value: Annotated[int, Port("INT", min=-10**6, max=10**6)]) -> int:
    """An integer."""
    return value


@op("Add", outputs={"SUM": "INT"})
def add(a: Annotated[int, Port("INT")], b: Annotated[int, Port("INT")] = 0) -> int:
    """a + b."""
    return a + b


@op("MakeTensor", outputs={"IMAGE": "IMAGE"})
def make_tensor(seed: Annotated[int, Port("INT", control_after_generate=True)],
                width: Annotated[int, Port("INT", min=8, max=4096, multiple_of=8)] = 16) -> torch.Tensor:
    """A seeded random image [1, 8, width, 3]."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(1, 8, width, 3, generator=generator)


@op("SplitChannels", outputs={"RED": "IMAGE", "REST": "IMAGE"})
def split_channels(image: Annotated[torch.Tensor, Port("IMAGE")]) -> tuple[torch.Tensor, torch.Tensor]:
    """The first channel repeated three times, and the other two channels with the first zeroed (copies)."""
    rest = image.clone()
    rest[..., 0] = 0
    return image[..., :1].repeat(1, 1, 1, 3), rest


@op("ScaleImage", outputs={"IMAGE": "IMAGE"})
def scale_image(image: Annotated[torch.Tensor, Port("IMAGE")],
                factor: Annotated[float, Port("FLOAT", min=0.0, max=10.0)] = 1.0) -> torch.Tensor:
    """image * factor."""
    return image * factor


@op("BlendImages", outputs={"IMAGE": "IMAGE"})
def blend_images(a: Annotated[torch.Tensor, Port("IMAGE")], b: Annotated[torch.Tensor, Port("IMAGE")]) -> torch.Tensor:
    """The mean of two images."""
    return (a + b) / 2


@op("EmptyVideoLatent", outputs={"LATENT": "VIDEO_LATENT"})
def empty_video_latent(length: Annotated[int, Port("INT", min=1, eight_n_plus_one=True, round_down=True)] = 9,
                       mode: Annotated[str, Port("STRING", choices=("zeros", "ones"))] = "zeros",
                       ctx: OpContext = None) -> VideoLatent:
    """A video latent with 1 + (length-1)/8 latent frames."""
    frames = 1 + (length - 1) // 8
    for step in range(frames):
        ctx.step(step + 1, frames)
    fill = torch.zeros if mode == "zeros" else torch.ones
    return VideoLatent(fill(1, 4, frames, 2, 2), fps=25.0, frames=length)


@op("LatentAny", outputs={"FRAMES": "INT"})
def latent_any(latent: Annotated[object, Port("VIDEO_LATENT|AUDIO_LATENT|AV_LATENT")]) -> int:
    """Frame count of any latent (video frames)."""
    return getattr(latent, "frames", 0)


class FakeModel(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(4))


@op("LoadFakeModel", outputs={"MODEL": "MODEL"})
def load_fake_model(name: Annotated[str, Port("STRING", file="checkpoints")]) -> FakeModel:
    """A model-like value that the disk cache cannot store (kept in memory only)."""
    return FakeModel()


@op("Fail", outputs={"VALUE": "INT"})
def fail(value: Annotated[int, Port("INT")], kind: Annotated[str, Port("STRING")] = "runtime") -> int:
    """Raises: 'runtime' (RuntimeError) or 'input' (InputValueError)."""
    if kind == "input":
        raise InputValueError(f"value {value} is not acceptable")
    raise RuntimeError(f"boom {value}")


@op("WriteText", output_node=True)
def write_text(text: Annotated[str, Port("STRING")], filename_prefix: Annotated[str, Port("STRING")] = "out",
               ctx: OpContext = None) -> SavedFile:
    """Writes text into the output folder (no output ports; the written file is recorded)."""
    path = ctx.folders.output_file(f"{filename_prefix}.txt")
    path.write_text(text)
    return SavedFile(str(path))


@op("BadOutput", outputs={"VALUE": "INT"})
def bad_output(text: Annotated[str, Port("STRING")]) -> int:
    """Returns a string for an INT port on purpose: the engine must catch it."""
    return text  # type: ignore[return-value]


@op("Sleep", outputs={"VALUE": "INT"})
def sleep(value: Annotated[int, Port("INT")], seconds: Annotated[float, Port("FLOAT", min=0.0)] = 0.1,
          ctx: OpContext = None) -> int:
    """Waits ``seconds`` (in ten steps, reporting progress), then returns ``value``."""
    import time
    for step in range(10):
        time.sleep(seconds / 10)
        ctx.step(step + 1, 10)
    return value


@op("PreviewTensor", output_node=True)
def preview_tensor(images: Annotated[torch.Tensor, Port("IMAGE")]) -> None:
    """An output node that shows an image (here: does nothing)."""
    return None


@op("PassLatent", outputs={"LATENT": "=latent"})
def pass_latent(latent: Annotated[object, Port("VIDEO_LATENT|AUDIO_LATENT|AV_LATENT")]) -> object:
    """Returns the latent it was given (its output has the type of its input, like a sampler's)."""
    return latent
