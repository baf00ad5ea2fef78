"""The batch manifest, ``<out>/batch-manifest.json``: per job its state (pending, running, done, failed), the
files it wrote (relative to ``--out``), its error, seconds, attempts and node counts. Rewritten whole after every
change through a temporary file and ``os.replace``, so a reader (or a batch started again after a crash) sees
the previous manifest or the new one, never a part."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from ..paths import atomic_write_bytes
from .jobs import Job

FILE_NAME = "batch-manifest.json"
FORMAT = 1
STATES = ("pending", "running", "done", "failed", "interrupted")


class Manifest:
    """The record of a batch's jobs under ``out``, by job name."""

    def __init__(self, out: Path, jobs: dict[str, dict[str, Any]] | None = None) -> None:
        self.out = out
        self.jobs: dict[str, dict[str, Any]] = jobs or {}

    @property
    def path(self) -> Path:
        return self.out / FILE_NAME

    @classmethod
    def load(cls, out: Path) -> "Manifest":
        """The manifest under ``out`` (empty when there is none); a damaged one is refused, naming the file."""
        path = out / FILE_NAME
        if not path.exists():
            return cls(out)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            jobs = data["jobs"] if data.get("format") == FORMAT else None
        except (OSError, ValueError, AttributeError, KeyError, TypeError) as exc:
            raise InvalidInput(f"{path}: not a readable batch manifest ({exc}); remove it or choose another --out") \
                from None
        if not isinstance(jobs, dict):
            raise InvalidInput(f"{path}: not a batch manifest of format {FORMAT}; remove it or choose another --out")
        return cls(out, jobs)

    def is_done(self, job: Job) -> bool:
        """Whether ``job`` (this very definition) was recorded done and every file it wrote still exists."""
        entry = self.jobs.get(job.name)
        if not entry or entry.get("state") != "done" or entry.get("identity") != job.identity():
            return False
        return all((self.out / name).is_file() for name in entry.get("files", []))

    def start(self, job: Job, worker: dict[str, Any] | None = None) -> None:
        """``job`` is running (one more attempt), on ``worker`` when known (e.g. its Ray actor)."""
        entry = self._entry(job)
        entry.update(state="running", attempts=entry.get("attempts", 0) + 1, started=_now(), error=None,
                     worker=worker or {})
        self.save()

    def finish(self, job: Job, outcome: dict[str, Any]) -> None:
        """``job`` ended: its state, files, error, seconds and node counts from an outcome (:mod:`.execute`)."""
        entry = self._entry(job)
        entry.update({key: outcome.get(key) for key in ("state", "files", "error", "seconds", "nodes", "report")})
        entry.update(finished=_now(), **({"worker": outcome["worker"]} if outcome.get("worker") else {}))
        self.save()

    def interrupt(self, jobs: list[Job]) -> None:
        """``jobs`` were stopped by the user (Ctrl-C) while running: they run again next time."""
        for job in jobs:
            self._entry(job).update(state="interrupted", error="interrupted by the user", finished=_now())
        self.save()

    def _entry(self, job: Job) -> dict[str, Any]:
        entry = self.jobs.get(job.name)
        if entry is None or entry.get("identity") != job.identity():
            entry = {"identity": job.identity(), "graph": str(job.graph), "set": list(job.assignments),
                     "out": job.folder, "state": "pending", "files": [], "attempts": 0}
            self.jobs[job.name] = entry
        return entry

    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        data = {"format": FORMAT, "jobs": self.jobs}
        atomic_write_bytes(self.path, json.dumps(data, indent=2).encode())


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
