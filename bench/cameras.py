"""Several cameras in one process against the same cameras as separate processes, side by side
in one run: `python -m bench --cameras` (or `python -m bench.cameras`).

Every camera is a paced file: a 640x360, 25 fps video encoded before the run (so no encoder
shares the cores during it), replayed in a loop at its own frame rate as a live source would
deliver it (`--loop`; frames the model has no time for are dropped, never queued). For each
backbone (the shared `.tflite` model on LiteRT, and InceptionV3 on the default backend, its
weights seeded random because ImageNet's cannot be downloaded here: the cost is the same),
each model sampling rate (25 and 5 fps: `sampling.fps` in the model's metadata) and each
number of cameras (1, 2, 4, 8) it runs `python -m realtime --source V ... --ui none --jsonl F`
once as one process and once as that many processes of one camera each, lets it warm up,
measures for `--seconds`, and stops it with SIGINT as Ctrl-C would. Figures come from the JSONL
lines written inside the measured span (their `wall_time`, `camera`, `dropped`,
`frame_age_ms`) and from /proc (CPU time, peak RSS):

- classified fps in all, and per camera (min and max across cameras);
- dropped %: sampled frames the inference loop had no time for, of all sampled;
- frame age p50/p95: capture to prediction, over every prediction of every camera;
- CPU cores used, and peak RSS (separate processes: summed).

"max" rows: one unpaced camera (`--every-frame`: every sampled frame classified as fast as the
machine allows), the most one camera can be classified at, for the saturation goal.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.startup import cpu_name, prepare  # noqa: E402

COUNTS = (1, 2, 4, 8)
RATES = (25.0, 5.0)
WARMUP_S = 3.0  # after every camera's first prediction, before the measured span


def write_camera_video(path: Path, seconds: float = 24.0, fps: int = 25) -> Path:
    """640x360 at 25 fps, H.264 (what IP cameras send; about 1 ms a frame to decode at this
    size): moving shapes over a gradient, with noise so that the encoder cannot skip it."""
    if path.is_file():
        return path
    import av

    rng = np.random.default_rng(0)
    base = np.tile(np.linspace(40, 200, 640).astype(np.uint8), (360, 1))
    partial = path.with_suffix(".partial.mp4")
    with av.open(str(partial), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        stream.codec_context.gop_size = 2 * fps  # a keyframe every 2 s, as cameras send
        for i in range(int(seconds * fps)):
            frame = np.stack([base, np.roll(base, i * 3, axis=1), base[:, ::-1]], axis=-1)
            frame = np.ascontiguousarray(frame)
            x, y = int(320 + 250 * np.sin(i / 20)), int(180 + 120 * np.cos(i / 13))
            cv2.circle(frame, (x, y), 40, (30, 30, 220), -1)
            cv2.rectangle(frame, (i * 5 % 600, 40), (i * 5 % 600 + 40, 100), (20, 200, 20), -1)
            noisy = frame + rng.integers(0, 8, frame.shape, dtype=np.uint8)
            video_frame = av.VideoFrame.from_ndarray(noisy, format="bgr24")
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode(None))
    partial.rename(path)
    return path


def model_at(model: Path, fps: float, work: Path) -> Path:
    """A copy of a model directory whose metadata samples at `fps` (same head, same cost)."""
    if fps == 25.0:
        return model
    copy = work / f"{model.name}-{fps:g}fps"
    if not copy.is_dir():
        shutil.copytree(model, copy)
        meta_path = copy / "metadata.json"
        meta = json.loads(meta_path.read_text())
        meta["sampling"] = {"fps": fps}
        meta_path.write_text(json.dumps(meta, indent=2))
    return copy


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def read_records(path: Path) -> list[dict]:
    """The prediction lines of a run's JSONL so far (a line still being written is left out)."""
    if not path.is_file():
        return []
    lines = path.read_text().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{") and line.endswith("}")]
    return [record for record in records if "label" in record]


def measure(
    commands: list[list[str]], env: dict, jsonls: list[Path], cameras: int, seconds: float
) -> dict:
    """Start the processes, wait for every camera's first prediction and the warm-up, measure
    for `seconds`, stop them (SIGINT) and compute the figures from their JSONL."""
    procs = [
        subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        for command in commands
    ]
    try:
        deadline = time.monotonic() + 180
        while True:
            started = {
                (i, r["camera"]) for i, path in enumerate(jsonls) for r in read_records(path)
            }
            if len(started) >= cameras:
                break
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"the run did not start: {procs[0].stderr.read()[-400:]}")
            time.sleep(0.5)
        time.sleep(WARMUP_S)
        t0 = time.time()
        cpu0 = sum(cpu_seconds(p.pid) for p in procs)
        time.sleep(seconds)
        cpu1 = sum(cpu_seconds(p.pid) for p in procs)
        t1 = time.time()
        rss = sum(peak_rss_mb(p.pid) for p in procs)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stderr.close()
    per_camera: dict[str, list[dict]] = {}
    for i, path in enumerate(jsonls):
        for record in read_records(path):
            per_camera.setdefault(f"{i}:{record['camera']}", []).append(record)
    span = t1 - t0
    rates, classified, dropped, ages = [], 0, 0, []
    for records in per_camera.values():
        inside = [r for r in records if t0 <= r["wall_time"] <= t1]
        before = [r for r in records if r["wall_time"] < t0]
        rates.append(len(inside) / span)
        classified += len(inside)
        if inside:
            start = before[-1]["dropped"] if before else inside[0]["dropped"]
            dropped += inside[-1]["dropped"] - start
        ages += [r["frame_age_ms"] for r in inside]
    return {
        "cameras": cameras,
        "fps_total": round(classified / span, 1),
        "fps_min": round(min(rates), 2),
        "fps_max": round(max(rates), 2),
        "dropped_pct": round(100.0 * dropped / max(dropped + classified, 1), 2),
        "age_p50_ms": round(float(np.percentile(ages, 50)), 1) if ages else None,
        "age_p95_ms": round(float(np.percentile(ages, 95)), 1) if ages else None,
        "cores": round((cpu1 - cpu0) / span, 2),
        "peak_rss_mb": round(rss),
        "seconds": round(span, 1),
    }


def realtime_command(model: Path, video: Path, cameras: int, jsonl: Path, extra: list[str]):
    sources = [a for _ in range(cameras) for a in ("--source", str(video))]
    return [
        sys.executable,
        "-m",
        "realtime",
        *sources,
        "--model",
        str(model),
        "--ui",
        "none",
        "--jsonl",
        str(jsonl),
        "-q",
        *extra,
    ]


def max_single(model: Path, video: Path, env: dict, extra: list[str], frames: int) -> float:
    """Classified fps of one unpaced camera (every sampled frame, as fast as it goes),
    excluding start-up: from the JSONL lines' wall times."""
    with tempfile.TemporaryDirectory() as tmp:
        jsonl = Path(tmp) / "max.jsonl"
        command = realtime_command(
            model, video, 1, jsonl, [*extra, "--every-frame", "--max-frames", str(frames)]
        )
        subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
        times = [r["wall_time"] for r in read_records(jsonl)][20:]  # after the warm-up
    return round((len(times) - 1) / (times[-1] - times[0]), 1)


def setup(work: str | None, prefix: str):
    """What the camera benches run with, made once in `work` (default: a temporary folder):
    (work, prepare()'s figures, the camera video, the runs' environment, and the backbones:
    name -> (model directory, extra flags))."""
    work = Path(work) if work else Path(tempfile.mkdtemp(prefix=prefix))
    cache = work / "cache"
    prep = prepare(work, cache)
    video = write_camera_video(work / "camera_640x360_25fps_h264.mp4")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REALTIME_ACTION_CACHE": str(cache)}
    env.pop("DISPLAY", None)
    backbones = {
        "litert (.tflite)": (Path(prep["tflite_model"]), []),
        "InceptionV3, auto": (Path(prep["model"]), ["--backbone-weights", prep["weights"]]),
    }
    return work, prep, video, env, backbones


def run(args) -> dict:
    work, prep, video, env, backbones = setup(args.work, "bench-cameras-")
    if args.int8:
        backbones["InceptionV3, openvino-int8"] = (
            Path(prep["model"]),
            [
                "--backbone-weights",
                prep["weights"],
                "--backend",
                "openvino-int8",
                "--calibration",
                str(video),
            ],
        )
    if args.backbones:
        backbones = {k: v for k, v in backbones.items() if k in args.backbones}
    rows = []
    started = time.monotonic()
    maxima = {}
    for name, (model, extra) in backbones.items():
        maxima[name] = max_single(model, video, env, extra, frames=args.max_frames)
        print(f"{name}: one unpaced camera {maxima[name]} fps", file=sys.stderr, flush=True)
    plan = []
    for name in backbones:
        for fps in args.rates:
            counts = list(args.counts)
            # saturated: offered >= 1.5x what one camera can be classified at
            saturated = math.ceil(1.5 * maxima[name] / fps)
            if fps == max(args.rates) and saturated > max(counts) and not args.no_saturation:
                counts.append(saturated)
            plan += [(name, fps, n, mode) for n in counts for mode in ("one process", "separate")]
    for k, (name, fps, count, mode) in enumerate(plan, start=1):
        model, extra = backbones[name]
        model = model_at(model, fps, work)
        with tempfile.TemporaryDirectory() as tmp:
            if mode == "one process":
                jsonls = [Path(tmp) / "all.jsonl"]
                commands = [realtime_command(model, video, count, jsonls[0], [*extra, "--loop"])]
            else:
                jsonls = [Path(tmp) / f"{i}.jsonl" for i in range(count)]
                commands = [
                    realtime_command(model, video, 1, j, [*extra, "--loop"]) for j in jsonls
                ]
            if count == 1 and mode == "separate":
                continue  # the same as one process of one camera
            result = measure(commands, env, jsonls, count, args.seconds)
        row = {
            "backbone": name,
            "model_fps": fps,
            "mode": mode,
            **result,
            "offered_fps": count * fps,
        }
        rows.append(row)
        print(
            f"[{k}/{len(plan)} {time.monotonic() - started:.0f} s] {row}",
            file=sys.stderr,
            flush=True,
        )
    return {
        "rows": rows,
        "max_single_fps": maxima,
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "backend_auto": auto_backend(),
        "seconds": args.seconds,
    }


def auto_backend() -> str:
    from realtime.backbones.conversion import availability

    return "openvino-bf16" if availability("openvino-bf16") is None else "openvino (fp32)"


def goals(result: dict) -> list[str]:
    """The issue's goals, each met or not, from the rows."""
    out = []
    rows = result["rows"]

    def row(backbone, fps, count, mode="one process"):
        for r in rows:
            if (r["backbone"], r["model_fps"], r["cameras"], r["mode"]) == (
                backbone,
                fps,
                count,
                mode,
            ):
                return r
        return None

    for backbone, top in result["max_single_fps"].items():
        for fps in sorted({r["model_fps"] for r in rows}, reverse=True):
            saturated = [
                r
                for r in rows
                if r["backbone"] == backbone
                and r["model_fps"] == fps
                and r["mode"] == "one process"
                and r["offered_fps"] >= 1.5 * top
            ]
            for r in saturated:
                apart = row(backbone, fps, r["cameras"], "separate")
                fair = r["fps_min"] / r["fps_max"] if r["fps_max"] else 0.0
                text = (
                    f"{backbone}, {r['cameras']} cameras at {fps:g} fps (offered "
                    f"{r['offered_fps']:g} fps, {r['offered_fps'] / top:.1f}x one camera's max "
                    f"{top:g}): in all {r['fps_total']:g} fps = {r['fps_total'] / top:.2f}x the "
                    f"max (goal >= 0.95); slowest/fastest camera {fair:.2f} (goal >= 0.8)"
                )
                if apart:
                    ratio = r["fps_total"] / apart["fps_total"]
                    text += f"; {ratio:.2f}x the same cameras as separate processes (goal >= 1)"
                out.append(text)
        one, eight = row(backbone, 25.0, 1), row(backbone, 25.0, 8)
        if one and eight:
            per = (eight["peak_rss_mb"] - one["peak_rss_mb"]) / 7
            out.append(f"{backbone}: memory per added camera {per:.0f} MB (goal <= 50)")
        eight5 = row(backbone, 5.0, 8)
        if eight5:
            out.append(
                f"{backbone}, 8 cameras at 5 fps: dropped {eight5['dropped_pct']:.2f}% (goal <= 1),"
                f" frame age p95 {eight5['age_p95_ms']:g} ms (goal <= 200)"
            )
    return out


def markdown(result: dict, command: str) -> str:
    lines = [
        f"<!-- {command}; {result['cpu']}, {result['cores']} cores; `auto` = "
        f"{result['backend_auto']} here; {result['seconds']:g} s measured per row -->",
        "",
        "| backbone | model fps | cameras | how | offered fps | classified fps, all | per camera "
        "min / max | dropped % | age p50 / p95 ms | CPU cores | peak RSS MB |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['backbone']} | {r['model_fps']:g} | {r['cameras']} | {r['mode']} | "
            f"{r['offered_fps']:g} | {r['fps_total']:g} | {r['fps_min']:g} / {r['fps_max']:g} | "
            f"{r['dropped_pct']:.2f} | {r['age_p50_ms']:g} / {r['age_p95_ms']:g} | "
            f"{r['cores']:.2f} | {r['peak_rss_mb']} |"
        )
    lines += [
        "",
        "One unpaced camera (the most one camera is classified at): "
        + ", ".join(f"{b} {v:g} fps" for b, v in result["max_single_fps"].items())
        + ".",
        "",
    ]
    lines += ["Goals:", ""] + [f"- {g}" for g in goals(result) if g] + [""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cameras", description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=15.0, help="measured span per row")
    p.add_argument("--counts", type=int, nargs="+", default=list(COUNTS))
    p.add_argument("--rates", type=float, nargs="+", default=list(RATES))
    p.add_argument("--max-frames", type=int, default=300, help="frames of the unpaced max run")
    p.add_argument("--int8", action="store_true", help="also InceptionV3 on openvino-int8")
    p.add_argument(
        "--no-saturation",
        action="store_true",
        help="no extra row of as many cameras as offer 1.5x one camera's max",
    )
    p.add_argument("--backbones", nargs="+", help="only these (names as in the table)")
    p.add_argument("--work", help="weights, models, video, cache (default: a temporary folder)")
    p.add_argument(
        "--out",
        default=str(ROOT / "bench" / "results" / "cameras"),
        help="write OUT.md and OUT.json",
    )
    args = p.parse_args(argv)
    report("bench.cameras", argv, run(args), markdown, Path(args.out))
    return 0


def report(module: str, argv, result: dict, markdown, out: Path) -> None:
    """Print a bench's Markdown table (`markdown(result, command)`) and write OUT.md and
    OUT.json."""
    command = f"python -m {module} " + " ".join(argv if argv is not None else sys.argv[1:])
    text = markdown(result, command.strip())
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
