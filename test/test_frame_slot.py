"""Latest-frame slots: newest wins, drop accounting, round robin, rate-limited drop reports."""

from __future__ import annotations

import threading

import pytest

from sfs_ros.ros.frame_slot import SUPERSEDED, DropLogLimiter, FrameSlots


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_newest_frame_wins_and_the_overwritten_one_is_counted_as_superseded():
    slots = FrameSlots(["cam"])
    assert slots.put("cam", "f1") is False
    assert slots.put("cam", "f2") is True
    assert slots.put("cam", "f3") is True
    assert slots.take(timeout=0) == ("cam", "f3")
    stats = slots.stats("cam")
    assert stats.frames_in == 3
    assert stats.dropped == {SUPERSEDED: 2}
    assert stats.pending == 0
    assert stats.in_progress == 1
    assert stats.balanced()


def test_take_times_out_empty_and_returns_none_after_close():
    slots = FrameSlots(["cam"])
    assert slots.take(timeout=0.01) is None
    slots.put("cam", "f1")
    slots.close()
    assert slots.closed
    assert slots.take(timeout=1.0) is None
    assert slots.take() is None  # no timeout: still returns at once when closed


def test_close_wakes_a_blocked_worker():
    slots = FrameSlots(["cam"])
    result = []
    worker = threading.Thread(target=lambda: result.append(slots.take()))
    worker.start()
    slots.close()
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert result == [None]


def test_a_blocked_worker_gets_the_frame_put_by_another_thread():
    slots = FrameSlots(["cam"])
    result = []
    worker = threading.Thread(target=lambda: result.append(slots.take(timeout=30)))
    worker.start()
    slots.put("cam", "frame")
    worker.join(timeout=30)
    assert result == [("cam", "frame")]


def test_accounting_invariant_over_a_mixed_sequence():
    slots = FrameSlots(["cam"])
    processed = dropped = superseded = puts = 0
    for i in range(50):
        superseded += slots.put("cam", i)
        puts += 1
        if i % 3 == 0:
            superseded += slots.put("cam", f"{i}b")  # always supersedes i
            puts += 1
        if i % 2 == 0:
            got = slots.take(timeout=0)
            assert got is not None
            if i % 4 == 0:
                slots.mark_processed("cam")
                processed += 1
            else:
                slots.mark_dropped("cam", "unsupported_encoding")
                dropped += 1
        stats = slots.stats("cam")
        assert stats.balanced(), stats
    while slots.take(timeout=0) is not None:  # drain
        slots.mark_processed("cam")
        processed += 1
    stats = slots.stats("cam")
    assert superseded >= 17  # every i % 3 == 0 plus the odd frames never taken
    assert stats.frames_in == puts
    assert stats.processed == processed
    assert stats.dropped == {SUPERSEDED: superseded, "unsupported_encoding": dropped}
    assert stats.pending == stats.in_progress == 0
    assert stats.frames_in == stats.processed + stats.dropped_total


def test_reporting_a_frame_that_was_not_taken_is_an_error():
    slots = FrameSlots(["cam"])
    slots.put("cam", "f1")
    with pytest.raises(RuntimeError, match="no frame in progress"):
        slots.mark_processed("cam")
    with pytest.raises(RuntimeError, match="no frame in progress"):
        slots.mark_dropped("cam", "pipeline_error")
    assert slots.stats("cam").balanced()


def test_cameras_with_frames_are_served_in_turn():
    slots = FrameSlots(["front", "rear", "left"])
    served = []
    for i in range(4):
        slots.put("front", f"F{i}")
        slots.put("rear", f"R{i}")
        got = slots.take(timeout=0)
        assert got is not None
        served.append(got[0])
        slots.mark_processed(got[0])
    # front and rear always have a frame waiting; left never: strict alternation.
    assert served == ["front", "rear", "front", "rear"]
    assert slots.stats("left").frames_in == 0


def test_round_robin_takes_the_newest_frame_of_each_camera():
    slots = FrameSlots(["a", "b"])
    slots.put("a", "a1")
    slots.put("b", "b1")
    slots.put("a", "a2")
    assert slots.take(timeout=0) == ("a", "a2")
    slots.put("a", "a3")
    assert slots.take(timeout=0) == ("b", "b1")  # b's turn even though a has a newer frame
    assert slots.take(timeout=0) == ("a", "a3")
    for cam in ("a", "b", "a"):
        slots.mark_processed(cam)
    a, b = slots.stats("a"), slots.stats("b")
    assert (a.frames_in, a.processed, a.dropped) == (3, 2, {SUPERSEDED: 1})
    assert (b.frames_in, b.processed, b.dropped) == (1, 1, {})


def test_last_input_time_comes_from_the_clock():
    clock = FakeClock()
    slots = FrameSlots(["cam"], clock=clock)
    assert slots.stats("cam").last_in is None
    clock.now = 123.5
    slots.put("cam", "f")
    assert slots.stats("cam").last_in == 123.5


def test_bad_camera_lists_are_refused():
    with pytest.raises(ValueError, match="at least one"):
        FrameSlots([])
    with pytest.raises(ValueError, match="unique"):
        FrameSlots(["a", "a"])


def test_drop_log_limiter_reports_once_per_period_per_reason_with_counts():
    clock = FakeClock()
    limiter = DropLogLimiter(period=5.0, clock=clock)
    assert limiter.report("bad_step") == 1  # first one is logged at once
    assert limiter.report("bad_step") is None
    assert limiter.report("short_data") == 1  # other reasons are independent
    clock.now += 2.0
    assert limiter.report("bad_step") is None
    clock.now += 3.0  # 5 s after the first report
    assert limiter.report("bad_step") == 3  # the two quiet ones plus this one
    clock.now += 1.0
    assert limiter.report("bad_step") is None
