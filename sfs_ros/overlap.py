# SPDX-License-Identifier: AGPL-3.0-or-later
"""Two-stage frame path: the second stage of frame N on its own thread while the caller runs
the first stage of frame N+1 (the node's ``overlap_frames``; ``sfs-bench`` times the same
class).

On a CPU the first stage (the network passes, :meth:`sfs_ros.pipeline.Pipeline.infer`) keeps
the inference threads busy while the second (decoding, fusion, painting and publishing,
:meth:`~sfs_ros.pipeline.Pipeline.finish`) is mostly single-threaded numpy work, so running
them side by side raises the frame rate; each frame's latency stays the sum of both stages.

The hand-over is one frame deep: :meth:`FrameOverlap.submit` waits while the previous frame is
still being finished, so no frame queues up and grows stale (newer camera frames replace it in
the node's slot meanwhile, counted as superseded there).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sfs_ros.runtime import LOG


class FrameOverlap:
    """Runs ``finish(item)`` for each submitted item, in order, one item at a time.

    With ``enabled`` false, :meth:`submit` calls ``finish`` on the caller's thread (no
    overlap; the same code path otherwise). ``finish`` is expected to report its own failures;
    an exception that still escapes it is logged with its traceback and the next item is
    served.

    Args:
        finish: the second stage.
        enabled: run it on a thread of its own.
        name: that thread's name.
    """

    def __init__(
        self, finish: Callable[[Any], None], *, enabled: bool, name: str = "sfs-finish"
    ) -> None:
        self.finish = finish
        self.enabled = bool(enabled)
        self._cond = threading.Condition()
        self._item: Any = None
        self._has_item = False
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None
        if self.enabled:
            self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
            self._thread.start()

    def submit(self, item: Any) -> bool:
        """Hand ``item`` to the second stage; waits while the previous one is unfinished.

        Returns:
            False when closed (``item`` was not taken), else True.
        """
        if not self.enabled:
            if self._closed:
                return False
            self._run(item)
            return True
        with self._cond:
            while (self._has_item or self._busy) and not self._closed:
                self._cond.wait()
            if self._closed:
                return False
            self._item, self._has_item = item, True
            self._cond.notify_all()
            return True

    def close(self, timeout: float | None = None) -> bool:
        """Finish what was submitted, then stop the thread. Returns False when it is still
        busy after ``timeout`` seconds. Later :meth:`submit` calls return False."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _serve(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._has_item or self._closed)
                if not self._has_item:  # closed and drained
                    return
                item, self._item, self._has_item = self._item, None, False
                self._busy = True
            try:
                self._run(item)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _run(self, item: Any) -> None:
        try:
            self.finish(item)
        except Exception:  # finish reports its own failures; this is a bug in it
            LOG.exception("frame finishing stage failed")
