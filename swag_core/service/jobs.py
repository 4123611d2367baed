"""The service's job queue: one worker thread runs stylisations one at a time, in the order they
came, and keeps finished results in memory for a bounded time, count and size.

One worker, not a pool: a job uses the whole device (all CPU cores, or the GPU's memory), so two
at once would each run at half speed and risk running out of memory. The networks stay loaded
between jobs (engine/extractors.py, `MODELS`), which only this thread uses.

A job waits as the image files it came with (compressed, as sent) and is decoded only when it
runs: a queue of large layers would otherwise hold every one of them decoded.
"""

from __future__ import annotations

import secrets
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field

from ..engine.pipeline import Progress, stylize
from ..errors import Cancelled, SwagError
from .wire import png_bytes

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)


class QueueFull(Exception):
    """More jobs, or more bytes of image files, are waiting than the service holds."""


@dataclass
class Job:
    content: bytes | None  # the image files, until the job has run
    styles: list[bytes] | None
    style_weights: list[float] | None
    preset: str | None
    settings: dict
    # Seconds without a status request after which the job is cancelled (None: never). A GIMP
    # plug-in whose progress the user cancels is killed without a chance to send DELETE; this
    # is how its job still stops.
    abandon_after: float | None = None
    init: bytes | None = None  # the file of the first scale's starting image (stylize's init_image)
    last_polled: float = 0.0  # when it was queued, then at each status request
    id: str = field(default_factory=lambda: secrets.token_hex(8))
    state: str = QUEUED
    progress: float = 0.0
    stage: str = "waiting for earlier jobs"
    error: str | None = None
    result: bytes | None = None  # the PNG, once done
    finished_at: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    cancel_reason: str = "cancelled"  # what the job's status says once the worker has stopped it

    @property
    def size(self) -> int:
        """Bytes of image files the job holds while it waits."""
        return len(self.content or b"") + sum(len(s) for s in self.styles or ()) + len(self.init or b"")

    def status(self) -> dict:
        return {"id": self.id, "state": self.state, "progress": round(self.progress, 4),
                "stage": self.stage, "error": self.error}


class JobQueue:
    def __init__(self, max_queued: int = 32, max_queued_bytes: int = 2**30, max_results: int = 32,
                 max_result_bytes: int = 2**30, keep_seconds: float = 1800.0):
        self.max_queued, self.max_queued_bytes, self.max_results = max_queued, max_queued_bytes, max_results
        self.max_result_bytes, self.keep_seconds = max_result_bytes, keep_seconds
        self._jobs: dict[str, Job] = {}  # every job the service still knows, in submission order
        self._waiting: deque[Job] = deque()
        self._running: Job | None = None
        self._lock = threading.Condition()
        self._closing = False
        self.last_finished = time.monotonic()
        self._worker = threading.Thread(target=self._work, name="swag-worker", daemon=True)
        self._worker.start()

    def submit(self, job: Job) -> Job:
        with self._lock:
            waiting = sum(j.size for j in self._waiting)
            # A job that comes when none waits is always taken, however large.
            if self._waiting and (len(self._waiting) >= self.max_queued
                                  or waiting + job.size > self.max_queued_bytes):
                raise QueueFull(f"the engine already has {len(self._waiting)} jobs waiting "
                                f"({waiting / 2**20:.0f} MiB of images); try again when some are done")
            job.last_polled = time.monotonic()
            self._jobs[job.id] = job
            self._waiting.append(job)
            self._lock.notify()
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            self._prune()
            return self._jobs.get(job_id)

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued or running job; a finished job is forgotten with its result."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.state in (QUEUED, RUNNING):
                self._cancel(job, "cancelled")
            else:
                del self._jobs[job_id]
            return job

    def cancel_abandoned(self) -> None:
        """Cancel the queued and running jobs whose client has not asked for their status for
        longer than their abandon_after."""
        now = time.monotonic()
        with self._lock:
            for job in [*self._waiting, *([self._running] if self._running else [])]:
                if job.abandon_after and not job.cancel.is_set() and now - job.last_polled > job.abandon_after:
                    self._cancel(job, f"cancelled: abandoned by its client (no status request for "
                                      f"{job.abandon_after:g} s)")

    def _cancel(self, job: Job, reason: str) -> None:
        """Cancel a queued or running job. Called with the lock held."""
        if job.state == QUEUED:
            self._waiting.remove(job)
            self._finish(job, CANCELLED, reason)
        else:
            job.cancel_reason = reason
            job.cancel.set()  # the worker marks it cancelled within one iteration

    def busy(self) -> bool:
        with self._lock:
            return bool(self._waiting) or self._running is not None

    def close(self, timeout: float = 10.0) -> None:
        """Cancel everything and stop the worker."""
        with self._lock:
            self._closing = True
            for job in self._waiting:
                self._finish(job, CANCELLED, "cancelled: the engine is shutting down")
            self._waiting.clear()
            if self._running is not None:
                self._running.cancel.set()
            self._lock.notify_all()
        self._worker.join(timeout)

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._waiting and not self._closing:
                    self._lock.wait()
                if self._closing:
                    return
                job = self._running = self._waiting.popleft()
                job.state, job.stage = RUNNING, "starting"
            state, error, result = self._run(job)
            with self._lock:
                self._running = None
                job.result = result
                self._finish(job, state, error)

    def _run(self, job: Job) -> tuple[str, str | None, bytes | None]:
        """Run one job; whatever goes wrong stays inside this job."""
        started = time.monotonic()

        def on_progress(p: Progress) -> None:
            job.progress, job.stage = p.fraction, p.stage

        try:
            image = stylize(job.content, job.styles, style_weights=job.style_weights, preset=job.preset,
                            progress=on_progress, cancel=job.cancel, init_image=job.init, **job.settings)
            result = png_bytes(image)
        except Cancelled:
            outcome = (CANCELLED, job.cancel_reason, None)
        except SwagError as exc:
            outcome = (FAILED, str(exc), None)
        except MemoryError:
            outcome = (FAILED, "out of memory: use a smaller size or preset", None)
        except Exception as exc:  # a bug or a device failure: report it, keep serving
            if "out of memory" in str(exc).lower():
                outcome = (FAILED, "the device ran out of memory: use a smaller size or preset, or device cpu", None)
            else:
                traceback.print_exc()
                outcome = (FAILED, f"internal error in the engine ({exc.__class__.__name__}: "
                                   f"{str(exc).splitlines()[0] if str(exc) else ''}); see the engine's log", None)
            _free_device_memory()
        else:
            outcome = (DONE, None, result)
        print(f"job {job.id}: {outcome[0]} in {time.monotonic() - started:.1f} s"
              + (f": {outcome[1]}" if outcome[0] == FAILED else ""), file=sys.stderr, flush=True)
        return outcome

    def _finish(self, job: Job, state: str, error: str | None) -> None:
        job.state, job.error, job.finished_at = state, error if state != DONE else None, time.monotonic()
        job.stage = error if state == CANCELLED else state  # says why it was cancelled
        if state == DONE:
            job.progress = 1.0
        job.content = job.styles = job.init = None  # the inputs are no longer needed
        self.last_finished = job.finished_at
        self._prune()

    def _prune(self) -> None:
        """Forget finished jobs older than keep_seconds, then the oldest ones beyond the count
        and byte bounds. Called with the lock held."""
        now = time.monotonic()
        finished = [j for j in self._jobs.values() if j.state in FINISHED]
        finished.sort(key=lambda j: j.finished_at)
        count, total = len(finished), sum(len(j.result or b"") for j in finished)
        for job in finished:  # oldest first
            if (now - job.finished_at <= self.keep_seconds and count <= self.max_results
                    and total <= self.max_result_bytes):
                break
            del self._jobs[job.id]
            count, total = count - 1, total - len(job.result or b"")


def _free_device_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
