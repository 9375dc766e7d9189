"""Real stream servers on 127.0.0.1 for the network tests and the soak bench.

- `RtspCamera`: GStreamer's RTSP server (gst-rtsp-server through Debian's /usr/bin/python3 and
  python3-gi) serving a live H.264 test pattern: `loopback/rtsp_gst.py`.
- `MjpegCamera`: an HTTP MJPEG camera (multipart/x-mixed-replace), `loopback/mjpeg.py`,
  whose frames carry their send time (true end-to-end latency).
- `FfmpegHttpCamera`: ffmpeg's own HTTP server (`-listen 1`) streaming MPEG-TS (H.264), one
  client per server process, as some encoders and cameras do.
- `SilentServer`: a TCP socket that accepts connections and never says a word.

Each server process can be killed (SIGKILL: a camera losing power), frozen (SIGSTOP: a camera
that hangs with its connections open), resumed, and restarted on the same port.
`rtsp_available()` / `ffmpeg_available()` tell the tests whether the Debian tools are here.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEBIAN_PYTHON = "/usr/bin/python3"
READY_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def closed_port():
    """A port on 127.0.0.1 that refuses connections for as long as the block runs: bound by
    this process and never listened on, so no other program can take it meanwhile (unlike a
    fixed 'closed' port such as 9, or a port found free and released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


def port_accepts(port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


@functools.lru_cache(maxsize=1)
def rtsp_available() -> str | None:
    """None when the GStreamer RTSP server can run here, else why not (for pytest.skip)."""
    if not Path(DEBIAN_PYTHON).exists():
        return f"{DEBIAN_PYTHON} not found"
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); "
        "gi.require_version('GstRtspServer', '1.0'); "
        "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
        "missing = [e for e in ('videotestsrc', 'x264enc', 'rtph264pay') "
        "if Gst.ElementFactory.find(e) is None]; "
        "print(' '.join(missing)); raise SystemExit(1 if missing else 0)"
    )
    try:
        done = subprocess.run(
            [DEBIAN_PYTHON, "-c", probe], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"GStreamer probe failed: {exc}"
    if done.returncode:
        missing = done.stdout.strip() or done.stderr.strip().splitlines()[-1:]
        return (
            f"GStreamer RTSP server unavailable ({missing}); install python3-gi "
            "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-ugly"
        )
    return None


def ffmpeg_available() -> str | None:
    return None if shutil.which("ffmpeg") else "ffmpeg not installed"


class ServerProcess:
    """A server child process: start, kill, freeze, resume, restart (on the same port).

    Servers that can (`binds_port_zero`) bind port 0 on their first start and report the
    port they got in their READY line, so no other program can take it between a port being
    found free and the server binding it; restarts reuse that port.
    """

    binds_port_zero = True

    def __init__(self, port: int | None = None):
        self.port = port if port or self.binds_port_zero else free_port()
        self.process: subprocess.Popen | None = None

    # subclasses say how
    def command(self) -> list[str]:  # pragma: no cover
        raise NotImplementedError

    @property
    def url(self) -> str:  # pragma: no cover
        raise NotImplementedError

    def _wait_ready(self) -> None:
        """Wait for the READY line (or the port to accept), bounded."""
        assert self.process is not None and self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("READY"):
            self.stop()
            raise RuntimeError(f"{type(self).__name__} did not start: {line.strip()!r}")
        if not self.port:  # bound port 0: the READY line's URL says which port it got
            self.port = int(line.split("127.0.0.1:", 1)[1].split("/", 1)[0])

    def start(self) -> ServerProcess:
        deadline = time.monotonic() + READY_TIMEOUT_S
        # a restart: the previous incarnation may still be closing its socket
        while self.port and port_accepts_listen(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"port {self.port} stays busy")
            time.sleep(0.05)
        self.process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # a Ctrl-C meant for the tests' subprocesses spares it
        )
        timer = threading.Timer(READY_TIMEOUT_S, self.process.kill)
        timer.start()
        try:
            self._wait_ready()
        finally:
            timer.cancel()
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: the camera loses power; its connections are reset."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            self.process.wait(10)
            if self.process.stdout:
                self.process.stdout.close()
            self.process = None

    def freeze(self) -> None:
        """SIGSTOP: the camera hangs; connections stay open and silent."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def restart(self) -> ServerProcess:
        self.kill()
        return self.start()

    def stop(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGCONT)
                self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
            if self.process.stdout:
                self.process.stdout.close()
            self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class RtspCamera(ServerProcess):
    """gst-rtsp-server: live H.264 over RTSP at rtsp://127.0.0.1:PORT/cam."""

    def __init__(
        self, port=None, fps: int = 25, width: int = 320, height: int = 240, protocols="any"
    ):
        super().__init__(port)
        self.fps, self.width, self.height = fps, width, height
        self.protocols = protocols  # transports the server offers: any, tcp or udp

    def command(self) -> list[str]:
        return [
            DEBIAN_PYTHON,
            str(HERE / "rtsp_gst.py"),
            f"--port={self.port or 0}",
            f"--fps={self.fps}",
            f"--width={self.width}",
            f"--height={self.height}",
            f"--protocols={self.protocols}",
        ]

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"


class MjpegCamera(ServerProcess):
    """HTTP MJPEG (multipart/x-mixed-replace) at http://127.0.0.1:PORT/video.mjpg."""

    def __init__(self, port=None, fps: float = 25.0, width: int = 320, height: int = 240):
        super().__init__(port)
        self.fps, self.width, self.height = fps, width, height

    def command(self) -> list[str]:
        return [
            sys.executable,
            str(HERE / "mjpeg.py"),
            f"--port={self.port or 0}",
            f"--fps={self.fps}",
            f"--width={self.width}",
            f"--height={self.height}",
        ]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/video.mjpg"


class FfmpegHttpCamera(ServerProcess):
    """ffmpeg's HTTP server: a live test pattern as MPEG-TS/H.264, one client per process.
    (ffmpeg cannot report a port it chose: it gets one found free.)"""

    binds_port_zero = False

    def __init__(self, port=None, fps: int = 25, seconds: float = 60):
        super().__init__(port)
        self.fps, self.seconds = fps, seconds

    def command(self) -> list[str]:
        return [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size=320x240:rate={self.fps}:duration={self.seconds}",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-g",
            str(self.fps),
            "-f",
            "mpegts",
            "-listen",
            "1",
            self.url,
        ]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.ts"

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not port_accepts_listen(self.port):
            if not self.running or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("ffmpeg HTTP server did not start")
            time.sleep(0.05)


def port_accepts_listen(port: int) -> bool:
    """Is something listening on the port? (Checked in /proc, without connecting: ffmpeg's
    one-client server would take a probe connection for its client.)"""
    target = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as handle:
            for line in handle.readlines()[1:]:
                fields = line.split()
                if fields[1].endswith(target) and fields[3] == "0A":  # 0A = LISTEN
                    return True
    return False


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers (a wedged camera)."""

    def __init__(self, port: int | None = None):
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port or 0))
        self.port = self._sock.getsockname()[1]
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self._clients: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-server", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._clients.append(client)  # held open, never read or written

    @property
    def accepted(self) -> int:
        return len(self._clients)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()
        for client in self._clients:
            client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))
