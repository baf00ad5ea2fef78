"""``--sweep`` values and their cartesian product. A sweep names a graph parameter, as ``run --set`` does, and
its values: ``NAME=1..8`` (integers, both ends included), ``NAME=a,b,c`` (a list), ``NAME=value`` (one), or
``NAME@FILE`` (one value per non-empty line of FILE, e.g. prompts)."""
from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Sequence

from ..errors import InvalidInput
from .jobs import Job, default_name

RANGE = re.compile(r"^(-?\d+)\.\.(-?\d+)$")
MAX_JOBS = 100_000


def sweep_values(text: str) -> tuple[str, list[str]]:
    """The parameter name and its values (as text) of one ``--sweep``."""
    at, eq = text.find("@"), text.find("=")
    if at > 0 and (eq < 0 or at < eq):
        name, file = text[:at], Path(text[at + 1:]).expanduser()
        try:
            values = [line.strip() for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"--sweep {text}: cannot read {file} ({exc})") from None
        if not values:
            raise InvalidInput(f"--sweep {text}: {file} has no values (one per line)")
        return name, values
    if eq <= 0:
        raise InvalidInput(f"--sweep {text!r}: write NAME=1..8, NAME=a,b,c or NAME@FILE")
    name, raw = text[:eq], text[eq + 1:]
    bounds = RANGE.match(raw.strip())
    if bounds:
        first, last = int(bounds[1]), int(bounds[2])
        if last < first:
            raise InvalidInput(f"--sweep {text}: the range {first}..{last} is empty (write the smaller end first)")
        if last - first >= MAX_JOBS:
            raise InvalidInput(f"--sweep {text}: more than {MAX_JOBS} values")
        return name, [str(v) for v in range(first, last + 1)]
    values = [v.strip() for v in raw.split(",")]
    if any(not v for v in values):
        raise InvalidInput(f"--sweep {text}: an empty value in the list")
    return name, values


def sweep_jobs(graph: Path, sweeps: Sequence[str], fixed: Sequence[str] = ()) -> list[Job]:
    """One job per combination of the sweeps' values (the last sweep varies fastest), each with the ``fixed``
    ``NAME=VALUE`` assignments first; named ``job-001``... in that order."""
    axes = [sweep_values(text) for text in sweeps]
    names = [name for name, _ in axes]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidInput(f"--sweep names {', '.join(repeated)} more than once")
    count = 1
    for _, values in axes:
        count *= len(values)
    if count > MAX_JOBS:
        raise InvalidInput(f"--sweep makes {count} jobs, more than {MAX_JOBS}")
    combos = list(itertools.product(*(values for _, values in axes)))
    return [Job(default_name(i, count), graph,
                tuple(fixed) + tuple(f"{name}={value}" for name, value in zip(names, combo)))
            for i, combo in enumerate(combos, 1)]
