"""The OpenCV window UI on a real (virtual) X display: Xvfb, started by the test."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import ROOT, missing, need_tools


@pytest.fixture(autouse=True)
def _x_tools():
    need_tools("Xvfb", "xdotool")  # Debian packages xvfb, xdotool


@contextmanager
def xvfb():
    """A private X server; Xvfb picks a free display number and tells us through a pipe."""
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(
        [
            "Xvfb",
            "-displayfd",
            str(write_fd),
            "-screen",
            "0",
            "1024x768x24",
            "-nolisten",
            "tcp",
            "-noreset",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        pass_fds=(write_fd,),
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()
    if not number:
        server.kill()
        missing("Xvfb did not start")
    try:
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(5)


@pytest.fixture
def xdisplay():
    """A fresh X server per test: nothing one test leaves in the server (a window, a key held
    down) reaches the next."""
    with xvfb() as display:
        yield display


#: `python -m realtime ARGS`, whose every thread's stack goes to stderr on SIGUSR1 (`diagnose`)
RUN_DUMPING_STACKS = (
    "import faulthandler, runpy, signal, sys; "
    "faulthandler.register(signal.SIGUSR1, all_threads=True); "
    "sys.argv = ['realtime', *sys.argv[1:]]; "
    "runpy.run_module('realtime', run_name='__main__', alter_sys=True)"
)


def start_cli(display, *args):
    env = dict(os.environ, DISPLAY=display, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-c", RUN_DUMPING_STACKS, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


def window_id(display, timeout=60.0):
    env = dict(os.environ, DISPLAY=display)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = subprocess.run(
            ["xdotool", "search", "--name", "realtime-action"],
            capture_output=True,
            text=True,
            env=env,
        )
        if found.returncode == 0 and found.stdout.strip():
            return found.stdout.split()[0]
        time.sleep(0.2)
    return None


def screenshot(display, path: Path):
    import_tool = shutil.which("import")
    if not import_tool:
        return None
    subprocess.run(
        [import_tool, "-window", "root", str(path)],
        env=dict(os.environ, DISPLAY=display),
        timeout=20,
        check=True,
    )
    return cv2.imread(str(path))


def diagnose(display, process) -> str:
    """What the X server knows of every window (map state, geometry) and, in the run's stderr,
    every thread's stack (SIGUSR1: `RUN_DUMPING_STACKS`): for a screen that stays black."""
    env = dict(os.environ, DISPLAY=display)
    tree = subprocess.run(["xwininfo", "-root", "-tree"], capture_output=True, text=True,
                          env=env, timeout=10).stdout  # fmt: skip
    states = []
    for line in tree.splitlines():
        if "realtime-action" in line:
            wid = line.split()[0]
            info = subprocess.run(["xwininfo", "-id", wid], capture_output=True, text=True,
                                  env=env, timeout=10).stdout  # fmt: skip
            states += [x.strip() for x in info.splitlines() if "Map State" in x or "Absolute" in x
                       or "Width" in x or "Height" in x]  # fmt: skip
    remapped = ""
    wids = [line.split()[0] for line in tree.splitlines() if '"realtime-action"' in line]
    if wids and shutil.which("import"):  # unmap and map it again (a new MapNotify for Qt)
        for command in ("windowunmap", "windowmap"):
            subprocess.run(["xdotool", command, "--sync", wids[0]], env=env, timeout=10)
        time.sleep(2.0)
        shot = screenshot(display, Path(tempfile.mkdtemp()) / "remapped.png")
        lit = shot is not None and (shot > 30).mean() > 0.2
        remapped = f"; after an unmap and map of it, the screen shows it: {lit}"
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGUSR1)
        time.sleep(1.0)
    return f"windows:\n{tree}\nthe run's window: {states}{remapped}"


def wait_for_screen(display, path: Path, shows, timeout=30.0, describe=None, process=None):
    """Screenshots until `shows(shot)` holds: the window starts black, and a loaded machine
    may take seconds to draw its first frame. Returns the shot, or None without a tool. On
    failure the message says what the last shot showed (`describe(shot)`) and what the X
    server knows of the windows (`diagnose`: the run's stacks go to its stderr), and the shot
    stays at `path` (pytest keeps the last runs' temporary folders)."""
    if not shutil.which("import"):
        return None
    deadline = time.monotonic() + timeout
    while True:
        shot = screenshot(display, path)
        if shot is not None and shows(shot):
            return shot
        if time.monotonic() >= deadline:
            seen = describe(shot) if describe and shot is not None else ""
            found = diagnose(display, process) if shutil.which("xwininfo") else ""
            pytest.fail(
                f"the screen did not show it within {timeout:.0f} s; {seen} ({path})\n{found}"
            )
        time.sleep(0.2)


def test_auto_opens_a_window_and_q_quits(xdisplay, make_video, tflite_model_dir, tmp_path):
    video = make_video(n=2000, fps=25.0, width=320, height=240)  # 80 s: q must end it early
    process = start_cli(
        xdisplay,
        "--source",
        video,
        "--model",
        tflite_model_dir,
        "--ui",
        "auto",
        "--jsonl",
        tmp_path / "p.jsonl",
        "-v",  # the log says what ended the run
    )
    try:
        wid = window_id(xdisplay)
        assert wid, "no window appeared"
        # the frame (upscaled to 640 wide) and its overlay reach the screen, not a black root
        wait_for_screen(
            xdisplay,
            tmp_path / "screen.png",
            lambda s: (s[:480, :640] > 30).mean() > 0.2,
            process=process,
        )
        env = dict(os.environ, DISPLAY=xdisplay)
        subprocess.run(["xdotool", "windowfocus", "--sync", wid], env=env, timeout=10)
        # to the focused window, through XTEST for the press and the release alike: with
        # `--window`, xdotool sends the release by XSendEvent once the window has lost the focus
        # (a busy machine: the run saw the press, quit and closed its window first), and the
        # X server keeps q held down, repeating it into the next window for good
        subprocess.run(["xdotool", "key", "q"], env=env, timeout=10)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            print(f"the run's stderr:\n{process.communicate(timeout=15)[1]}")
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "QFontDatabase" not in stderr
    assert "window: q pressed, stopping" in stderr
    lines = (tmp_path / "p.jsonl").read_text().splitlines()
    assert 0 < len(lines) < 2000  # ended by q, long before the end of the file


def test_window_shows_the_overlay(xdisplay, make_video, tflite_model_dir, tmp_path):
    """The overlay band (darkened, with text) sits above the frame's own pixels."""
    frames = [np.full((240, 320, 3), 200, np.uint8) for _ in range(400)]
    from tests.conftest import write_video

    video = write_video(tmp_path / "grey.avi", frames, fps=25.0)
    # looped, as in the grid test: the run cannot end by itself before a screenshot shows it
    process = start_cli(
        xdisplay, "--source", video, "--model", tflite_model_dir, "--ui", "window", "-v", "--loop"
    )
    try:
        assert window_id(xdisplay), "no window appeared"
        if not shutil.which("import"):
            missing("no screenshot tool (imagemagick)")

        def band_and_body(shot):
            return shot[5:40, 100:500], shot[300:400, 100:500]

        def shows_overlay(shot):  # the grey frame, then text in the band (the first prediction)
            band, body = band_and_body(shot)
            return body.mean() > 150 and band.max() > 150

        shot = wait_for_screen(xdisplay, tmp_path / "screen.png", shows_overlay, process=process)
        band, body = band_and_body(shot)
        assert band.mean() < body.mean() * 0.6  # the darkened overlay band
        # under the frame (640 x 480 once upscaled): the panel, dark, with coloured bars
        panel = shot[490:620, 0:640].astype(int)
        assert panel.mean() < 80
        assert ((panel.max(axis=-1) - panel.min(axis=-1)) > 80).sum() > 300  # colour
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=15)
        print(f"the run's stderr:\n{stderr}")  # shown by pytest when the test fails
    assert process.returncode == 0


def test_four_cameras_share_one_window_as_a_grid(xdisplay, tflite_model_dir, tmp_path):
    """Each camera in its own tile, in the order given, with its overlay: four videos of one
    colour each show up as four tiles of those colours (2 x 2, tiles 640 x 360, 2 px apart)."""
    from tests.conftest import write_video

    colours = {"red": (40, 40, 210), "green": (40, 210, 40), "blue": (210, 40, 40),
               "grey": (170, 170, 170)}  # fmt: skip
    videos = []
    for name, bgr in colours.items():
        frames = [np.full((240, 320, 3), bgr, np.uint8) for _ in range(400)]
        videos += ["--source", write_video(tmp_path / f"{name}.avi", frames, fps=25.0)]
    # looped: a loaded machine that takes long to draw never sees the videos end (and the
    # window close) first
    process = start_cli(
        xdisplay, *videos, "--model", tflite_model_dir, "--ui", "window", "-v", "--loop"
    )
    # tile bodies (below the overlay band), clipped to the 1024 x 768 screen
    bodies = [(slice(150, 330), slice(200, 440)), (slice(150, 330), slice(842, 1000)),
              (slice(512, 690), slice(200, 440)), (slice(512, 690), slice(842, 1000))]  # fmt: skip

    def tiles_show_their_colours(shot):
        return all(
            np.abs(shot[rows, cols].reshape(-1, 3).mean(axis=0) - bgr).max() < 30
            for (rows, cols), bgr in zip(bodies, colours.values(), strict=True)
        )

    try:
        assert window_id(xdisplay), "no window appeared"
        if not shutil.which("import"):
            missing("no screenshot tool (imagemagick)")

        def tile_means(shot):  # what each tile body showed, BGR, and the window's state
            means = [shot[rows, cols].reshape(-1, 3).mean(axis=0).round().tolist()
                     for rows, cols in bodies]  # fmt: skip
            return f"tile means {means}, run exited: {process.poll()}"

        shot = wait_for_screen(
            xdisplay,
            tmp_path / "grid.png",
            tiles_show_their_colours,
            describe=tile_means,
            process=process,
        )
        for rows, cols in bodies:  # each tile has its own overlay band with text above it
            band = shot[rows.start - 140 : rows.start - 100, cols]
            assert band.max() > 150 and band.mean() < shot[rows, cols].mean()
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=15)
        print(f"the run's stderr:\n{stderr}")  # shown by pytest when the test fails
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr


REMAP_PROBE = """
import os, subprocess, sys, time, cv2, numpy as np
from realtime.ui.xmap import remap_own_windows
other = subprocess.Popen([sys.executable, "-c", (  # another process's window, same title
    "import cv2, numpy as np; cv2.namedWindow('realtime-action'); "
    "cv2.imshow('realtime-action', np.zeros((50, 50, 3), np.uint8)); "
    "[cv2.waitKey(10) for _ in range(300)]")])
time.sleep(2.0)
cv2.namedWindow("realtime-action")
cv2.imshow("realtime-action", np.full((120, 160, 3), 200, np.uint8))
for _ in range(20):
    cv2.waitKey(10)
print(remap_own_windows("realtime-action"), remap_own_windows("someone else's"), flush=True)
for _ in range(20):
    cv2.waitKey(10)
cv2.destroyAllWindows()
other.kill()
"""


def test_the_remap_workaround_finds_this_process_window_only(xdisplay):
    """`realtime.ui.xmap`: this process's window of that title is unmapped and mapped again
    (the cure for Qt's missed MapNotify); another process's window of the same title and a
    window of another title are left alone; with no display it does nothing."""
    env = dict(os.environ, DISPLAY=xdisplay, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", REMAP_PROBE], capture_output=True, text=True,
                          env=env, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "0"]
    env.pop("DISPLAY")
    probe = "from realtime.ui.xmap import remap_own_windows as r; print(r('realtime-action'))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env=env, timeout=60)  # fmt: skip
    assert done.stdout.strip() == "0", done.stderr
