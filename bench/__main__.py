"""`python -m bench`: per-frame cost of the ways to run the classifier, side by side.

Each variant runs in its own subprocess (`bench.worker`), so peak memory is per variant and no
runtime's threads disturb another's; repeats alternate the order of the variants, and the
table shows medians over repeats. Figures are per frame:

- ms / frame: wall time per classified frame, frames replayed as fast as possible (decode,
  crop/resize, backbone, head, JSON output all included; our pipeline overlaps decoding on its
  capture thread, as it does live);
- x bare: that time divided by the bare backbone call (one frame, same backend, same process);
- frame age p50/p95: capture -> prediction in a paced replay at the file's frame rate
  (frames the model has no time for are dropped, never queued);
- CPU: process CPU time / wall time during the paced replay, in cores;
- peak RSS: the variant process's peak resident memory.

InceptionV3 runs with random weights saved to a file (ImageNet weights cannot be downloaded
here; pass --backbone-weights FILE to use them): the cost is the same.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "results"
ALL_BACKENDS = ("keras", "xla", "litert", "openvino", "openvino-bf16", "openvino-int8")
QUICK_BACKENDS = ("keras", "litert", "openvino", "openvino-bf16", "openvino-int8")
QUICK_CLIPS = ("v_Punch_g03_c01.avi",)


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer frames and inputs (< 3 min)")
    p.add_argument(
        "--out", default=str(DEFAULT_OUT), help="folder for frame_cost.md / frame_cost.json"
    )
    p.add_argument("--backends", nargs="+", choices=ALL_BACKENDS, help="backends to compare")
    p.add_argument("--repeats", type=int, help="runs of every variant (default 1 quick, 2 full)")
    p.add_argument(
        "--shared",
        default=os.environ.get("REALTIME_SHARED", str(ROOT.parent / "shared")),
        help="folder with clips/ (default ../shared)",
    )
    p.add_argument("--backbone-weights", help="InceptionV3 weights file (default: random, seeded)")
    p.add_argument("--work", help="bench files (weights, model, video); default in the cache")
    p.add_argument("--cache-dir", help="converted-backbone cache (default: realtime's)")
    p.add_argument(
        "--soak",
        type=float,
        metavar="S",
        help="instead: a paced, looped replay for S seconds on --soak-backend, memory sampled",
    )
    p.add_argument("--soak-backend", default="auto")
    p.add_argument(
        "--cameras",
        action="store_true",
        help="instead: several cameras in one process vs separate processes "
        "(bench/cameras.py; its own options: python -m bench.cameras --help)",
    )
    p.add_argument(
        "--viewers",
        action="store_true",
        help="instead: a run without --serve, with it, and with 20 viewers, side by side "
        "(bench/viewers.py; its own options: python -m bench.viewers --help)",
    )
    p.add_argument(
        "--cluster",
        action="store_true",
        help="instead: the cluster on one machine, kills and overhead, in a network namespace "
        "(bench/cluster.py, as root; its own options: python -m bench.cluster --help)",
    )
    return p.parse_args(argv)


def machine() -> dict:
    info = {"python": platform.python_version(), "cores": os.cpu_count()}
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model name":
                info["cpu"] = value.strip()
            if key.strip() == "Flags":
                flags = value.split()
                info["isa"] = [f for f in ("avx2", "avx512f", "avx512_bf16", "avx512_vnni",
                                            "amx_bf16") if f in flags]  # fmt: skip
        with open("/proc/meminfo") as handle:
            info["memory_gib"] = round(int(handle.readline().split()[1]) / 2**20, 1)
        info["load_avg_at_start"] = os.getloadavg()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


class Runner:
    """Runs `bench.worker` subprocesses; their stderr goes to a log file."""

    def __init__(self, out: Path, common: list[str]):
        self.out = out
        self.common = common
        self.log = open(out / "frame_cost.log", "a")  # noqa: SIM115 - closed by close()

    def run(self, variant: str, *args: str, timeout: float = 900) -> dict:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        command = [sys.executable, "-m", "bench.worker", variant, *self.common, *args]
        self.log.write(f"\n$ {' '.join(command)}\n")
        self.log.flush()
        done = subprocess.run(
            command, stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=ROOT, env=env,
            timeout=timeout,
        )  # fmt: skip
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            raise RuntimeError(
                f"{variant} {' '.join(args)} failed; see {self.out / 'frame_cost.log'}"
            )
        return json.loads(lines[-1])

    def close(self):
        self.log.close()


def aggregate(runs: list[dict]) -> dict:
    """Median of every number over repeats (nested dicts too)."""
    first = runs[0]
    merged = {}
    for key, value in first.items():
        if isinstance(value, dict):
            merged[key] = aggregate([r[key] for r in runs if key in r])
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            merged[key] = round(statistics.median(r[key] for r in runs), 3)
        else:
            merged[key] = value
    return merged


def _fmt(value, spec=".1f", missing="—"):
    return missing if value is None else format(value, spec)


def rows_for(results: dict, inputs: dict[str, str]) -> list[dict]:
    rows = []
    for label, path in inputs.items():
        example = results.get("example", {}).get(path)
        for variant, per_input in results.items():
            r = per_input.get(path)
            if r is None:
                continue
            paced = r.get("paced", {})
            rows.append(
                {
                    "input": label,
                    "variant": VARIANT_LABELS.get(variant, variant.replace("pipeline/", "ours, ")),
                    "ms_per_frame": r["ms_per_frame"],
                    "bare_backbone_ms": r["bare_backbone_ms"],
                    "ratio_to_bare": r["ratio_to_bare"],
                    "fps": r["fps"],
                    "speedup_vs_example": round(example["ms_per_frame"] / r["ms_per_frame"], 1)
                    if example
                    else None,
                    "age_p50_ms": paced.get("age_p50_ms"),
                    "age_p95_ms": paced.get("age_p95_ms"),
                    "dropped": f"{paced['dropped']:.0f}/{paced['sampled']:.0f}" if paced else None,
                    "cpu_cores": paced.get("cpu_cores", r["cpu_cores"]),
                    "peak_rss_mb": r["peak_rss_mb"],
                    "head_ms": r.get("stages_ms", {}).get("head"),
                }
            )
    return rows


VARIANT_LABELS = {
    "example": "example: predict per frame",
    "naive": "naive: window recompute",
}

COLUMNS = [
    ("input", "input", "{}"),
    ("variant", "variant", "{}"),
    ("ms_per_frame", "ms/frame", "{:.1f}"),
    ("bare_backbone_ms", "bare backbone ms", "{:.1f}"),
    ("ratio_to_bare", "x bare", "{:.2f}"),
    ("fps", "fps", "{:.1f}"),
    ("speedup_vs_example", "x faster than example", "{:.1f}"),
    ("age_p50_ms", "age p50 ms", "{:.0f}"),
    ("age_p95_ms", "age p95 ms", "{:.0f}"),
    ("dropped", "dropped (paced)", "{}"),
    ("cpu_cores", "CPU cores", "{:.2f}"),
    ("peak_rss_mb", "peak RSS MB", "{:.0f}"),
]


def _cell(row, key, fmt):
    value = row.get(key)
    return "—" if value is None else fmt.format(value)


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        "# Benchmark: per-frame cost",
        "",
        f"Machine: {meta['machine'].get('cpu', '?')}, {meta['machine'].get('cores')} cores "
        f"({', '.join(meta['machine'].get('isa', []))}), "
        f"{meta['machine'].get('memory_gib', '?')} GiB; load average at start "
        f"{', '.join(f'{v:.1f}' for v in meta['machine'].get('load_avg_at_start', []))}. "
        f"Backbone {meta['backbone']}, batch 1. {meta['repeats']} run(s) per variant, "
        f"alternating order, medians shown. Command: `{meta['command']}`.",
        "",
        "| " + " | ".join(title for _, title, _ in COLUMNS) + " |",
        "|" + "|".join("---" if i < 2 else "---:" for i in range(len(COLUMNS))) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row, k, f) for k, _, f in COLUMNS) + " |")
    lines += [
        "",
        "ms/frame: every frame replayed as fast as possible, all stages included. x bare: "
        "ms/frame over the bare backbone call on the same backend. Frame age: capture to "
        "prediction in a paced replay at the file's frame rate (— : the variant has no live "
        "mode). CPU: cores used during the paced replay (baselines: during their loop).",
        "",
        "Conversion checks (max relative error of a feature vector vs Keras, probe images): "
        + ", ".join(
            f"{b} {c['max_rel_error']:.2e}"
            for b, c in meta.get("checks", {}).items()
            if b != "openvino-int8"
        ),
        "",
    ]
    int8 = meta.get("checks", {}).get("openvino-int8")
    if int8:
        agreement = int8.get("head_top1_agreement", float("nan"))
        lines += [
            f"openvino-int8 (opt-in, never `auto`) against fp32 Keras on {int8['probes']} frames "
            f"held out from its calibration ({', '.join(meta.get('calibration', []))}): feature "
            f"relative error mean {int8['mean_rel_error']:.2%}, max {int8['max_rel_error']:.2%}; "
            f"the bench head's top-1 unchanged on {agreement:.1%} of them (random InceptionV3 "
            "weights: ImageNet's cannot be downloaded here).",
            "",
        ]
    return "\n".join(lines)


def print_table(rows: list[dict], console: Console) -> None:
    table = Table(title="per-frame cost (medians)", title_justify="left")
    for _, title, _ in COLUMNS:
        table.add_column(title, justify="left" if title in ("input", "variant") else "right")
    for row in rows:
        table.add_row(*(_cell(row, k, f) for k, _, f in COLUMNS))
    console.print(table)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.cameras:
        from bench.cameras import main as cameras

        return cameras(["--work", args.work] if args.work else [])
    if args.cluster:
        from bench.cluster import main as cluster

        return cluster(["--work", args.work] if args.work else [])
    if args.viewers:
        from bench.viewers import main as viewers

        return viewers(["--work", args.work] if args.work else [])
    console = Console(stderr=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = args.cache_dir
    work = Path(args.work) if args.work else _default_work(cache)
    common = ["--cache-dir", cache] if cache else []
    runner = Runner(out, common)
    started = time.perf_counter()
    backends = list(args.backends or (QUICK_BACKENDS if args.quick else ALL_BACKENDS))
    repeats = args.repeats or (1 if args.quick else 2)
    try:
        console.print("[bold]preparing[/] (weights, model, synthetic video, conversions)")
        clips = Path(args.shared) / "clips"
        prep_args = ["--work", str(work), "--backends", *backends]
        if clips.is_dir():  # openvino-int8 is calibrated on real frames where there are some
            prep_args += ["--calibration", str(clips)]
        if args.backbone_weights:
            prep_args += ["--weights", args.backbone_weights]
        prep = runner.run("prepare", *prep_args, timeout=1800)
        backends = [b for b in backends if prep["availability"].get(b) is None]
        model = ["--weights", prep["weights"], "--model", prep["model"]]
        if args.soak:
            return _soak(args, runner, model, prep, out, console)
        inputs = {"synthetic 320x240": prep["synthetic"]}
        if clips.is_dir():
            names = QUICK_CLIPS if args.quick else sorted(p.name for p in clips.iterdir())
            inputs.update({n: str(clips / n) for n in names if (clips / n).is_file()})
        else:
            console.print(f"no shared clips at {clips}: synthetic video only")
        paths = list(inputs.values())
        frames = 45 if args.quick else 150
        jobs = [
            ("example", ["--frames", "8" if args.quick else "20", "--bare-calls", "5"]),
            ("naive", ["--frames", "4" if args.quick else "8", "--bare-calls", "5"]),
        ] + [
            (
                f"pipeline/{b}",
                [
                    "--backend",
                    b,
                    "--frames",
                    str(frames),
                    "--paced-frames",
                    "100" if args.quick else "250",
                    "--calibration",
                    *prep["calibration"],
                ],
            )  # fmt: skip
            for b in backends
        ]
        results: dict[str, list[dict]] = {name: [] for name, _ in jobs}
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("variants", total=repeats * len(jobs))
            for repeat in range(repeats):
                order = jobs if repeat % 2 == 0 else jobs[::-1]
                for name, extra in order:
                    progress.update(task, description=f"run {repeat + 1}/{repeats}: {name}")
                    variant = name.split("/")[0]
                    results[name].append(runner.run(variant, *model, "--input", *paths, *extra))
                    progress.advance(task)
        merged = {name: _merge_inputs(runs) for name, runs in results.items()}
        rows = rows_for(merged, inputs)
        meta = {
            "machine": machine(),
            "backbone": prep["backbone"],
            "repeats": repeats,
            "command": "python -m bench" + (" --quick" if args.quick else ""),
            "checks": prep["checks"],
            "calibration": prep["calibration"],
            "prepare_s": prep["prepare_s"],
            "seconds": round(time.perf_counter() - started, 1),
            "inputs": inputs,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        }
        print_table(rows, Console(width=None if sys.stdout.isatty() else 200))
        (out / "frame_cost.md").write_text(markdown(rows, meta))
        (out / "frame_cost.json").write_text(
            json.dumps({"meta": meta, "rows": rows, "raw": results}, indent=1) + "\n"
        )
        console.print(
            f"wrote {out / 'frame_cost.md'} and frame_cost.json in {meta['seconds']:.0f} s "
            f"(load average now {os.getloadavg()[0]:.1f})"
        )
        return 0
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        runner.close()


def _merge_inputs(runs: list[dict]) -> dict:
    return {path: aggregate([r[path] for r in runs]) for path in runs[0]}


def _default_work(cache: str | None) -> Path:
    from realtime.backbones.base import default_cache_dir

    return (Path(cache) if cache else default_cache_dir()) / "bench"


def _soak(args, runner, model, prep, out: Path, console: Console) -> int:
    clips = Path(args.shared) / "clips"
    clip = clips / QUICK_CLIPS[0]
    source = str(clip) if clip.is_file() else prep["synthetic"]
    console.print(f"soak: paced, looped replay of {source} for {args.soak:.0f} s")
    result = runner.run(
        "soak",
        *model,
        "--input",
        source,
        "--backend",
        args.soak_backend,
        "--seconds",
        str(args.soak),
        "--calibration",
        *prep["calibration"],
        timeout=args.soak + 600,
    )
    (out / "soak_paced.json").write_text(json.dumps(result, indent=1) + "\n")
    console.print(
        f"soak on {result['backend']}: {result['classified']} frames classified in "
        f"{result['seconds']:.0f} s, dropped {result['dropped']}, frame age p50 "
        f"{result['age_p50_ms']} / p95 {result['age_p95_ms']} ms; RSS after 1 min "
        f"{result['rss_after_1min_mb']} MB, at the end {result['rss_end_mb']} MB "
        f"({result['rss_growth_pct']:+.1f}%)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
