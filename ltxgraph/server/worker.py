"""The one worker of a server: a thread that takes prompts from the store in queue order and runs them with one
:class:`~ltxgraph.api.Runner`, so loaded models stay warm between prompts (its memory cache) and results are
shared with the command line (the same disk cache). A prompt is checked again before it runs (a restarted
server may have other model files); whatever happens, it ends in the history as success, error or interrupted,
and the worker goes on with the next one.
"""
from __future__ import annotations

import threading
import traceback
from typing import Any

from ..api import Runner
from ..errors import LtxGraphError, NodeError, RunInterrupted
from .messages import PromptWatch, Send
from .prompts import PromptRejected, prompt_graph
from .store import PromptStore, QueuedPrompt

POLL_SECONDS = 0.5


class Worker:
    """Runs queued prompts on a background thread; ``send`` delivers websocket messages (thread-safe)."""

    def __init__(self, store: PromptStore, runner: Runner, send: Send) -> None:
        self.store, self.runner, self.send = store, runner, send
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._stop_prompt = threading.Event()
        self._lock = threading.Lock()
        self.running: QueuedPrompt | None = None
        self.watch: PromptWatch | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="ltxgraph-serve-worker", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 60.0) -> None:
        """Stop taking prompts, interrupt the running one and wait for the thread (up to ``timeout`` s)."""
        self._closing.set()
        self._stop_prompt.set()
        self.store.wake()
        if self._thread is not None:
            self._thread.join(timeout)

    def interrupt(self, prompt_id: str | None = None) -> bool:
        """Ask the running prompt (only if it is ``prompt_id``, when given) to stop at its next node or sampling
        step; False when nothing matching runs."""
        with self._lock:
            running = self.running
            if running is None or (prompt_id is not None and running.prompt_id != prompt_id):
                return False
            self._stop_prompt.set()
            return True

    def status(self) -> dict[str, Any]:
        """ComfyUI's status payload: {exec_info: {queue_remaining}}."""
        return {"exec_info": {"queue_remaining": self.store.remaining()}}

    def _loop(self) -> None:
        while not self._closing.is_set():
            item = self.store.claim(POLL_SECONDS)
            if item is None:
                continue
            if self._closing.is_set():   # claimed while stopping: back in the queue for the next start
                self.store.release(item.prompt_id)
                break
            self.send("status", {"status": self.status()}, None)
            self._run(item)
            self.send("status", {"status": self.status()}, None)

    def _run(self, item: QueuedPrompt) -> None:
        client_id = item.extra_data.get("client_id")
        watch = PromptWatch(item.prompt_id, client_id if isinstance(client_id, str) else None, self.send,
                            self.runner.folders.output, self._stop_prompt)
        with self._lock:
            if not self._closing.is_set():   # a server stopping now interrupts this prompt at once
                self._stop_prompt.clear()
            self.running, self.watch = item, watch
        watch.started()
        state = "error"
        try:
            assert self.runner.registry is not None
            graph, _ = prompt_graph(item.prompt, self.runner.registry)
            plan = self.runner.plan(graph)   # validated again: a restarted server may have other model files
            watch.served_from_cache({node for node in plan.order if self._cached(plan.keys[node])})
            self.runner.progress = watch
            self.runner.run(graph)
            watch.succeeded()
            state = "success"
        except RunInterrupted:
            watch.interrupted(self._node_type(item, watch.current))
            state = "interrupted"
        except NodeError as exc:
            watch.failed(exc.node, self._node_type(item, exc.node) or exc.op, exc.cause,
                         traceback.format_tb(exc.cause.__traceback__))
        except PromptRejected as exc:
            error = LtxGraphError(f"{exc.error['message']}: {exc.error['details']}".rstrip(": "))
            watch.failed(None, None, error, [])
        except Exception as exc:   # a bug or a refusal at run time: recorded, and the worker goes on
            watch.failed(watch.current, self._node_type(item, watch.current), exc,
                         traceback.format_tb(exc.__traceback__))
        finally:
            self.runner.progress = None
            self.store.finish(item.prompt_id, state, watch.history(state))
            with self._lock:
                self.running, self.watch = None, None
            watch.done()

    def _cached(self, key: str) -> bool:
        runner = self.runner
        return bool((runner.memory is not None and runner.memory.has(key)) or
                    (runner.disk is not None and runner.disk.has(key)))

    @staticmethod
    def _node_type(item: QueuedPrompt, node: str | None) -> str | None:
        entry = item.prompt.get(node) if node is not None else None
        return entry.get("class_type") if isinstance(entry, dict) else None
