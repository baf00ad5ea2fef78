"""Progress of model loops (tiles, blocks, layers, frames), reported through a plain optional callback so model
code knows nothing of runs: ``counter(done, total)`` is called after each item."""
from __future__ import annotations

from typing import Callable, Iterator, Sequence, TypeVar

Counter = Callable[[int, int], None]
Item = TypeVar("Item")


def counted(items: Sequence[Item], counter: Counter | None) -> Iterator[Item]:
    """``items`` one by one (iterated as they iterate themselves, e.g. streamed), calling ``counter(done,
    total)`` once the loop body has finished with each."""
    total = len(items)
    for done, item in enumerate(items, start=1):
        yield item
        if counter is not None:
            counter(done, total)
