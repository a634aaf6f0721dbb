"""Background open-vocabulary worker: a one-slot handoff and a thread that never blocks callers.

The per-frame path calls :meth:`OpenVocabWorker.offer` with a snapshot; when the worker is busy
or its rate limit (``rate_hz``) has not elapsed, the offer is refused at once (nothing is copied
or queued). Otherwise the snapshot goes into the single slot (a newer one replaces it) and the
thread runs ``run_pass(snapshot)``. An exception on one snapshot is logged and counted, and the
thread carries on with the next one.

CPU budget: the worker thread lowers its own CPU priority (nice + ``BACKGROUND_NICE``, Linux
per-thread) before its first pass, and the OpenMP threads torch starts for it inherit that,
so on a small CPU the per-frame path keeps the cores it needs and CLIP passes fill the idle
time (labels get older instead of frames getting slower). torch's intra-op thread count is
process-wide (``torch.set_num_threads`` in one thread changes it for all), so it is left alone;
``open_vocab.rate_hz`` bounds the duty cycle. On a GPU the pass costs little CPU.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LOG = logging.getLogger("sfs_ros.open_vocab")


@dataclass(frozen=True)
class WorkerStats:
    """Diagnostics of the worker."""

    passes: int
    errors: int
    offered: int
    accepted: int
    last_pass_ms: float | None
    last_error: str | None
    running: bool


BACKGROUND_NICE = 10  # CPU priority offset of the worker thread (and the threads it spawns)


def lower_thread_priority(nice: int) -> int | None:
    """Raise the calling thread's nice value by ``nice`` (Linux: per thread); the new value.

    Threads created afterwards by this thread (e.g. the OpenMP team torch starts for it)
    inherit the value, so a CLIP pass yields the CPU to the per-frame path instead of halving
    its frame rate on a small machine. No-op (None) where per-thread priorities don't exist.
    """
    if nice <= 0 or not hasattr(os, "setpriority") or not hasattr(threading, "get_native_id"):
        return None
    tid = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + nice))
        return os.getpriority(os.PRIO_PROCESS, tid)
    except OSError as exc:
        LOG.warning("could not lower the open-vocabulary thread's priority: %s", exc)
        return None


class OpenVocabWorker:
    """Runs ``run_pass`` on the newest accepted snapshot, at most ``rate_hz`` times a second."""

    def __init__(
        self,
        run_pass: Callable[[Any], None],
        rate_hz: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        name: str = "sfs-open-vocab",
        nice: int = BACKGROUND_NICE,
    ) -> None:
        self.run_pass = run_pass
        self.rate_hz = float(rate_hz)
        self.clock = clock
        self.name = name
        self.nice = nice
        self._cond = threading.Condition()
        self._slot: Any = None
        self._busy = False
        self._stop = False
        self._thread: threading.Thread | None = None
        self._next_allowed = float("-inf")
        self._passes = self._errors = self._offered = self._accepted = 0
        self._last_ms: float | None = None
        self._last_error: str | None = None

    # ------------------------------------------------------------------------ control
    def start(self) -> None:
        """Start the thread (idempotent)."""
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop = False
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Ask the thread to finish (after its current pass) and wait for it."""
        with self._cond:
            self._stop = True
            self._slot = None
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def offer(self, make_snapshot: Callable[[], Any]) -> bool:
        """Hand over a snapshot if the worker wants one; never blocks on a pass.

        ``make_snapshot`` is only called when the offer is accepted (so frames are copied only
        when they will be used). Starts the thread on first use.
        """
        if self._thread is None:
            self.start()
        with self._cond:
            self._offered += 1
            if self._busy or self._slot is not None or self.clock() < self._next_allowed:
                return False
            self._slot = make_snapshot()
            self._accepted += 1
            self._busy = True  # reserved until the pass ends
            self._next_allowed = self.clock() + 1.0 / max(self.rate_hz, 1e-6)
            self._cond.notify_all()
            return True

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no pass is pending or running (tests, shutdown); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def stats(self) -> WorkerStats:
        """Counters for diagnostics."""
        with self._cond:
            return WorkerStats(
                passes=self._passes,
                errors=self._errors,
                offered=self._offered,
                accepted=self._accepted,
                last_pass_ms=self._last_ms,
                last_error=self._last_error,
                running=self._thread is not None and self._thread.is_alive(),
            )

    # ------------------------------------------------------------------------ thread
    def _loop(self) -> None:
        lower_thread_priority(self.nice)
        while True:
            with self._cond:
                while self._slot is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    self._busy = False
                    self._cond.notify_all()
                    return
                snapshot, self._slot = self._slot, None
            t0 = time.perf_counter()
            error = None
            try:
                self.run_pass(snapshot)
            except Exception as exc:  # one bad snapshot must not stop the branch
                if self._stop:  # cancelled by stop(): not an error
                    with self._cond:
                        self._busy = False
                        self._cond.notify_all()
                    return
                error = f"{type(exc).__name__}: {exc}"
                LOG.exception("open-vocabulary pass failed (worker continues)")
            with self._cond:
                self._last_ms = (time.perf_counter() - t0) * 1e3
                if error is None:
                    self._passes += 1
                else:
                    self._errors += 1
                    self._last_error = error
                self._busy = False
                self._cond.notify_all()
