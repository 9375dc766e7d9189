"""`/metrics`: the run's figures in Prometheus' text exposition format (version 0.0.4).

Per camera (label `camera`): frames read, skipped, classified and dropped, stale frames and
reconnects as counters; processing rate and source state (one series per state, 1 for the
current one) as gauges; frame age and each stage's time as summaries (0.5 and 0.95 quantiles
of the recent frames, count and sum over the run), in seconds. For the process: which backbone
runs on which backend, the version, the start time, and the viewers.

Written by hand (a few dozen lines) rather than with prometheus_client: the figures already
live in the pipeline, and a registry would only copy them; the tests check the text with
prometheus_client's own parser.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import metadata

from realtime.stream.metrics import STAGES
from realtime.stream.reconnect import SourceState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

COUNTERS = (  # (name, Status field, help)
    ("realtime_frames_read_total", "frames_read", "Frames read from the camera's source."),
    ("realtime_frames_skipped_total", "frames_skipped",
     "Frames read but not sampled (the source is faster than the model's rate)."),
    ("realtime_frames_classified_total", "classified", "Frames classified (one prediction each)."),
    ("realtime_frames_dropped_total", "dropped",
     "Sampled frames never classified (the machine had no time for them)."),
    ("realtime_frames_stale_total", "frames_stale",
     "Frames buffered before reading began, discarded unread."),
    ("realtime_reconnects_total", "reconnects", "Times a live source was reopened after a loss."),
)  # fmt: skip


def _version() -> str:
    try:
        return metadata.version("realtime-action")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def escape(value: str) -> str:
    """A label value as the text format wants it: backslash, double quote and newline
    escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{key}="{escape(str(value))}"' for key, value in labels.items()) + "}"


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def _family(name: str, kind: str, help_text: str, samples: Iterable[str]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]


def render(pipeline, started_at: float, connections: int, requests: dict[int, int]) -> str:
    """The whole exposition for `pipeline` (a `Pipeline`): one family per metric, every
    camera's samples in it."""
    cameras = [(camera, camera.status(), camera.metrics.distributions())
               for camera in pipeline.cameras]  # fmt: skip
    lines: list[str] = []
    for name, field, help_text in COUNTERS:
        samples = [f"{name}{_labels(camera=c.name)} {getattr(s, field)}" for c, s, _ in cameras]
        lines += _family(name, "counter", help_text, samples)
    lines += _family(
        "realtime_fps",
        "gauge",
        "Frames classified per second, over the last 2 s.",
        [f"realtime_fps{_labels(camera=c.name)} {_number(s.fps)}" for c, s, _ in cameras],
    )
    lines += _family(
        "realtime_source_state",
        "gauge",
        "The camera's source state: 1 for the current one.",
        [
            f"realtime_source_state{_labels(camera=c.name, state=state.value)} "
            f"{int(s.state is state)}"
            for c, s, _ in cameras
            for state in SourceState
        ],
    )
    summaries = [("realtime_frame_age_seconds", "frame_age", {},
                  "Capture to prediction, per classified frame.")]  # fmt: skip
    summaries += [("realtime_stage_seconds", stage, {"stage": stage},
                   "Time per frame in each stage (decode, preprocess, backbone, head).")
                  for stage in STAGES]  # fmt: skip
    done = set()
    for name, key, extra, help_text in summaries:
        samples = []
        for c, _, figures in cameras:
            figure = figures[key]
            labels = {"camera": c.name, **extra}
            for q, value in (("0.5", figure.p50_ms), ("0.95", figure.p95_ms)):
                samples.append(f"{name}{_labels(**labels, quantile=q)} {_number(value / 1000)}")
            samples.append(f"{name}_sum{_labels(**labels)} {_number(figure.total_ms / 1000)}")
            samples.append(f"{name}_count{_labels(**labels)} {figure.count}")
        if name in done:  # the stages share one family
            lines += samples
        else:
            lines += _family(name, "summary", help_text, samples)
            done.add(name)
    backbone = pipeline.backbone
    lines += _family(
        "realtime_backbone_info",
        "gauge",
        "The backbone that computes every frame's features, and how it runs.",
        [f"realtime_backbone_info{_labels(backbone=backbone.name, backend=backbone.backend)} 1"],
    )
    lines += _family(
        "realtime_build_info",
        "gauge",
        "The realtime-action version.",
        [f"realtime_build_info{_labels(version=_version())} 1"],
    )
    lines += _family(
        "realtime_start_time_seconds",
        "gauge",
        "When the run started, Unix time.",
        [f"realtime_start_time_seconds {_number(float(started_at))}"],
    )
    lines += _family(
        "realtime_http_connections",
        "gauge",
        "Open connections to this server (viewers, scrapers).",
        [f"realtime_http_connections {connections}"],
    )
    lines += _family(
        "realtime_http_responses_total",
        "counter",
        "Responses of this server, by status code.",
        [
            f"realtime_http_responses_total{_labels(code=str(code))} {count}"
            for code, count in sorted(requests.items())
        ],  # fmt: skip
    )
    return "\n".join(lines) + "\n"
