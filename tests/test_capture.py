"""Capture semantics: newest frame wins, nothing processed twice, exact drop counts."""

import threading
import time
import tracemalloc

import numpy as np
import pytest

from realtime.capture import END_OF_STREAM, CaptureThread, Frame, FrameRing, SamplingClock
from realtime.sources import open_source


def frame(sample, index=None):
    return Frame(
        index=sample if index is None else index,
        sample=sample,
        source_time=sample / 25,
        captured_at=time.monotonic(),
        image=np.zeros((2, 2, 3), np.uint8),
        display=None,
        decode_ms=0.0,
        preprocess_ms=0.0,
    )


def test_live_ring_hands_out_newest_and_counts_drops():
    ring = FrameRing(4)
    for s in range(3):
        ring.put(frame(s))
    assert ring.take(0).sample == 2
    assert ring.dropped == 2
    for s in range(3, 10):  # overwrites: more than the capacity arrives unread
        ring.put(frame(s))
    assert ring.take(0).sample == 9
    assert ring.dropped == 8  # 0,1 and 3..8
    assert ring.take(0) is None  # nothing new: never the same frame twice
    ring.close()
    assert ring.take(0) is END_OF_STREAM


def test_dropped_never_counts_frames_still_unread():
    """A frame is dropped only once the reader has passed it over, not while it waits."""
    ring = FrameRing(4)
    for s in range(3):
        ring.put(frame(s))
    assert ring.take(0).sample == 2  # passes over 0 and 1
    ring.put(frame(3))
    ring.put(frame(4))
    assert (ring.unread, ring.dropped, ring.taken, ring.written) == (2, 2, 1, 5)
    assert ring.take(0).sample == 4  # passes over 3
    assert (ring.unread, ring.dropped) == (0, 3)


def test_every_frame_ring_blocks_writer_and_keeps_order():
    ring = FrameRing(3, keep_every_frame=True)
    stop = threading.Event()
    done = []

    def writer():
        for s in range(10):
            ring.put(frame(s), stop)
        ring.close()
        done.append(True)

    thread = threading.Thread(target=writer)
    thread.start()
    deadline = time.monotonic() + 10
    while ring.unread < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # a writer that did not wait would have written on by now
    assert ring.unread == 3 and not done  # the writer waits for the reader
    got = []
    while (item := ring.take(2)) is not END_OF_STREAM:
        got.append(item.sample)
    thread.join(5)
    assert got == list(range(10))
    assert ring.dropped == 0


def test_sampling_clock_keeps_model_rate():
    clock = SamplingClock(25.0)
    admitted = [i for i in range(300) if clock.admit(i / 30.0)]  # 10 s of a 30 fps source
    assert len(admitted) == pytest.approx(250, abs=2)
    same = SamplingClock(25.0)
    assert all(same.admit(i / 25.0) for i in range(100))  # same rate: every frame
    half = SamplingClock(12.5)
    assert [i for i in range(8) if half.admit(i / 25.0)] == [0, 2, 4, 6]


def test_slow_consumer_never_gets_a_frame_twice_and_drop_count_is_exact(make_video):
    """A paced 25 fps file read by a consumer 3x too slow: newest wins, counts add up."""
    path = make_video(n=75, fps=25.0, width=96, height=72)
    source = open_source(str(path))
    ring = FrameRing(20)
    stop = threading.Event()
    capture = CaptureThread(source, ring, image_size=32, sampling_fps=25.0, stop=stop, pace=True)
    tracemalloc.start()
    capture.start()
    seen = []
    while (item := ring.take(5)) is not END_OF_STREAM:
        assert item is not None, "capture stalled"
        seen.append(item.sample)
        time.sleep(0.12)  # ~3 frame intervals per frame
    capture.join(5)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(seen) == len(set(seen)), "a frame was handed out twice"
    assert seen == sorted(seen)
    assert capture.stats.frames_read == 75 and capture.stats.frames_sampled == 75
    assert 10 < len(seen) < 60  # the consumer really was too slow to see them all
    assert ring.written - ring.taken == 75 - len(seen)
    expected_dropped = sum(b - a - 1 for a, b in zip(seen, seen[1:], strict=False)) + seen[0]
    assert ring.dropped == expected_dropped
    # bounded memory: 20 slots of 32x32x3 plus transient decode buffers, far below 75 frames
    assert peak < 5 * 1024 * 1024


def test_stop_event_ends_a_paced_replay_quickly(make_video):
    path = make_video(n=250, fps=25.0)
    ring = FrameRing(20)
    stop = threading.Event()
    capture = CaptureThread(
        open_source(str(path)), ring, image_size=32, sampling_fps=None, stop=stop, pace=True
    )
    capture.start()
    deadline = time.monotonic() + 30
    while ring.written < 3 and time.monotonic() < deadline:  # replay under way, not a guess
        time.sleep(0.01)
    assert ring.written >= 3
    t0 = time.monotonic()
    stop.set()
    capture.join(5)
    assert not capture.is_alive()
    assert time.monotonic() - t0 < 5
    assert capture.stats.frames_read < 250
    assert capture.state.value == "stopped"
