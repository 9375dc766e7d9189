"""The user interfaces. Each runs on the main thread and only reads the pipeline's state.

- `ConsoleUI`: a rich Live view refreshed at a fixed rate (never per frame, so rendering
  never slows inference).
- `WindowUI`: an OpenCV window with the overlay; `q` or Esc quits, closing the window too.
- `HeadlessUI`: nothing on screen; waits for the run to end (JSONL, events, recording only).

`choose_ui("auto")` picks the window where a display works, the console on a terminal, and
headless otherwise. A window is never attempted without a display: OpenCV's Qt backend aborts
the process in that case, so the display is probed in a child process first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import deque

import cv2
import numpy as np
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from realtime.core.errors import InputError, log
from realtime.core.textenum import TextEnum
from realtime.outputs.overlay import (
    blank_tile,
    compose_grid,
    draw_history_panel,
    draw_overlay,
    grid_shape,
    tile,
)
from realtime.stream.pipeline import Pipeline
from realtime.stream.prediction import NO_ACTION
from realtime.stream.reconnect import SourceState
from realtime.ui.xmap import remap_own_windows

WINDOW_TITLE = "realtime-action"


class UIMode(TextEnum):
    """`--ui`: which view a run shows."""

    AUTO = "auto"
    CONSOLE = "console"
    WINDOW = "window"
    NONE = "none"


STATE_STYLES = {SourceState.LIVE: "green", SourceState.ENDED: "blue", SourceState.FAILED: "red"}
#: States in which the last result is not about what the source shows now.
NOT_NOW = frozenset({SourceState.STALLED, SourceState.RECONNECTING, SourceState.FAILED})


class HeadlessUI:
    mode = UIMode.NONE

    def run(self, pipeline: Pipeline) -> None:
        while not pipeline.wait(0.25):
            pass


class ConsoleUI:
    """Top action, a bar per class, window fill and live figures, `refresh_hz` times a second."""

    mode = UIMode.CONSOLE

    def __init__(self, console: Console, refresh_hz: float = 4.0, width: int = 78):
        self.console = console
        self.refresh_hz = refresh_hz
        self.width = width

    def render(self, pipeline: Pipeline):
        if len(pipeline.cameras) > 1:
            return self.render_cameras(pipeline)
        return self.render_camera(pipeline.cameras[0], pipeline.labels)

    def render_cameras(self, pipeline: Pipeline):
        """Several cameras: one row each (state, top action and score, fps, frame age,
        dropped), the shared backbone's figures below."""
        table = Table(box=None, padding=(0, 1), expand=False, header_style="bold")
        table.add_column("camera", no_wrap=True, max_width=12, overflow="ellipsis")
        table.add_column("state", no_wrap=True, max_width=18, overflow="ellipsis")
        table.add_column("action", no_wrap=True, max_width=22, min_width=6, overflow="ellipsis")
        # the figures never shrink: on a narrow terminal the state and the action do
        table.add_column("score", justify="right", no_wrap=True, min_width=6)
        table.add_column("fps", justify="right", no_wrap=True, min_width=5)
        table.add_column("age ms", justify="right", no_wrap=True, min_width=6)
        table.add_column("dropped", justify="right", no_wrap=True, min_width=9)
        total_fps, backbone, warnings = 0.0, [], []
        for camera in pipeline.cameras:
            status = camera.status()
            latest = camera.latest()
            prediction = latest[0] if latest else None
            state = Text(status.state_text, style=STATE_STYLES.get(status.state, "yellow"))
            if prediction is None:
                action, score = Text("waiting...", style="dim"), ""
            elif prediction.label == NO_ACTION:
                action = Text(f"no action ({prediction.top_label})", style="grey62")
                score = f"{prediction.score:.1%}"
            else:
                action = Text(prediction.label, style="bold green3")
                score = f"{prediction.score:.1%}"
            if prediction is not None and status.state in NOT_NOW:
                action.stylize("dim")
            sampled = max(status.classified + status.dropped, 1)
            table.add_row(
                camera.name,
                state,
                action,
                score,
                f"{status.fps:.1f}",
                f"{status.frame_age_ms:.0f}" if status.classified else "-",
                f"{status.dropped} ({status.dropped / sampled:.0%})",
            )
            total_fps += status.fps
            if status.classified:
                backbone.append(status.stages_ms.get("backbone", 0.0))
            if prediction is not None and prediction.pace_warning:
                warnings.append(Text(f"{camera.name}: {prediction.pace_warning}", style="yellow",
                                     overflow="ellipsis", no_wrap=True))  # fmt: skip
        backbone_ms = sum(backbone) / len(backbone) if backbone else 0.0
        figures = Text.from_markup(
            f"cameras [bold]{len(pipeline.cameras)}[/]  [bold]{total_fps:.1f}[/] fps in all  "
            f"backbone {backbone_ms:.1f} ms/frame, {pipeline.engine.in_flight} in flight"
        )
        model_line = Text(
            f"backbone {pipeline.model_label}", style="grey50", overflow="ellipsis", no_wrap=True
        )
        return Panel(
            Group(model_line, Text(""), table, Text(""), *warnings, figures),
            title="[bold]realtime-action[/]",
            subtitle="[grey50]Ctrl-C to stop[/]",
            border_style="blue",
            expand=False,
        )

    def render_camera(self, camera, labels: list[str]):
        """One camera: the top action, a bar per class, the live figures."""
        status = camera.status()
        latest = camera.latest()
        prediction = latest[0] if latest else None
        if prediction is None:
            headline = Text("waiting for the first prediction...", style="dim")
        elif prediction.label == NO_ACTION:
            headline = Text.assemble(
                (" no action ", "bold black on grey62"),
                (f"  top: {prediction.top_label} {prediction.score:.1%}", "grey62"),
            )
        else:
            headline = Text.assemble(
                (f" {prediction.label} ", "bold black on green3"),
                (f"  {prediction.score:.1%}", "bold green3"),
            )
        if prediction is not None and status.state in NOT_NOW:
            # the last result is not about what the camera shows now: say so, dimmed
            headline.stylize("dim")
            headline.append(f"   (last result; source {status.state.value})", style="yellow")
        bars = Table.grid(padding=(0, 1))
        bars.add_column(justify="right", no_wrap=True)
        bars.add_column(no_wrap=True)
        bars.add_column(justify="right", no_wrap=True)
        width = 30
        for label in labels:
            p = prediction.probs.get(label, 0.0) if prediction else 0.0
            filled = int(round(p * width))
            top = prediction is not None and label == prediction.top_label
            style = "green" if top and prediction.label != NO_ACTION else "cyan"
            bars.add_row(
                Text(label, style="bold" if top else ""),
                Text("█" * filled, style=style) + Text("░" * (width - filled), style="grey35"),
                f"{p:6.1%}",
            )
        fill = f"{prediction.window}/{prediction.window_length}" if prediction else "0"
        figures = Table.grid(padding=(0, 2))
        for _ in range(4):
            figures.add_column(no_wrap=True)
        stages = status.stages_ms
        state_style = STATE_STYLES.get(status.state, "yellow")
        figures.add_row(
            f"window [bold]{fill}[/]",
            f"fps [bold]{status.fps:.1f}[/]",
            f"frame age [bold]{status.frame_age_ms:.0f} ms[/]",
            "",
        )
        figures.add_row(
            f"decode {stages.get('decode', 0):.1f} ms",
            f"preprocess {stages.get('preprocess', 0):.1f} ms",
            f"backbone {stages.get('backbone', 0):.1f} ms",
            f"GRU {stages.get('head', 0):.1f} ms",
        )
        figures.add_row(
            f"read {status.frames_read}",
            f"classified {status.classified}",
            f"dropped {status.dropped}",
            f"skipped {status.frames_skipped}",
        )
        source_line = Text(status.source, style="grey62", overflow="ellipsis", no_wrap=True)
        # a line of its own: a long state ("reconnecting 2/5 in 1.0 s") squeezed the figures
        state_line = Text.from_markup(
            f"source [{state_style}]{status.state_text}[/]",
            overflow="ellipsis",
        )
        state_line.no_wrap = True
        model_line = Text(
            f"backbone {status.model}", style="grey50", overflow="ellipsis", no_wrap=True
        )
        warning = prediction.pace_warning if prediction else None
        pace_line = Text(warning or "", style="yellow", overflow="ellipsis", no_wrap=True)
        return Panel(
            Group(
                source_line,
                model_line,
                Text(""),
                headline,
                Text(""),
                bars,
                Text(""),
                state_line,
                *([pace_line] if warning else []),
                figures,
            ),
            title="[bold]realtime-action[/]",
            subtitle="[grey50]Ctrl-C to stop[/]",
            border_style="blue",
            width=self.width,
        )

    def run(self, pipeline: Pipeline) -> None:
        period = 1.0 / self.refresh_hz
        with Live(
            self.render(pipeline),
            console=self.console,
            refresh_per_second=self.refresh_hz,
            auto_refresh=False,
            transient=False,
        ) as live:
            while not pipeline.wait(period):
                live.update(self.render(pipeline), refresh=True)
            live.update(self.render(pipeline), refresh=True)


#: after the first image, how long Qt has to settle before the window is mapped again
REMAP_AFTER_S = 0.3


class WindowUI:
    """OpenCV window with the overlay. Must be created and driven from the main thread."""

    mode = UIMode.WINDOW

    def __init__(self, title: str = WINDOW_TITLE, refresh_hz: float = 30.0):
        self.title = title
        self.refresh_ms = max(1, int(1000 / refresh_hz))

    def run(self, pipeline: Pipeline) -> None:
        os.environ.update(qt_environment())  # read by Qt when the first window opens
        cv2.namedWindow(self.title, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
        if len(pipeline.cameras) == 1:
            view = CameraView(pipeline.cameras[0], labels=pipeline.labels)
        else:
            view = GridView(pipeline)
        shown = False
        remap_at = None  # once, shortly after the first image: see realtime.ui.xmap
        try:
            while True:
                image = view.image()
                if image is not None:
                    cv2.imshow(self.title, image)
                    if not shown:
                        remap_at = time.monotonic() + REMAP_AFTER_S
                    shown = True
                key = cv2.waitKey(self.refresh_ms) & 0xFF
                if remap_at is not None and time.monotonic() >= remap_at:
                    remap_at = None
                    remap_own_windows(self.title)
                if key in (ord("q"), 27):
                    log.info("window: %s pressed, stopping", "q" if key == ord("q") else "Esc")
                    pipeline.request_stop()
                    break
                if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1 and shown:
                    log.info("window: closed by the user, stopping")
                    pipeline.request_stop()
                    break
                if pipeline.done:
                    log.info("window: the run has ended, closing")
                    break
        finally:
            cv2.destroyAllWindows()
            cv2.waitKey(1)


class CameraView:
    """One camera's newest frame with its overlay; a new image only when something changed
    (a new result, or the source's state). With `labels`, a panel under the frame: the top 3
    classes and each class's probability over the last `span_s` seconds, from the results
    this view has seen (it looks `refresh_hz` times a second)."""

    def __init__(self, camera, name: str | None = None, labels=None, span_s: float = 10.0):
        self.camera = camera
        self.name = name  # shown in the overlay (a grid's tiles)
        self.labels = list(labels) if labels else None
        self.span_s = span_s
        self.history: deque[tuple[float, dict]] = deque(maxlen=2000)
        self._shown = None
        self._shown_state = None

    def state(self) -> str:
        return self.camera.status().state_text

    def image(self):
        latest = self.camera.latest()
        status = self.camera.status()
        state = status.state_text
        if latest is None or latest[1].display is None:
            return None
        new_result = latest is not self._shown
        if not new_result and state == self._shown_state:
            return None
        prediction, frame = latest
        self._shown, self._shown_state = latest, state
        image = draw_overlay(frame.display, prediction, status.fps, state, camera=self.name)
        if self.labels is None:
            return image
        if new_result:  # (a state change alone redraws, without a point of its own)
            if self.history and prediction.timestamp < self.history[-1][0]:
                self.history.clear()  # the source started over (a looped file, a new stream)
            self.history.append((prediction.timestamp, prediction.probs))
        panel = draw_history_panel(image.shape[1], self.labels, list(self.history), self.span_s)
        return np.vstack([image, panel])


class GridView:
    """Several cameras in a grid, each tile a `CameraView` (or its name and state while it has
    no frame); redrawn when any tile changed."""

    MAX_WIDTH = 1920

    def __init__(self, pipeline: Pipeline):
        self.views = [CameraView(camera, camera.name) for camera in pipeline.cameras]
        _, columns = grid_shape(len(self.views))
        width = min(640, self.MAX_WIDTH // columns)
        self.tile_size = (width, width * 9 // 16)
        self.tiles = [None] * len(self.views)
        self._states = [None] * len(self.views)

    def image(self):
        changed = False
        for k, view in enumerate(self.views):
            image = view.image()
            if image is not None:
                self.tiles[k] = tile(image, self.tile_size)
                changed = True
            elif view.camera.latest() is None:
                state = view.state()
                if state != self._states[k]:
                    self.tiles[k] = blank_tile(self.tile_size, view.camera.name, state)
                    self._states[k] = state
                    changed = True
        if not changed:
            return None
        return compose_grid(self.tiles, self.tile_size)


def qt_environment() -> dict[str, str]:
    """Environment for OpenCV's Qt windows: point Qt at the system fonts.

    The opencv-python wheels bundle Qt without fonts; without this Qt prints a font warning
    per window on stderr.
    """
    env = {}
    if "QT_QPA_FONTDIR" not in os.environ:
        for folder in ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype"):
            if os.path.isdir(folder):
                env["QT_QPA_FONTDIR"] = folder
                break
    return env


def display_available(timeout: float = 10.0) -> bool:
    """True when an OpenCV window can open here (probed in a child: Qt aborts on failure)."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    probe = (
        "import cv2; cv2.namedWindow('probe'); cv2.waitKey(1); cv2.destroyAllWindows(); "
        "cv2.waitKey(1)"
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", probe],
            env={**os.environ, **qt_environment()},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def choose_ui(mode: UIMode, console: Console, probe=display_available):
    """The UI `--ui mode` asks for; auto: window, else console on a terminal, else none."""
    if mode is UIMode.NONE:
        return HeadlessUI()
    if mode is UIMode.CONSOLE:
        return ConsoleUI(console)
    if mode is UIMode.WINDOW:
        if not probe():
            raise InputError(
                "--ui window needs a display (none found: DISPLAY is unset or unusable); "
                "use --ui console or --ui none"
            )
        return WindowUI()
    if probe():  # auto
        return WindowUI()
    if console.is_terminal:
        return ConsoleUI(console)
    return HeadlessUI()
