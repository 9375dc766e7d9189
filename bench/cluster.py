"""The cluster on one machine, measured: `python -m bench.cluster` (or `python -m bench --cluster`;
as root: everything runs inside a network namespace of its own, `unshare -n`).

1. Kills: a head and two workers (127.0.0.2, 127.0.0.3, each offering 20 fps), four MJPEG
   cameras at 10 fps and a model sampled at 5 fps (each camera reserves 5 fps); the worker with
   the most cameras is SIGKILLed with its process group `--kills` times (restarted between
   kills): time from each kill to each moved camera's first new prediction (its `wall_time`)
   and to that line being on the head's disk; then predictions per second reaching the head.
   (`tests/cluster_namespace.py`, which the CI test runs with one kill.)
2. Overhead: 4 and 8 MJPEG cameras at 25 fps with a model sampled at 25 fps (100 and 200
   frames a second to classify on 2 cores: within and beyond what one machine sustains with the
   shared LiteRT backbone) in one plain multi-camera process (`python -m realtime --cameras`)
   and through the cluster (a head and one worker on the same machine), alternating A B B A:
   predictions per second written, frames dropped, frame age, the machine's busy cores, over
   `--seconds` after every camera's first prediction and a warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.cameras import model_at, read_records, report  # noqa: E402
from bench.startup import cpu_name  # noqa: E402

SCENARIO = ROOT / "tests" / "cluster_namespace.py"
VARIANTS = ("one process", "cluster (head + 1 worker)")
WARMUP_S = 3.0


def busy_jiffies() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def build_model(work: Path, shared: Path) -> Path:
    from realtime.backbones.litert import LiteRTBackbone
    from tests.conftest import MOBILENET_V1_EMBEDDER, build_model_dir

    model = work / "model"
    if not model.is_dir():
        build_model_dir(model, LiteRTBackbone(shared / "models" / MOBILENET_V1_EMBEDDER))
    return model


def kills(model5: Path, work: Path, count: int, env: dict) -> dict:
    scenario = work / "kills"
    shutil.rmtree(scenario, ignore_errors=True)
    scenario.mkdir()
    done = subprocess.run(
        [sys.executable, str(SCENARIO), "--model", str(model5), "--work", str(scenario),
         "--kills", str(count), "--rate-seconds", "10", "--deadline", "60"],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if "error" in result:
        raise SystemExit(f"the kill scenario failed: {result['error']}")
    return result


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def measure(variant: str, model: Path, cameras_toml: Path, names: list[str], work: Path,
            env: dict, seconds: float) -> dict:  # fmt: skip
    from tests.cluster_namespace import HEAD, Command, run

    run_dir = work / f"run-{time.monotonic_ns()}"
    run_dir.mkdir()
    started: list = []
    plain = None
    try:
        if variant == VARIANTS[0]:
            jsonl = run_dir / "run.jsonl"
            plain = subprocess.Popen(
                [sys.executable, "-m", "realtime", "--cameras", str(cameras_toml), "--model",
                 str(model), "--ui", "none", "--jsonl", str(jsonl), "-q"],
                env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip

            def records():
                return read_records(jsonl)
        else:
            out = run_dir / "out"
            head = Command("head", "--model", str(model), "--out", str(out), env=env)
            started.append(head)
            assert head.wait_for("cluster head on", 60), head.output()
            worker = Command("worker", "--address", HEAD, "--host", "127.0.0.2",
                             "--capacity", "1000", env=env)  # fmt: skip
            started.append(worker)
            assert worker.wait_for("joined", 90), worker.output()
            code, text = run(["up", "--cameras", str(cameras_toml), "--address", HEAD], env, 120)
            assert code == 0, text

            def records():
                return [r for n in names for r in read_records(out / f"{n}.jsonl")]

        deadline = time.monotonic() + 120
        while {r["camera"] for r in records()} != set(names):
            assert time.monotonic() < deadline, f"{variant}: not every camera predicts"
            time.sleep(0.2)
        time.sleep(WARMUP_S)
        busy0, total0 = busy_jiffies()
        t0 = time.time()
        time.sleep(seconds)
        t1 = time.time()
        busy1, total1 = busy_jiffies()
        time.sleep(1.0)  # the span's last lines reach the disk (the cluster: through the head)
        span = [r for r in records() if t0 <= r["wall_time"] < t1]
        dropped = 0
        for name in names:
            mine = [r for r in span if r["camera"] == name]
            if mine:
                dropped += mine[-1]["dropped"] - mine[0]["dropped"]
        ages = [r["frame_age_ms"] for r in span]
        return {
            "predictions_per_s": round(len(span) / (t1 - t0), 2),
            "dropped_pct": round(100 * dropped / max(1, dropped + len(span)), 2),
            "age_p50_ms": round(percentile(ages, 0.5), 1),
            "age_p95_ms": round(percentile(ages, 0.95), 1),
            "machine_cores": round(os.cpu_count() * (busy1 - busy0) / max(1, total1 - total0), 2),
        }
    finally:
        if plain is not None:
            plain.send_signal(signal.SIGINT)
            try:
                plain.wait(30)
            except subprocess.TimeoutExpired:
                plain.kill()
        if started:
            run(["down", "--address", HEAD], env, 90)
            for command in started:
                command.killpg()


def overhead(model: Path, work: Path, env: dict, seconds: float, repeats: int, count: int):
    from loopback.servers import MjpegCamera

    names = [f"cam{k}" for k in range(1, count + 1)]
    cameras = [MjpegCamera(fps=25.0, width=320, height=240).start() for _ in names]
    try:
        toml = work / f"cameras{count}x25.toml"
        toml.write_text("".join(
            f'[[camera]]\nname = "{n}"\nsource = "{c.url}"\n\n'
            for n, c in zip(names, cameras, strict=True)
        ))  # fmt: skip
        order = [v for k in range(repeats) for v in (VARIANTS if k % 2 == 0 else VARIANTS[::-1])]
        runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
        for variant in order:
            print(f"overhead: {count} cameras, {variant}", file=sys.stderr, flush=True)
            runs[variant].append(measure(variant, model, toml, names, work, env, seconds))
        return runs
    finally:
        for camera in cameras:
            camera.stop()


def summary(runs: dict, count: int) -> list[dict]:
    rows = []
    base = statistics.median(r["predictions_per_s"] for r in runs[VARIANTS[0]])
    for variant, measured in runs.items():
        row = {"cameras": count, "variant": variant}
        for key in measured[0]:
            row[key] = round(statistics.median(r[key] for r in measured), 2)
        row["throughput_ratio"] = round(row["predictions_per_s"] / base, 3)
        rows.append(row)
    return rows


def markdown(result: dict, command: str) -> str:
    k = result["kills"]
    lines = [
        "# The cluster on one machine: kills and overhead",
        "",
        f"`{command}` on {result['cpu']} ({os.cpu_count()} cores), inside a network namespace.",
        "",
        "## Kill to resume (a worker SIGKILLed with its process group)",
        "",
        f"Head start {k['head_start_s']} s, two workers joined in {k['workers_start_s']} s; "
        f"cameras placed: {json.dumps(k['placed'])}.",
        "",
        "| kill | worker killed | cameras moved | first new prediction (s after the kill) "
        "| on the head's disk (s) | window restarted |",
        "|---:|---|---|---|---|---|",
    ]
    resumed, written = [], []
    for n, kill in enumerate(k["kills"], start=1):
        resumed += kill["resumed_s"].values()
        written += kill["written_s"].values()
        lines.append(
            f"| {n} | {kill['victim']} | {', '.join(kill['moved'])} | "
            + ", ".join(f"{c} {t}" for c, t in kill["resumed_s"].items())
            + " | "
            + ", ".join(f"{c} {t}" for c, t in kill["written_s"].items())
            + f" | {'yes' if all(kill['window_restarted'].values()) else 'NO'} |"
        )
    lines += [
        "",
        f"Over {len(resumed)} moved cameras: first new prediction median "
        f"{statistics.median(resumed):.2f} s, max {max(resumed):.2f} s; on the head's disk "
        f"median {statistics.median(written):.2f} s, max {max(written):.2f} s (bound: 15 s). "
        f"Predictions reaching the head afterwards: {k.get('results_per_s')} per second "
        "(4 cameras x 5 fps = 20 expected).",
        "",
        "## Overhead: the same cameras in one process and through the cluster",
        "",
        "MJPEG cameras, 320x240 at 25 fps, model sampled at 25 fps (25 frames/s to classify "
        f"per camera), shared LiteRT backbone; {result['seconds']:g} s measured per run, "
        f"{result['repeats']} runs each, alternating; medians. The throughput ratio is the "
        "cluster's predictions per second over the plain process's.",
        "",
        "| cameras | variant | predictions/s | throughput ratio | dropped % | age p50 ms "
        "| age p95 ms | machine's busy cores |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["overhead"]:
        lines.append(
            f"| {row['cameras']} | {row['variant']} | {row['predictions_per_s']} | "
            f"{row['throughput_ratio']} | "
            f"{row['dropped_pct']} | {row['age_p50_ms']} | {row['age_p95_ms']} | "
            f"{row['machine_cores']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.split("\n")[0])
    p.add_argument("--kills", type=int, default=5)
    p.add_argument("--seconds", type=float, default=20.0, help="measured span per overhead run")
    p.add_argument("--repeats", type=int, default=2, help="overhead runs per variant")
    p.add_argument(
        "--cameras", type=int, nargs="+", default=[4, 8], help="overhead: cameras at 25 fps"
    )
    p.add_argument("--shared", default=str(ROOT.parent / "shared"))
    p.add_argument("--work", help="models and runs (default: a temporary folder)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "cluster"))
    p.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    if not args.inside:  # everything inside a network namespace of its own
        command = ["unshare", "-n", sys.executable, "-m", "bench.cluster", "--inside", *argv]
        return subprocess.run(command, cwd=ROOT).returncode
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("DISPLAY", None)
    model = build_model(work, Path(args.shared))
    result = {
        "cpu": cpu_name(),
        "seconds": args.seconds,
        "repeats": args.repeats,
        "kills": kills(model_at(model, 5.0, work), work, args.kills, env),
    }
    for key in ("head_output", "worker_output", "up", "status", "down"):
        result["kills"].pop(key, None)
    result["overhead_runs"], result["overhead"] = {}, []
    for count in args.cameras:
        runs = overhead(model, work, env, args.seconds, args.repeats, count)
        result["overhead_runs"][count] = runs
        result["overhead"] += summary(runs, count)
    report("bench.cluster", [a for a in argv if a != "--inside"], result, markdown,
           Path(args.out))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
