"""The head's side of the results: every camera's predictions and action segments written under
`--out`, as `python -m realtime --jsonl/--events` writes them, one pair of files per camera:

    OUT/CAMERA.jsonl          predictions and source-state lines, plus a `"type": "placement"`
                              line each time the camera starts on a machine (first placement,
                              or moved after its machine died: its window starts over)
    OUT/CAMERA.events.jsonl   finished action segments; a placement closes the open one

Lines come from the workers through the controller (`realtime.cluster.worker.Forward` makes
them); each file is written line by line and flushed (`realtime.outputs.text`).
"""

from __future__ import annotations

from pathlib import Path

from realtime.core.errors import Failure, InputError
from realtime.outputs.text import EventSink, JsonlSink


def check_out_dir(out: Path, model_dir: Path) -> None:
    """`--out` is a new or empty directory, apart from the model directory (nothing a run
    writes may replace anything there was before)."""
    out, model = out.resolve(), model_dir.resolve()
    if out == model or model in out.parents or out in model.parents:
        raise InputError(f"--out {out} overlaps the model directory {model_dir}")
    if out.exists():
        if not out.is_dir():
            raise InputError(f"--out {out} exists and is not a directory")
        if any(out.iterdir()):
            raise InputError(f"--out {out} is not empty (the results go into a new directory)")
    elif not out.parent.is_dir():
        raise InputError(f"--out {out}: the directory {out.parent} does not exist")


class ResultFiles:
    """Writes the items the controller drained (`write`); `close` flushes every file."""

    def __init__(self, out: Path, hysteresis: int = 3, min_duration: float = 0.5):
        self.out = out
        self.hysteresis = hysteresis
        self.min_duration = min_duration
        self.jsonl: dict[str, JsonlSink] = {}
        self.events: dict[str, EventSink] = {}
        self.written = 0

    def _files(self, camera: str) -> tuple[JsonlSink, EventSink]:
        if camera not in self.jsonl:
            self.out.mkdir(exist_ok=True)
            self.jsonl[camera] = JsonlSink(str(self.out / f"{camera}.jsonl"))
            self.events[camera] = EventSink(
                str(self.out / f"{camera}.events.jsonl"), self.hysteresis, self.min_duration
            )
        return self.jsonl[camera], self.events[camera]

    def write(self, items: list) -> None:
        """Raises `OutputFailed` when a file cannot be written (disk full): the head stops."""
        for kind, camera, record in items:
            jsonl, events = self._files(camera)
            if kind == "prediction":
                jsonl.write_record(record)
                events.add(
                    camera, record["label"], record["score"], record["timestamp"], record["frame"]
                )
            elif kind in ("placement", "source_state"):
                jsonl.write_record(record)
                if kind == "placement":
                    events.on_gap(camera)
            elif kind == "gap":
                events.on_gap(camera)
            self.written += 1

    def close(self) -> list[Failure]:
        failures = []
        for sink in [*self.jsonl.values(), *self.events.values()]:
            sink.close()
            if sink.failure:
                failures.append(sink.failure)
        return failures
