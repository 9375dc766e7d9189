"""The cluster's five commands over Ray (`python -m realtime.cluster --help`; `realtime.cluster.cli`
parses, this module runs them). Imported only once Ray is known to be installed."""

from __future__ import annotations

import math
import socket
import sys
import tempfile
import threading
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import ray
from ray.experimental.internal_kv import _internal_kv_put
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from rich.console import Console
from rich.table import Table

from realtime.app import StopFlag, signals_call
from realtime.backbones import backbone_spec_from_metadata, load_backbone
from realtime.cameras import read_cameras_file
from realtime.cluster.collect import ResultFiles, check_out_dir
from realtime.cluster.controller import Controller
from realtime.cluster.model import pack_model, unpack_model
from realtime.cluster.nodes import (
    CONTROLLER,
    MODEL_KEY,
    NAMESPACE,
    RESOURCE,
    HeadAddress,
    RayNode,
    parse_address,
)
from realtime.cluster.slot import CameraSlot
from realtime.cluster.worker import Forward, WorkerLoop
from realtime.core.errors import Failure, InputError, first_line, log
from realtime.core.optional import native_stderr_silenced
from realtime.frames.sources import CaptureOptions
from realtime.head.classifier import ActionClassifier
from realtime.head.modeldir import check_compatible, read_model_info
from realtime.stream.engine import OutputClosed, OutputFailed
from realtime.stream.pipeline import Pipeline, RunSettings
from realtime.stream.reconnect import ReconnectPolicy

STEP_S = 0.25  # how often a worker syncs with the controller and the head drains it
#: a worker whose controller does not answer for this long has lost the head
LOST_HEAD_S = 15.0
#: The share of its backbone's rate on a blank frame that a worker offers: decoding, cropping,
#: the head, the capture threads and Ray share the same cores. Measured on a 2-core Xeon
#: (docs/cluster.md): with 640x360 H.264 cameras, one process classified at most 0.49x
#: (InceptionV3, openvino-bf16) and 0.68x (MobileNet, LiteRT) of that rate, frames already
#: dropping there; 0.4 keeps a margin. `--capacity FPS` when you have measured better.
HEADROOM = 0.4


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def check_reachable(address: HeadAddress, timeout: float = 5.0) -> None:
    """A TCP connection to the head's port, first: Ray's own client waits some 40 s before it
    gives up on an address where nothing listens."""
    try:
        socket.create_connection((address.host, address.port), timeout=timeout).close()
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise InputError(f"cannot reach the cluster's head at {address} ({reason})") from None


def connect(address: HeadAddress, node_ip: str | None = None) -> None:
    """This process joins the cluster as a driver, through the node on `node_ip` (the head's
    machine for up/status/down: they run there)."""
    check_reachable(address)
    try:
        with native_stderr_silenced():
            ray.init(
                address=str(address),
                namespace=NAMESPACE,
                logging_level="ERROR",
                log_to_driver=False,
                configure_logging=True,
                _node_ip_address=node_ip or address.host,
            )
    except Exception as exc:
        raise InputError(
            f"cannot reach the cluster's head at {address} ({first_line(exc, 160)}); "
            "up, status and down run on the head's machine"
        ) from None
    _ray_messages_to_our_log()


def _ray_messages_to_our_log() -> None:
    """Ray's driver prints every cluster-wide error it hears of (a node declared dead, a raylet
    stopped, with 20 lines of its log) on stdout, in the middle of `status`'s table and of our
    own lines, which already say what happened ("worker ... is gone"). They go to our log
    instead (`-v` shows them). Ray offers no switch for it: its module function is replaced."""

    def to_log(data, ignore_prefix=False):
        for line in data.get("lines", ()):
            log.debug("ray (%s): %s", data.get("pid", "?"), line)

    ray._private.worker.print_to_stdstream = to_log


def controller_handle():
    try:
        return ray.get_actor(CONTROLLER, namespace=NAMESPACE)
    except ValueError:
        raise InputError("no cluster runs there (its head is not running)") from None


# head ----------------------------------------------------------------------------------------


def head(args) -> int:
    model_dir, out = Path(args.model), Path(args.out)
    info = read_model_info(model_dir)
    check_out_dir(out, model_dir)
    blob = pack_model(model_dir)
    address = HeadAddress(args.host, args.port)
    node = RayNode.head(address)
    node.start()
    try:
        connect(address)  # (Ray's own signal handlers, then ours)
        stopped = StopFlag()
        with signals_call(stopped.raise_):
            return _serve_head(args, address, model_dir, info, blob, out, node, stopped)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        node.stop()


def _serve_head(args, address, model_dir, info, blob, out, node, stopped) -> int:
    _internal_kv_put(MODEL_KEY, blob, namespace=NAMESPACE)
    model = {
        "dir": str(model_dir.resolve()),
        "labels": list(info.labels),
        "backbone": info.backbone.name,
        "sampling_fps": info.sampling_fps,
    }
    node_id = ray.get_runtime_context().get_node_id()
    controller = (
        ray.remote(Controller)
        .options(
            name=CONTROLLER,
            namespace=NAMESPACE,
            num_cpus=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
        )
        .remote(model)
    )
    ray.get(controller.status.remote())
    say(
        f"cluster head on {address}: model {model_dir} ({len(info.labels)} classes); "
        f"results in {out}/"
    )
    say(f"  workers: python -m realtime.cluster worker --address {address}")
    files = ResultFiles(out, args.hysteresis, args.min_duration)
    placements: dict[str, tuple[str, int]] = {}
    problems: list[Failure] = []
    try:
        while not stopped.raised and node.alive:
            files.write(ray.get(controller.drain.remote()))
            alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
            for host in ray.get(controller.prune.remote(alive)):
                say(f"worker {host} is gone; Ray moves its cameras to workers with room")
            status = ray.get(controller.status.remote())
            _report_placements(status, placements)
            if status["down"]:
                break
            time.sleep(STEP_S)
        else:
            if not node.alive and not stopped.raised:
                problems.append(Failure(f"the head's Ray node ended: {node.reason()}"))
        _stop_cameras(controller)
        time.sleep(STEP_S * 2)  # the workers' last items
        files.write(ray.get(controller.drain.remote()))
    except (OutputFailed, OutputClosed) as exc:
        problems.append(Failure(str(exc)))
    finally:
        problems += files.close()
    for problem in problems:
        say(f"error: {problem.message}")
    say(f"cluster stopped; {files.written} lines written under {out}/")
    return 1 if problems else 0


def hosts_of(status: dict) -> dict[str, str]:
    """Each worker's node id -> its address."""
    return {w.node_id: w.host for w in status["workers"]}


def _report_placements(status: dict, seen: dict) -> None:
    hosts = hosts_of(status)
    for camera in status["cameras"]:
        where = (camera.node_id, camera.placement)
        if camera.node_id is not None and seen.get(camera.name) != where:
            seen[camera.name] = where
            host = hosts.get(camera.node_id, camera.node_id[:12])
            moved = " (moved: its window starts over)" if camera.placement > 1 else ""
            say(f"camera {camera.name} runs on {host}{moved}")


def _stop_cameras(controller) -> None:
    """Every camera's actor (detached: it would outlive the head otherwise); then down."""
    status = ray.get(controller.status.remote())
    for camera in status["cameras"]:
        try:
            ray.kill(ray.get_actor(slot_name(camera.name), namespace=NAMESPACE))
        except ValueError:
            pass
    ray.get(controller.request_down.remote())


def slot_name(camera: str) -> str:
    return f"camera:{camera}"


# worker --------------------------------------------------------------------------------------


def stored_model(address: HeadAddress, timeout: float) -> bytes | None:
    """The model the head put in Ray's key-value store, read without joining the cluster
    (None: not there yet); raises what Ray raises when the head does not answer."""
    with native_stderr_silenced():  # Ray's own warnings while it tries
        client = ray._raylet.GcsClient(address=str(address))
        return client.internal_kv_get(MODEL_KEY, NAMESPACE.encode(), timeout=timeout)


def fetch_model(address: HeadAddress, timeout: float = 10.0) -> bytes:
    """The model the head shipped, read before joining."""
    check_reachable(address)
    try:
        blob = stored_model(address, timeout)
    except Exception as exc:
        raise InputError(
            f"cannot reach the cluster's head at {address} ({first_line(exc, 160)})"
        ) from None
    if blob is None:
        raise InputError(f"the head at {address} has no model yet (is it starting?)")
    return blob


def own_address(address: HeadAddress) -> str:
    """This machine's address towards the head (no packet is sent: a UDP socket's route)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((address.host, address.port))
            return probe.getsockname()[0]
        except OSError as exc:
            raise InputError(f"no route to the head at {address}: {exc.strerror}") from None


@dataclass(frozen=True)
class Capacity:
    fps: int
    how: str


def measure_capacity(backbone, image_size: int, seconds: float = 3.0) -> Capacity:
    """Frames per second this machine's backbone sustains, every way it runs at once
    (`parallel_extractors`, as the pipeline uses them), times `HEADROOM`."""
    extractors = backbone.parallel_extractors() or [backbone.extract]
    blank = np.zeros((1, image_size, image_size, 3), np.uint8)
    for extract in extractors:
        extract(blank)
    counts = [0] * len(extractors)
    deadline = time.monotonic() + seconds

    def work(k, extract):
        while time.monotonic() < deadline:
            extract(blank)
            counts[k] += 1

    start = time.monotonic()
    threads = [threading.Thread(target=work, args=(k, e)) for k, e in enumerate(extractors)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rate = sum(counts) / (time.monotonic() - start)
    fps = max(1, math.floor(rate * HEADROOM))
    return Capacity(fps, f"measured: {rate:.1f} frames/s x {HEADROOM}")


def worker(args) -> int:
    address = parse_address(args.address)
    host = args.host or own_address(address)
    blob = fetch_model(address)
    with tempfile.TemporaryDirectory(prefix="realtime-cluster-model-") as tmp:
        model_dir = unpack_model(blob, Path(tmp))
        info = read_model_info(model_dir)
        spec = args.backbone or backbone_spec_from_metadata(info.backbone, model_dir)
        backbone = load_backbone(
            spec,
            args.backbone_weights,
            args.threads,
            backend=args.backend,
            cache_dir=args.cache_dir,
            pooling=info.backbone.pooling,
            motion=info.backbone.motion,
        )
        try:
            check_compatible(info, backbone.identity(), model_dir)
        except InputError as exc:
            raise InputError(f"this worker cannot run the cluster's model: {exc}") from None
        classifier = ActionClassifier(model_dir, info)
        if args.capacity == "auto":
            capacity = measure_capacity(backbone, info.image_size)
        else:
            capacity = Capacity(int(args.capacity), "given")
        node = RayNode.worker(address, host, capacity.fps)
        node.start()
        try:
            connect(address, node_ip=host)
            stopped = StopFlag()
            with signals_call(stopped.raise_):
                return _serve_worker(address, host, backbone, classifier, capacity, node, stopped)
        finally:
            log.debug("leaving: ray.shutdown")
            if ray.is_initialized():
                ray.shutdown()
            log.debug("leaving: stopping the node")
            node.stop()
            log.debug("left")


def _serve_worker(address, host, backbone, classifier, capacity, node, stopped) -> int:
    node_id = ray.get_runtime_context().get_node_id()
    controller = controller_handle()
    label = f"{backbone.name} on {backbone.backend}"
    ray.get(controller.join.remote(node_id, host, capacity.fps, label))
    say(f"worker {host} joined {address}: {capacity.fps} fps for cameras ({capacity.how}; {label})")
    forward = Forward(host)
    pipeline = Pipeline([], backbone, classifier, RunSettings(), [forward], open_ended=True)

    def sync(items, figures):
        return ray.get(controller.sync.remote(node_id, items, figures), timeout=LOST_HEAD_S)

    loop = WorkerLoop(pipeline, forward, sync, log=say)
    problem = None
    with pipeline, closing(loop):
        pipeline.start()
        while not stopped.raised and node.alive and not loop.down:
            try:
                loop.step()
            except (ray.exceptions.RayError, ray.exceptions.GetTimeoutError) as exc:
                problem = f"lost the cluster's head at {address} ({first_line(exc, 120)})"
                break
            if pipeline.engine.failure is not None:
                problem = pipeline.engine.failure.message
                break
            time.sleep(STEP_S)
        if problem is None and not node.alive and not stopped.raised:
            problem = f"this worker's Ray node ended: {node.reason()}"
    log.debug("the pipeline is closed")
    if problem is None:
        try:
            ray.get(controller.leave.remote(node_id), timeout=5)
        except Exception:
            pass
        say(f"worker {host} left the cluster")
        return 0
    say(f"error: {problem}")
    return 1


# up / status / down --------------------------------------------------------------------------


def up(args) -> int:
    address = parse_address(args.address)
    options = CaptureOptions(args.open_timeout, args.read_timeout, args.rtsp_transport)
    cameras = read_cameras_file(Path(args.cameras), options, ReconnectPolicy())
    connect(address)
    controller = controller_handle()
    model = ray.get(controller.status.remote())["model"]
    rate = args.demand or model["sampling_fps"]
    if not rate:
        raise InputError("the model samples every frame: give each camera's rate with --demand")
    demand = math.ceil(rate)
    taken = ray.get(controller.add_cameras.remote(cameras, demand))
    if taken:
        raise InputError(f"already in the cluster: {', '.join(taken)} (camera names are unique)")
    for camera in cameras:
        CameraSlot.options(
            name=slot_name(camera.name),
            namespace=NAMESPACE,
            lifetime="detached",
            resources={RESOURCE: demand},
            scheduling_strategy="SPREAD",
        ).remote(camera.name)
    names = {camera.name for camera in cameras}
    started = time.monotonic()
    while True:
        status = ray.get(controller.status.remote())
        mine = [c for c in status["cameras"] if c.name in names]
        waiting = [c for c in mine if c.node_id is None]
        no_room = all(free < demand for free in status["free_fps"].values())
        waited = time.monotonic() - started
        # those still waiting after 3 s with no room anywhere will not be placed now
        if not waiting or (no_room and waited > 3) or waited > args.wait:
            break
        time.sleep(0.2)
    show(status, Console(stderr=True))
    if waiting:
        free = sum(max(0, f) for f in status["free_fps"].values())
        raise InputError(
            f"{len(waiting)} of {len(mine)} cameras are not placed "
            f"({', '.join(c.name for c in waiting)}): each needs {demand} fps and the workers "
            f"have {free} fps free; the others run, and these start when a worker with room "
            "joins"
        )
    return 0


def status(args) -> int:
    connect(parse_address(args.address))
    controller = controller_handle()
    show(ray.get(controller.status.remote()), Console())
    return 0


def down(args) -> int:
    address = parse_address(args.address)
    connect(address)
    controller = controller_handle()
    ray.get(controller.request_down.remote())
    ray.shutdown()
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:  # until the head has stopped its node
        try:
            stored_model(address, timeout=1)
        except Exception:
            say(f"the cluster at {address} has stopped")
            return 0
        time.sleep(0.5)
    raise InputError(
        f"the head at {address} was asked to stop but still runs after {args.wait:g} s"
    )


def show(status: dict, console: Console) -> None:
    hosts = hosts_of(status)
    workers = Table(title="workers", title_justify="left")
    for column in ("machine", "capacity fps", "free fps", "backbone"):
        workers.add_column(column)
    for w in status["workers"]:
        free = status["free_fps"].get(w.node_id, 0)
        workers.add_row(w.host, str(w.capacity_fps), str(free), w.backbone)
    cameras = Table(title="cameras", title_justify="left")
    for column in ("camera", "machine", "state", "action", "score", "fps", "age ms", "placed"):
        cameras.add_column(column)
    now = status["now"]
    for c in status["cameras"]:
        f = c.figures
        if c.node_id is None:
            machine, state = "unplaced", "-"
        elif c.node_id not in hosts:  # its machine died; Ray restarts it where there is room
            machine, state = "-", "moving"
        else:
            stale = c.reported_at is None or now - c.reported_at > 5
            machine, state = hosts[c.node_id], "starting" if stale else f.state
        age = "-" if f.frame_age_ms is None else f"{f.frame_age_ms:.0f}"
        cameras.add_row(
            c.name,
            machine,
            state,
            f.top_label or "-",
            f"{f.score:.2f}" if f.top_label else "-",
            f"{f.fps:.1f}",
            age,
            str(c.placement),
        )
    console.print(workers)
    console.print(cameras)
    if status["lost_items"]:
        console.print(f"{status['lost_items']} lines lost: the head did not keep up")
