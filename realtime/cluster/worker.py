"""A worker's side of the cluster: one open-ended pipeline (`Pipeline(open_ended=True)`) running
the cameras the head says are placed on this machine, and what it sends back.

    loop, 4 times a second (`WorkerLoop.step`):
        items, figures = what the pipeline produced since the last step (`Forward`)
        cameras, down = sync(items, figures)      # the head's controller answers
        cameras that arrived: add (a new window; a `placement` line first)
        cameras that left:    remove

Nothing here imports Ray: `sync` is a function (`realtime.cluster.commands` makes it a call to
the controller), so the loop is tested with a plain one.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from realtime.app import camera_setup, start_opening
from realtime.cluster.controller import Assignment, CameraFigures
from realtime.stream.engine import Sink
from realtime.stream.pipeline import Camera, CameraSetup, Pipeline

#: items a worker keeps while the head cannot take them; beyond, the oldest go (counted)
MAX_BUFFERED_ITEMS = 50_000


class Forward(Sink):
    """Every camera's predictions, source state changes and gaps, as items for the head:

        ("placement", camera, {"type": "placement", "camera", "node", "placement", "wall_time"})
        ("prediction", camera, the JSONL record + "node" and "placement")
        ("source_state", camera, the state change's JSONL record)
        ("gap", camera, None)

    Written on the inference thread, taken by the worker's loop (`take`); bounded."""

    def __init__(self, node: str, clock: Callable[[], float] = time.time):
        self.node = node
        self.clock = clock
        self._lock = threading.Lock()
        self._items: deque = deque()
        self._placements: dict[str, int] = {}
        self.lost = 0

    def _put(self, item) -> None:
        with self._lock:
            if len(self._items) == MAX_BUFFERED_ITEMS:
                self._items.popleft()
                self.lost += 1
            self._items.append(item)

    def placed(self, camera: str, placement: int) -> None:
        """`camera` starts here: every line of it from now on says which placement."""
        with self._lock:
            self._placements[camera] = placement
        record = {
            "type": "placement",
            "camera": camera,
            "node": self.node,
            "placement": placement,
            "wall_time": round(self.clock(), 4),
        }
        self._put(("placement", camera, record))

    def handle(self, prediction, frame) -> None:
        record = prediction.to_record()
        with self._lock:
            placement = self._placements.get(prediction.camera, 0)
        record.update(node=self.node, placement=placement)
        self._put(("prediction", prediction.camera, record))

    def on_source_state(self, camera: str, change) -> None:
        self._put(("source_state", camera, {**change.to_record(), "camera": camera}))

    def on_gap(self, camera: str) -> None:
        self._put(("gap", camera, None))

    def requeue(self, items: list) -> None:
        """Items `take` returned that could not be sent: back in front, oldest first."""
        with self._lock:
            self._items.extendleft(reversed(items))
            while len(self._items) > MAX_BUFFERED_ITEMS:
                self._items.popleft()
                self.lost += 1

    def take(self) -> list:
        with self._lock:
            items = list(self._items)
            self._items.clear()
            return items


def figures_of(camera: Camera) -> CameraFigures:
    status = camera.status()
    latest = camera.latest()
    prediction = latest[0] if latest else None
    return CameraFigures(
        state=status.state_text,
        top_label=prediction.top_label if prediction else "",
        score=round(prediction.score, 4) if prediction else 0.0,
        fps=round(status.fps, 2),
        frame_age_ms=round(prediction.frame_age_ms, 1) if prediction else None,
        classified=status.classified,
        dropped=status.dropped,
        reconnects=status.reconnects,
    )


class Opening:
    """A placed camera's source being opened on a helper thread, as `python -m realtime` opens
    its cameras (`realtime.app.start_opening`), so that a slow or dead camera never holds up
    the worker's loop; `setup()` once `done`."""

    def __init__(self, assignment: Assignment):
        self.assignment = assignment
        self.attempt = start_opening(assignment.config)

    @property
    def done(self) -> bool:
        return self.attempt.done.is_set()

    def setup(self) -> CameraSetup:
        """As `python -m realtime` sets up a camera (`realtime.app.camera_setup`): one that did
        not open is retried by its reconnect policy on its capture thread (a file: left out)."""
        self.attempt.join()
        return camera_setup(self.assignment.config, self.attempt)

    def abandon(self) -> None:
        """Not wanted any more: what it opens is released (now, or when the open returns)."""
        stop = threading.Event()
        stop.set()
        self.attempt.wait(stop)


class WorkerLoop:
    """Keeps the pipeline's cameras equal to those the head placed on this machine."""

    def __init__(
        self,
        pipeline: Pipeline,
        forward: Forward,
        sync: Callable[[list, dict], tuple[list[Assignment], bool]],
        log: Callable[[str], None] = lambda message: None,
    ):
        self.pipeline = pipeline
        self.forward = forward
        self.sync = sync
        self.log = log
        self.running: dict[str, int] = {}  # camera -> its placement number here
        self.opening: dict[str, Opening] = {}
        self.down = False

    def step(self) -> None:
        """Send what was produced, learn which cameras run here, add and remove cameras."""
        figures = {c.name: figures_of(c) for c in self.pipeline.present()}
        items = self.forward.take()
        try:
            wanted, self.down = self.sync(items, figures)
        except Exception:
            self.forward.requeue(items)
            raise
        wanted_by_name = {a.config.name: a for a in wanted}
        for name, placement in list(self.running.items()):
            assignment = wanted_by_name.get(name)
            if assignment is None or assignment.placement != placement:
                self.pipeline.remove_camera(name)
                del self.running[name]
                self.log(f"camera {name} left this worker")
        for name, opening in list(self.opening.items()):
            if wanted_by_name.get(name) != opening.assignment:
                opening.abandon()
                del self.opening[name]
        for name, assignment in wanted_by_name.items():
            if name not in self.running and name not in self.opening:
                self.opening[name] = Opening(assignment)
        for name, opening in list(self.opening.items()):
            if opening.done:
                del self.opening[name]
                self._start(opening)

    def _start(self, opening: Opening) -> None:
        name, placement = opening.assignment.config.name, opening.assignment.placement
        self.forward.placed(name, placement)
        self.pipeline.add_camera(opening.setup())
        self.running[name] = placement
        self.log(f"camera {name} runs here (placement {placement})")

    def close(self) -> None:
        """Abandon the opens still under way (their sources are released when they return)."""
        for opening in self.opening.values():
            opening.abandon()
        self.opening.clear()
