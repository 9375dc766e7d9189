"""Capture semantics: newest frame wins, nothing processed twice, exact drop counts."""

import threading
import time
import tracemalloc

import numpy as np
import pytest

from realtime.frames.clock import SamplingClock
from realtime.frames.sources import open_source
from realtime.stream.capture import END_OF_STREAM, CaptureThread, Frame, FrameRing


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


def test_frames_unread_when_the_reader_stops_count_as_dropped():
    ring = FrameRing(4)
    for s in range(3):
        ring.put(frame(s))
    assert ring.take(0).sample == 2
    ring.put(frame(3))
    ring.put(frame(4))
    assert ring.drop_unread() == 2
    assert (ring.unread, ring.dropped, ring.taken, ring.written) == (0, 4, 1, 5)
    assert ring.drop_unread() == 0  # once only
    assert ring.take(0) is None  # nothing left to read


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


def test_sampling_clock_boundaries():
    every = SamplingClock(None)
    assert all(every.admit(t) for t in (0.0, 0.01, 0.01, 0.02))  # no rate: every frame
    two_s = SamplingClock(0.5)  # a tick every 2 s, 20 % of it (0.4 s) early still counts
    assert two_s.admit(0.0)
    assert not two_s.admit(2.0 - 0.2 * 2.0 - 1e-9)
    assert two_s.admit(2.0 - 0.2 * 2.0)  # exactly at the tolerance: admitted
    # a frame exactly one period late (0.5 for the tick at 0.25) keeps the grid: the next
    # tick is 0.5, which a frame at 0.625 fills (re-anchoring would have moved it to 0.75)
    quarter = SamplingClock(4.0)  # 0.25 s period, binary-exact times below
    assert [quarter.admit(t) for t in (0.0, 0.5, 0.625)] == [True, True, True]
    assert not quarter.admit(0.6875)  # the next tick is 0.75, 0.05 early at most
    assert quarter.admit(1.125)  # more than a period late: re-anchored here
    quarter.reset()
    assert quarter.admit(0.0)  # after a reset the clock anchors on the next frame, any time
    assert not quarter.admit(0.125)


def test_ring_capacity_and_end_marker():
    with pytest.raises(ValueError, match="^capacity must be at least 1$"):
        FrameRing(0)
    one = FrameRing(1)
    one.put(frame(0))
    one.put(frame(1))
    assert one.take(timeout=1).sample == 1 and one.dropped == 1
    assert repr(END_OF_STREAM) == "END_OF_STREAM"


def test_a_blocked_writer_returns_false_soon_after_stop():
    ring = FrameRing(1, keep_every_frame=True)
    assert ring.put(frame(0))
    stop = threading.Event()
    stop.set()
    assert ring.put(frame(1), stop) is False and ring.written == 1  # full and stopped
    stop.clear()
    result = {}
    writer = threading.Thread(target=lambda: result.setdefault("put", ring.put(frame(1), stop)))
    writer.start()
    time.sleep(0.05)
    started = time.monotonic()
    stop.set()  # no notify: the writer sees it at its next 0.1 s check
    writer.join(5)
    assert result == {"put": False} and time.monotonic() - started < 1.0


def test_take_waits_for_a_frame_without_a_timeout_and_gives_up_with_one():
    ring = FrameRing(2)
    threading.Timer(0.2, lambda: ring.put(frame(0))).start()
    assert ring.take().sample == 0  # no timeout: waits for the writer
    threading.Timer(0.2, lambda: ring.put(frame(1))).start()
    assert ring.take(timeout=3).sample == 1  # a timeout longer than the wait
    started = time.monotonic()
    assert ring.take(timeout=0.3) is None
    assert 0.25 <= time.monotonic() - started < 5


def test_a_replay_ring_holds_20_unread_frames_by_default():
    ring = FrameRing(keep_every_frame=True)
    stop = threading.Event()
    stop.set()
    assert all(ring.put(frame(i), stop) for i in range(20))
    assert ring.put(frame(20), stop) is False  # 20 unread: full
