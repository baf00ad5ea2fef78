"""The prompt queue and its history in one SQLite file, so a restarted server resumes what was queued and keeps
what was done.

Every prompt is one row that moves pending -> running -> success | error | interrupted. A row still ``running``
when a store is opened belongs to a server that died mid-prompt: :meth:`PromptStore.recover` marks it failed
(with a message saying so), never silently dropping it. Rows are ordered by ComfyUI's ``number`` (lower first;
"front" prompts get negative numbers), then by arrival.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PENDING, RUNNING = "pending", "running"
FINISHED = ("success", "error", "interrupted")
SCHEMA = """
CREATE TABLE IF NOT EXISTS prompts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    prompt_id TEXT UNIQUE NOT NULL,
    number REAL NOT NULL,
    prompt TEXT NOT NULL,
    extra_data TEXT NOT NULL,
    outputs_to_execute TEXT NOT NULL,
    state TEXT NOT NULL,
    queued_at REAL NOT NULL,
    finished_at REAL,
    result TEXT
);
CREATE INDEX IF NOT EXISTS prompts_state ON prompts (state, number, seq);
"""
DIED_MESSAGE = "the server stopped while this prompt was running; it was not finished"
MAX_HISTORY = 10_000   # finished prompts kept (ComfyUI's MAXIMUM_HISTORY_SIZE); the oldest go first


class PromptIdTaken(ValueError):
    """A client chose a prompt_id the store already holds."""


@dataclass
class QueuedPrompt:
    """One prompt as ComfyUI queues it: number, id, the API-format prompt, extra_data (client_id, ...) and the
    output node ids to execute."""

    number: float
    prompt_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any] = field(default_factory=dict)
    outputs_to_execute: list[str] = field(default_factory=list)

    def as_list(self) -> list[Any]:
        """ComfyUI's queue item: [number, prompt_id, prompt, extra_data, outputs_to_execute]."""
        return [self.number, self.prompt_id, self.prompt, self.extra_data, self.outputs_to_execute]


class PromptStore:
    """Queue and history in the SQLite file ``path`` (created); safe to use from several threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._wakeup = threading.Condition()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def recover(self) -> list[str]:
        """Mark the prompts a previous server left ``running`` as failed; returns their ids."""
        with self._lock:
            rows = self._db.execute("SELECT prompt_id FROM prompts WHERE state = ?", (RUNNING,)).fetchall()
            for (prompt_id,) in rows:
                result = {"outputs": {}, "status": {"status_str": "error", "completed": False, "messages": [
                    ["execution_error", {"prompt_id": prompt_id, "node_id": None, "node_type": None, "executed": [],
                                         "exception_message": DIED_MESSAGE, "exception_type": "ServerStopped",
                                         "traceback": [], "current_inputs": {}, "current_outputs": {},
                                         "timestamp": _now_ms()}]]}, "meta": {}}
                self._finish_row(prompt_id, "error", result)
        return [prompt_id for (prompt_id,) in rows]

    def next_number(self) -> float:
        """One more than the largest number queued so far (0 for an empty store)."""
        with self._lock:
            (largest,) = self._db.execute("SELECT MAX(number) FROM prompts").fetchone()
        return 0.0 if largest is None else float(int(max(largest, -1)) + 1)

    def put(self, item: QueuedPrompt) -> None:
        """Queue ``item``; PromptIdTaken when its id is already queued or in the history."""
        with self._lock:
            taken = self._db.execute("SELECT 1 FROM prompts WHERE prompt_id = ?", (item.prompt_id,)).fetchone()
            if taken:
                raise PromptIdTaken(f"prompt_id {item.prompt_id!r} is already used")
            self._db.execute(
                "INSERT INTO prompts (prompt_id, number, prompt, extra_data, outputs_to_execute, state, queued_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (item.prompt_id, item.number, json.dumps(item.prompt), json.dumps(item.extra_data),
                 json.dumps(item.outputs_to_execute), PENDING, time.time()))
        with self._wakeup:
            self._wakeup.notify_all()

    def claim(self, timeout: float) -> QueuedPrompt | None:
        """The first pending prompt, now marked running; None when none arrives within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                row = self._db.execute(
                    "SELECT number, prompt_id, prompt, extra_data, outputs_to_execute FROM prompts "
                    "WHERE state = ? ORDER BY number, seq LIMIT 1", (PENDING,)).fetchone()
                if row is not None:
                    self._db.execute("UPDATE prompts SET state = ? WHERE prompt_id = ?", (RUNNING, row[1]))
                    return _item(row)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            with self._wakeup:
                self._wakeup.wait(min(left, 0.5))

    def release(self, prompt_id: str) -> None:
        """Put a claimed prompt back in the queue, unstarted."""
        with self._lock:
            self._db.execute("UPDATE prompts SET state = ? WHERE prompt_id = ? AND state = ?",
                             (PENDING, prompt_id, RUNNING))

    def wake(self) -> None:
        """Let a waiting :meth:`claim` look again (used when the server stops)."""
        with self._wakeup:
            self._wakeup.notify_all()

    def queue(self) -> tuple[list[QueuedPrompt], list[QueuedPrompt]]:
        """(running, pending), each in queue order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT number, prompt_id, prompt, extra_data, outputs_to_execute, state FROM prompts "
                "WHERE state IN (?, ?) ORDER BY number, seq", (RUNNING, PENDING)).fetchall()
        running = [_item(row[:5]) for row in rows if row[5] == RUNNING]
        return running, [_item(row[:5]) for row in rows if row[5] == PENDING]

    def remaining(self) -> int:
        """Prompts pending or running (ComfyUI's ``queue_remaining``)."""
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM prompts WHERE state IN (?, ?)",
                                        (RUNNING, PENDING)).fetchone()
        return int(count)

    def delete_pending(self, prompt_ids: list[str] | None) -> int:
        """Remove pending prompts (all of them when ``prompt_ids`` is None); running ones stay."""
        with self._lock:
            if prompt_ids is None:
                cursor = self._db.execute("DELETE FROM prompts WHERE state = ?", (PENDING,))
            else:
                cursor = self._db.executemany("DELETE FROM prompts WHERE state = ? AND prompt_id = ?",
                                              [(PENDING, str(p)) for p in prompt_ids])
        return cursor.rowcount

    def finish(self, prompt_id: str, state: str, result: dict[str, Any]) -> None:
        """Record how a running prompt ended; ``result`` holds ComfyUI's history fields (outputs, status, meta)."""
        if state not in FINISHED:
            raise ValueError(f"a prompt finishes as one of {FINISHED}, not {state!r}")
        with self._lock:
            self._finish_row(prompt_id, state, result)

    def _finish_row(self, prompt_id: str, state: str, result: dict[str, Any]) -> None:
        self._db.execute("UPDATE prompts SET state = ?, finished_at = ?, result = ? WHERE prompt_id = ?",
                         (state, time.time(), json.dumps(result), prompt_id))
        self._db.execute("DELETE FROM prompts WHERE seq IN (SELECT seq FROM prompts WHERE result IS NOT NULL "
                         "ORDER BY finished_at DESC, seq DESC LIMIT -1 OFFSET ?)", (MAX_HISTORY,))

    def history(self, max_items: int | None = None, prompt_id: str | None = None) -> dict[str, Any]:
        """Finished prompts as ComfyUI's /history answers: {prompt_id: {prompt, outputs, status, meta}}, oldest
        first; ``max_items`` keeps the newest that many."""
        query = ("SELECT number, prompt_id, prompt, extra_data, outputs_to_execute, result FROM prompts "
                 "WHERE result IS NOT NULL")
        arguments: tuple[Any, ...] = ()
        if prompt_id is not None:
            query += " AND prompt_id = ?"
            arguments = (prompt_id,)
        query += " ORDER BY finished_at DESC, seq DESC"
        if max_items is not None:
            query += " LIMIT ?"
            arguments += (max(0, max_items),)
        with self._lock:
            rows = self._db.execute(query, arguments).fetchall()
        return {row[1]: {"prompt": _item(row[:5]).as_list(), **json.loads(row[5])} for row in reversed(rows)}

    def delete_history(self, prompt_ids: list[str] | None) -> None:
        """Forget finished prompts (all when ``prompt_ids`` is None)."""
        with self._lock:
            if prompt_ids is None:
                self._db.execute("DELETE FROM prompts WHERE result IS NOT NULL")
            else:
                self._db.executemany("DELETE FROM prompts WHERE result IS NOT NULL AND prompt_id = ?",
                                     [(str(p),) for p in prompt_ids])


def _item(row: tuple[Any, ...]) -> QueuedPrompt:
    number, prompt_id, prompt, extra_data, outputs = row
    if float(number).is_integer():
        number = int(number)   # ComfyUI's own numbers are integers; a client's "number" may be a float
    return QueuedPrompt(number, prompt_id, json.loads(prompt), json.loads(extra_data), json.loads(outputs))


def _now_ms() -> int:
    return int(time.time() * 1000)
