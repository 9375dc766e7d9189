"""A cluster on one machine, inside a network namespace of its own (run under `unshare -n`, as
root): a head on 127.0.0.1, two workers on 127.0.0.2 and 127.0.0.3 (loopback addresses that
exist only in this namespace), four MJPEG cameras on 127.0.0.1. The cameras are placed, then a
worker is SIGKILLed with its whole process group (`--kills` times, the survivors' cameras
alternating) and the time from each kill to each moved camera's first new prediction is
measured; then `status`, `down`, and a check that no process of the namespace is left.

Prints one JSON object (stdout), the scenario's progress on stderr. Used by
tests/test_cluster.py (one kill) and bench/cluster.py (five). Bounded: every wait has a
deadline, and whatever happens every process it started is killed before it exits.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from loopback.servers import MjpegCamera  # noqa: E402

HEAD = "127.0.0.1:6390"
WORKERS = ("127.0.0.2", "127.0.0.3")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Command:
    """`python -m realtime.cluster ...` in a process group of its own; its stderr kept."""

    def __init__(self, *args: str, env: dict):
        self.args = args
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "realtime.cluster", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip())

    def wait_for(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return True
            if self.process.poll() is not None:
                time.sleep(0.2)  # the last lines
                return any(text in line for line in self.lines)
            time.sleep(0.1)
        return False

    def killpg(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()

    def output(self) -> str:
        return "\n".join(self.lines)


def run(args: list[str], env: dict, timeout: float) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "realtime.cluster", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    return done.returncode, done.stdout + done.stderr


def read_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    lines = []
    for text in path.read_text().splitlines():
        lines.append(json.loads(text))  # every line parses: a partial one fails the scenario
    return lines


def where(out: Path, camera: str) -> tuple[str | None, int, int]:
    """(node of its newest placement, that placement, predictions since it)."""
    node, placement, count = None, 0, 0
    for line in read_lines(out / f"{camera}.jsonl"):
        if line.get("type") == "placement":
            node, placement, count = line["node"], line["placement"], 0
        elif "label" in line and line.get("placement") == placement:
            count += 1
    return node, placement, count


def first_prediction_after(out: Path, camera: str, placement: int) -> dict | None:
    for line in read_lines(out / f"{camera}.jsonl"):
        if "label" in line and line.get("placement", 0) > placement:
            return line
    return None


def namespace_processes() -> list[str]:
    """Every process in this network namespace but this one and its camera servers."""
    mine = os.readlink("/proc/self/ns/net")
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            if os.readlink(f"/proc/{pid}/ns/net") != mine:
                continue
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "loopback/mjpeg.py" not in cmd and cmd.strip():
            found.append(f"{pid} {cmd[:150]}")
    return found


def scenario(opts, env: dict, cameras: list[MjpegCamera], started: list[Command]) -> dict:
    work = Path(opts.work)
    out = work / "out"
    names = [f"cam{k}" for k in range(1, len(cameras) + 1)]
    toml = "".join(
        f'[[camera]]\nname = "{n}"\nsource = "{c.url}"\nreconnect = "forever"\n\n'
        for n, c in zip(names, cameras, strict=True)
    )
    (work / "cameras.toml").write_text(toml)
    result: dict = {"kills": []}

    t0 = time.monotonic()
    head = Command("head", "--model", opts.model, "--out", str(out), env=env)
    started.append(head)
    assert head.wait_for("cluster head on", 60), f"head did not start:\n{head.output()}"
    result["head_start_s"] = round(time.monotonic() - t0, 2)
    log(f"head up in {result['head_start_s']} s")

    def start_worker(host: str) -> Command:
        worker = Command(
            "worker", "--address", HEAD, "--host", host, "--capacity", str(opts.capacity), env=env
        )
        started.append(worker)
        return worker

    t0 = time.monotonic()
    workers = {}
    for host in WORKERS:  # one after the other: two Ray nodes starting at once on one machine
        workers[host] = worker = start_worker(host)  # can time out (separate machines do not)
        assert worker.wait_for("joined", 90), f"worker {host} did not join:\n{worker.output()}"
    result["workers_start_s"] = round(time.monotonic() - t0, 2)
    log(f"workers joined in {result['workers_start_s']} s")

    if opts.other_backbone:  # a worker whose backbone cannot run the model: refused, not joined
        code, text = run(
            ["worker", "--address", HEAD, "--host", "127.0.0.4", "--capacity", "20",
             "--backbone", opts.other_backbone],
            env, 120,
        )  # fmt: skip
        result["refused_worker"] = {"code": code, "output": text}

    code, text = run(["up", "--cameras", str(work / "cameras.toml"), "--address", HEAD], env, 120)
    result["up"] = {"code": code, "output": text}
    assert code == 0, f"up failed ({code}):\n{text}"

    def all_predicting(placement_at_least: dict | None = None) -> dict | None:
        now = {n: where(out, n) for n in names}
        ok = all(node is not None and count >= 3 for node, _, count in now.values())
        return now if ok else None

    deadline = time.monotonic() + 60
    while (placed := all_predicting()) is None:
        assert time.monotonic() < deadline, (
            f"not every camera predicts: { {n: where(out, n) for n in names} }"
        )
        time.sleep(0.25)
    result["placed"] = {n: node for n, (node, _, _) in placed.items()}
    log(f"placed: {result['placed']}")
    listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
    result["listening"] = sorted(
        {line.split()[3].rsplit(":", 1)[0] for line in listening.splitlines()}
    )

    for kill in range(opts.kills):
        victim_host = max(WORKERS, key=lambda h: sum(node == h for node, _, _ in placed.values()))
        moved = [n for n, (node, _, _) in placed.items() if node == victim_host]
        before = {n: placement for n, (_, placement, _) in placed.items()}
        kill_at = time.time()
        workers[victim_host].killpg()
        log(f"kill {kill + 1}: SIGKILL {victim_host} (cameras {moved})")
        deadline = time.monotonic() + opts.deadline
        firsts: dict[str, dict] = {}
        arrived: dict[str, float] = {}
        while len(firsts) < len(moved) and time.monotonic() < deadline:
            for name in moved:
                if name not in firsts:
                    line = first_prediction_after(out, name, before[name])
                    if line is not None:
                        firsts[name] = line
                        arrived[name] = time.time()
            time.sleep(0.05)
        stayed_alive = {
            n: where(out, n)[2] for n in names if n not in moved
        }  # the survivor's own cameras keep predicting through the kill
        entry = {
            "victim": victim_host,
            "moved": moved,
            "resumed_s": {n: round(line["wall_time"] - kill_at, 2) for n, line in firsts.items()},
            "written_s": {n: round(arrived[n] - kill_at, 2) for n in arrived},
            "new_node": {n: line["node"] for n, line in firsts.items()},
            "window_restarted": {n: line["window"] == 1 for n, line in firsts.items()},
            "others_predicting": stayed_alive,
        }
        result["kills"].append(entry)
        log(f"kill {kill + 1}: resumed {entry['resumed_s']}")
        if len(firsts) < len(moved):
            break
        if kill + 1 < opts.kills:  # bring the dead worker back, for the next kill
            workers[victim_host] = start_worker(victim_host)
            assert workers[victim_host].wait_for("joined", 90)
        deadline = time.monotonic() + 30
        while (placed := all_predicting()) is None:
            assert time.monotonic() < deadline, "not every camera predicts after the kill"
            time.sleep(0.25)
        placed = {n: v for n, v in placed.items()}

    if opts.leave:  # Ctrl-C on the worker with the cameras (SIGINT to its process group)
        leaving_host = next(h for h in WORKERS if h in {v[0] for v in placed.values()})
        other = next(h for h in WORKERS if h != leaving_host)
        if workers[other].process.poll() is not None:  # killed above: back, for the cameras
            workers[other] = start_worker(other)
            assert workers[other].wait_for("joined", 90), workers[other].output()
        before = {n: placement for n, (_, placement, _) in placed.items()}
        leaving = workers[leaving_host]
        t0 = time.monotonic()
        os.killpg(leaving.process.pid, signal.SIGINT)
        try:
            code = leaving.process.wait(30)
        except subprocess.TimeoutExpired:
            code = None
        exited_s = round(time.monotonic() - t0, 2)
        moved = {n for n, (node, _, _) in placed.items() if node == leaving_host}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(first_prediction_after(out, n, before[n]) for n in moved):
                break
            time.sleep(0.1)
        result["leave"] = {
            "host": leaving_host,
            "code": code,
            "exited_s": exited_s,
            "output": leaving.output(),
            "resumed_on": {
                n: (first_prediction_after(out, n, before[n]) or {}).get("node") for n in moved
            },
            "to": other,
        }
        log(f"left: {leaving_host} exit {code} in {exited_s} s")

    if opts.overflow:  # one camera more than the survivor has room for: unplaced, said so
        toml = f'[[camera]]\nname = "extra"\nsource = "{cameras[0].url}"\n'
        (work / "extra.toml").write_text(toml)
        code, text = run(
            ["up", "--cameras", str(work / "extra.toml"), "--address", HEAD, "--wait", "10"],
            env, 120,
        )  # fmt: skip
        counts = {n: where(out, n)[2] for n in names}
        time.sleep(1.5)
        result["overflow"] = {
            "code": code,
            "output": text,
            "still_predicting": {n: where(out, n)[2] > counts[n] for n in names},
        }

    if opts.rate_seconds:
        counts = {n: where(out, n)[2] for n in names}
        time.sleep(opts.rate_seconds)
        after = {n: where(out, n)[2] for n in names}
        result["results_per_s"] = round(
            sum(after[n] - counts[n] for n in names) / opts.rate_seconds, 2
        )

    code, text = run(["status", "--address", HEAD], env, 60)
    result["status"] = {"code": code, "output": text}
    code, text = run(["down", "--address", HEAD], env, 90)
    result["down"] = {"code": code, "output": text}
    deadline = time.monotonic() + 30
    for command in started:
        while command.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
    result["exit_codes"] = {" ".join(c.args[:1] + c.args[-3:-2]): c.process.poll() for c in started}
    result["head_output"] = head.output()
    result["worker_output"] = {h: w.output() for h, w in workers.items()}
    time.sleep(1)
    result["left_processes"] = namespace_processes()
    result["files"] = sorted(p.name for p in out.iterdir()) if out.exists() else []
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--kills", type=int, default=1)
    parser.add_argument("--capacity", type=int, default=20)
    parser.add_argument("--camera-fps", type=float, default=10.0)
    parser.add_argument("--deadline", type=float, default=30.0)
    parser.add_argument("--rate-seconds", type=float, default=0.0)
    parser.add_argument("--other-backbone", help="a .tflite the model was not made with")
    parser.add_argument("--overflow", action="store_true", help="up a camera with no room")
    parser.add_argument("--leave", action="store_true", help="Ctrl-C a worker with cameras")
    opts = parser.parse_args()
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    cameras: list[MjpegCamera] = []
    started: list[Command] = []
    result: dict = {}
    try:
        for _ in range(4):
            cameras.append(MjpegCamera(fps=opts.camera_fps, width=160, height=120).start())
        result = scenario(opts, env, cameras, started)
    except AssertionError as exc:
        result["error"] = str(exc)
        result["outputs"] = {" ".join(c.args[:1]): c.output()[-3000:] for c in started}
    finally:
        for command in started:
            command.killpg()
        for camera in cameras:
            camera.stop()
    print(json.dumps(result))
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    sys.exit(main())
