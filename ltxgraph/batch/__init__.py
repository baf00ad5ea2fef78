"""``ltxgraph batch``: many jobs (a jobs file, or a graph with ``--sweep`` values) run one after another in one
process with warm models, or spread over Ray actors (``--ray``); a manifest under ``--out`` records each job's
state and files so that a batch started again skips the jobs already done.

Modules: :mod:`.jobs` (the job list from a file), :mod:`.sweep` (the cartesian product of ``--sweep`` values),
:mod:`.manifest` (the record under ``--out``), :mod:`.execute` (one job on a warm runner), :mod:`.local` (jobs in
order in this process), :mod:`.ray_pool` (jobs on Ray actors; imports ray), :mod:`.command` (the subcommand).
"""
from .jobs import Job, read_jobs
from .sweep import sweep_jobs

__all__ = ["Job", "read_jobs", "sweep_jobs"]
