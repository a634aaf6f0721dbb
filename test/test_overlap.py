"""The two-stage frame path (sfs_ros/overlap.py) and the pipeline's two halves it runs."""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
import pytest

from sfs_ros.overlap import FrameOverlap


def test_items_are_finished_in_order_on_another_thread():
    seen: list[tuple[int, str]] = []
    overlap = FrameOverlap(
        lambda i: seen.append((i, threading.current_thread().name)), enabled=True
    )
    for i in range(5):
        assert overlap.submit(i)
    assert overlap.close(timeout=5)
    assert [i for i, _ in seen] == list(range(5))
    assert {name for _, name in seen} == {"sfs-finish"}


def test_disabled_runs_on_the_callers_thread():
    seen: list[str] = []
    overlap = FrameOverlap(lambda i: seen.append(threading.current_thread().name), enabled=False)
    assert overlap.submit(1)
    assert seen == [threading.current_thread().name]
    assert overlap.close(timeout=1)
    assert not overlap.submit(2)
    assert len(seen) == 1


def test_one_frame_deep_submit_waits_for_the_previous_frame():
    """While frame 1 is being finished, submitting frame 2 blocks: nothing queues up stale."""
    release = threading.Event()
    started = threading.Event()
    overlap = FrameOverlap(lambda i: (started.set(), release.wait(5)), enabled=True)
    assert overlap.submit(1)
    assert started.wait(5)
    done = threading.Event()
    submitter = threading.Thread(target=lambda: (overlap.submit(2), done.set()))
    submitter.start()
    assert not done.wait(0.3)  # still finishing frame 1
    release.set()
    assert done.wait(5)
    submitter.join(5)
    assert overlap.close(timeout=5)


def test_close_finishes_the_frame_in_progress_and_refuses_new_ones():
    finished: list[int] = []
    overlap = FrameOverlap(lambda i: (time.sleep(0.2), finished.append(i)), enabled=True)
    overlap.submit(1)
    assert overlap.close(timeout=5)
    assert finished == [1]
    assert not overlap.submit(2)


def test_close_reports_a_stage_still_busy():
    release = threading.Event()
    overlap = FrameOverlap(lambda i: release.wait(5), enabled=True)
    overlap.submit(1)
    time.sleep(0.05)
    assert not overlap.close(timeout=0.1)
    release.set()
    assert overlap._thread is not None
    overlap._thread.join(5)


def test_a_failing_finish_is_logged_and_the_next_frame_served(caplog):
    seen: list[int] = []

    def finish(i: int) -> None:
        if i == 1:
            raise RuntimeError("boom")
        seen.append(i)

    overlap = FrameOverlap(finish, enabled=True)
    with caplog.at_level(logging.ERROR, logger="sfs_ros"):
        for i in range(3):
            overlap.submit(i)
        assert overlap.close(timeout=5)
    assert seen == [0, 2]
    assert "frame finishing stage failed" in caplog.text and "boom" in caplog.text


# ------------------------------------------------------------------------------ pipeline halves
def test_infer_then_finish_equals_process_while_overlapping(pipeline):
    """Two frames overlapped (frame 2's networks while frame 1 finishes) give what process
    gives for each: the halves share no per-frame state."""
    from sfs_ros.samples import sample_images

    photos = [np.ascontiguousarray(p[:240, :320]) for p in sample_images()[:2]]
    expected = [pipeline.process(p) for p in photos]
    results: list = [None, None]
    first = pipeline.infer(photos[0])
    finisher = threading.Thread(target=lambda: results.__setitem__(0, pipeline.finish(first)))
    finisher.start()
    second = pipeline.infer(photos[1])
    finisher.join(60)
    results[1] = pipeline.finish(second)
    for got, want in zip(results, expected, strict=True):
        np.testing.assert_array_equal(got.label_map, want.label_map)
        np.testing.assert_array_equal(got.instance_work, want.instance_work)
        assert len(got.masks) == len(want.masks)
        assert {"fastsam", "closed_set", "vote_fuse", "paint", "total"} <= set(got.timings)
        assert got.timings["total"] == pytest.approx(
            sum(v for k, v in got.timings.items() if k != "total")
        )
