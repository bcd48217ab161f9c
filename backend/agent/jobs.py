"""Background jobs: a commit that takes longer than its client is willing to wait keeps running
(holding the agent lock) and its outcome stays readable, so the client's answer always matches
what happened: "landed", "failed", or "running, rev X" that `talgate status` resolves later."""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class Job:
    def __init__(self, kind: str):
        self.id = secrets.token_hex(6)
        self.kind = kind
        self.state = "running"  # running | landed | failed
        self.rev: str | None = None
        self.started = time.time()
        self.finished: float | None = None
        self.result: dict | None = None
        self.exc: BaseException | None = None
        self.error: str | None = None
        self.code: str | None = None
        self.done = threading.Event()

    def set_rev(self, rev: str) -> None:
        self.rev = rev

    def to_dict(self) -> dict:
        d = {"id": self.id, "kind": self.kind, "state": self.state, "rev": self.rev,
             "started": self.started, "finished": self.finished}
        if self.state == "failed":
            d.update(error=self.error, code=self.code)
        if self.result is not None:
            d["changes"] = self.result.get("changes")
        return d


class Jobs:
    """The last ``keep`` finished jobs and every running one (each holds a writer's request, so
    they are bounded by the privileged socket's clients)."""

    def __init__(self, keep: int = 20):
        self.keep = keep
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, kind: str, fn: Callable[[Job], dict], code_of: Callable[[BaseException], str | None] = None
              ) -> Job:
        job = Job(kind)

        def run() -> None:
            try:
                job.result = fn(job)
                job.rev = job.result.get("rev", job.rev)
                job.state = "landed"
            except BaseException as e:  # noqa: BLE001 - handed to the waiting request / status
                job.exc, job.state, job.error = e, "failed", str(e)
                job.code = code_of(e) if code_of else getattr(e, "code", None)
            finally:
                job.finished = time.time()
                job.done.set()
                self._prune()

        with self._lock:
            self._jobs[job.id] = job
        threading.Thread(target=run, daemon=True, name=f"job-{job.id}").start()
        return job

    def _prune(self) -> None:
        with self._lock:
            finished = [j for j in self._jobs.values() if j.done.is_set()]
            for j in finished[:max(0, len(finished) - self.keep)]:
                del self._jobs[j.id]

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def all(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())
