"""A camera's placement unit: a Ray actor with no backbone and no frame, reserving the camera's
sampling rate of `camera_fps` on the machine Ray chose. Starting (first placement, or a restart
on another machine after its machine died) it tells the controller where it is; that machine's
worker then runs the camera (`realtime.cluster.worker`). It does nothing else: a small process
per camera (Ray runs each actor in a process of its own)."""

from __future__ import annotations

import ray

from realtime.cluster.nodes import CONTROLLER, NAMESPACE


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class CameraSlot:
    def __init__(self, name: str):
        self.name = name
        self.node_id = ray.get_runtime_context().get_node_id()
        controller = ray.get_actor(CONTROLLER, namespace=NAMESPACE)
        self.placement = ray.get(controller.placed.remote(name, self.node_id))

    def where(self) -> tuple[str, int]:
        return self.node_id, self.placement
