"""Local mode: the jobs in order, in this process, on one warm runner."""
from __future__ import annotations

from typing import Callable

from ..api import Runner
from ..errors import RunInterrupted
from .execute import Outcome, PreparedJob, progress_line, run_job, settle, still_to_run, worker_info
from .manifest import Manifest


def run_local(prepared: list[PreparedJob], runner: Runner, manifest: Manifest,
              echo: Callable[[str], None] = print) -> list[Outcome]:
    """Run every job not done before, one after another on ``runner`` (its caches serve what jobs share),
    recording each in ``manifest`` and echoing one line per job. A failed job does not stop the others;
    Ctrl-C stops the batch (the job under way is recorded interrupted, and runs again next time)."""
    outcomes = []
    for index, item in still_to_run(prepared, manifest, echo):
        manifest.start(item.job)
        try:
            outcome = run_job(runner, item.graph, item.params, manifest.out / item.job.folder)
        except RunInterrupted:
            manifest.interrupt([item.job])
            raise
        outcome["worker"] = worker_info()
        recorded = settle(manifest, item.job, outcome)
        echo(progress_line(index, len(prepared), item.job, recorded))
        outcomes.append(recorded)
    return outcomes
