"""The head's record of the cluster: workers, cameras, where each camera runs, what it reports.

One `Controller` lives on the head node as a Ray actor (`realtime.cluster.commands` wraps this
class; its calls run one at a time). It is the only place the cluster's parts meet:

    camera actor (`slot`)  --placed(camera, node)-->      which machine runs it, how many times
    worker                 --sync(node, items, figures)--> its cameras' predictions and figures;
                           <-- (cameras to run, down?)     the cameras placed on its machine now
    head                   --drain()-->                    the predictions, to write under --out
    up / status / down     --add_cameras / status / request_down

It holds no frame and no Ray handle: plain data in, plain data out, tested without Ray.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field, replace

from realtime.cameras import CameraConfig

#: predictions waiting for the head to write them; beyond this the oldest are dropped, counted
MAX_PENDING_ITEMS = 200_000


@dataclass(frozen=True)
class WorkerInfo:
    """A worker that joined: its Ray node, address, capacity and backbone."""

    node_id: str
    host: str
    capacity_fps: int
    backbone: str
    joined_at: float


@dataclass(frozen=True)
class CameraFigures:
    """What a worker last said of one of its cameras (`status` shows it)."""

    state: str = "waiting"
    top_label: str = ""
    score: float = 0.0
    fps: float = 0.0
    frame_age_ms: float | None = None
    classified: int = 0
    dropped: int = 0
    reconnects: int = 0


@dataclass(frozen=True)
class CameraRecord:
    """A camera of the cluster: its configuration, demand, and where it runs."""

    config: CameraConfig
    demand_fps: int
    node_id: str | None = None  # None: not placed (yet)
    placement: int = 0  # how many times it has been placed: 2 and more = moved or restarted
    figures: CameraFigures = field(default_factory=CameraFigures)
    reported_at: float | None = None

    @property
    def name(self) -> str:
        return self.config.name


@dataclass(frozen=True)
class Assignment:
    """A camera a worker must run: its configuration and which placement this is."""

    config: CameraConfig
    placement: int


class Controller:
    def __init__(self, model: dict, clock=time.time):
        """`model`: what `status` says of the cluster's model (labels, backbone, rate)."""
        self.model = dict(model)
        self.clock = clock
        self.workers: dict[str, WorkerInfo] = {}
        self.cameras: dict[str, CameraRecord] = {}
        self.pending: deque = deque()
        self.lost_items = 0  # dropped because the head did not drain them in time
        self.down = False

    # workers
    def join(self, node_id: str, host: str, capacity_fps: int, backbone: str) -> None:
        self.workers[node_id] = WorkerInfo(node_id, host, capacity_fps, backbone, self.clock())

    def leave(self, node_id: str) -> None:
        self.workers.pop(node_id, None)

    def prune(self, alive: set[str]) -> list[str]:
        """Forget the workers whose Ray node is no longer alive (the head asks Ray); their
        cameras show as moving until Ray has restarted them elsewhere. Returns their hosts."""
        dead = [w for n, w in self.workers.items() if n not in alive]
        for worker in dead:
            del self.workers[worker.node_id]
        return [w.host for w in dead]

    # cameras
    def add_cameras(self, configs: list[CameraConfig], demand_fps: int) -> list[str]:
        """Register cameras before their actors are made; the names already present are
        returned (and nothing is added) so that `up` can refuse the file in one line."""
        taken = [c.name for c in configs if c.name in self.cameras]
        if taken:
            return taken
        for config in configs:
            self.cameras[config.name] = CameraRecord(config, demand_fps)
        return []

    def remove_camera(self, name: str) -> None:
        self.cameras.pop(name, None)

    def placed(self, name: str, node_id: str) -> int:
        """Camera `name`'s actor started on `node_id` (first placement, or restarted after its
        machine died); returns the placement number."""
        record = self.cameras[name]
        record = replace(
            record,
            node_id=node_id,
            placement=record.placement + 1,
            figures=CameraFigures(),
            reported_at=None,
        )
        self.cameras[name] = record
        return record.placement

    def assigned(self, node_id: str) -> list[Assignment]:
        return [
            Assignment(r.config, r.placement) for r in self.cameras.values() if r.node_id == node_id
        ]

    # results
    def sync(
        self, node_id: str, items: list, figures: dict[str, CameraFigures]
    ) -> tuple[list[Assignment], bool]:
        """A worker's report: its cameras' items (to write) and figures; the answer is the
        cameras it must run now and whether the cluster is going down."""
        for item in items:
            if len(self.pending) == MAX_PENDING_ITEMS:
                self.pending.popleft()
                self.lost_items += 1
            self.pending.append(item)
        now = self.clock()
        for name, camera_figures in figures.items():
            record = self.cameras.get(name)
            if record is not None and record.node_id == node_id:  # not a camera it just lost
                self.cameras[name] = replace(record, figures=camera_figures, reported_at=now)
        return self.assigned(node_id), self.down

    def drain(self, limit: int = 20_000) -> list:
        count = min(limit, len(self.pending))
        return [self.pending.popleft() for _ in range(count)]

    # the whole
    def free_fps(self) -> dict[str, int]:
        """Each worker's capacity not reserved by the cameras placed on it."""
        used: dict[str, int] = {}
        for record in self.cameras.values():
            if record.node_id is not None:
                used[record.node_id] = used.get(record.node_id, 0) + record.demand_fps
        return {n: w.capacity_fps - used.get(n, 0) for n, w in self.workers.items()}

    def status(self) -> dict:
        """Everything `status` and `up` show, as plain data."""
        return {
            "model": self.model,
            "workers": list(self.workers.values()),
            "free_fps": self.free_fps(),
            "cameras": list(self.cameras.values()),
            "lost_items": self.lost_items,
            "down": self.down,
            "now": self.clock(),
        }

    def request_down(self) -> None:
        self.down = True
