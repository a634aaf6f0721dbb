"""SIGINT / SIGTERM as a flag that a spin loop polls, for a clean shutdown."""

from __future__ import annotations

import signal
from typing import Any


class StopFlag:
    """Set by SIGINT / SIGTERM (handlers installed on creation); truthy once a signal came."""

    def __init__(self) -> None:
        self.signum: int | None = None
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handler)

    def _handler(self, signum: int, _frame: Any) -> None:
        self.signum = signum

    def __bool__(self) -> bool:
        return self.signum is not None
