"""The HTTP server of `--serve`: the standard library's, one thread per connection, bounded.

Why the standard library: the server answers a handful of fixed addresses with small bodies
(a page, JSON, a JPEG, metrics text), polled by a few browsers and a scraper. `http.server`
does that with nothing to install and nothing imported by runs that do not serve; what it
lacks for a server that faces a network is added here and tested:

- at most `max_connections` connections at once (one more is answered 503 and closed);
- a client that stops sending or reading is dropped after `timeout_s` (its own thread waits,
  never the pipeline: every answer is a copy made by `Views`);
- a request line over 8 KiB is refused (414), a request with a body (413) or another method
  than GET/HEAD (405); paths are matched exactly, never mapped to files;
- with a token, everything but `/healthz` asks for it (`Authorization: Bearer TOKEN` or
  `?token=TOKEN`), compared in constant time; nothing is logged (URLs can carry the token);
- without one (loopback only), a request whose Host header is not a loopback name is refused
  (403): a web page cannot reach the server through DNS rebinding.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
import socketserver
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from realtime.core.errors import InputError, failed, log
from realtime.web import prometheus
from realtime.web.address import ServeAddress
from realtime.web.feed import WebFeed
from realtime.web.views import Answer, Stream, Views

MAX_REQUEST_LINE = 8192
PAGE = "page.html"
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the page's URL may carry the token
    "X-Frame-Options": "DENY",
}
PAGE_POLICY = (
    "default-src 'none'; img-src 'self'; connect-src 'self'; "
    "style-src 'unsafe-inline'; script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a polling page reuses its connections
    server_version = "realtime-action"
    sys_version = ""
    server: _BoundedServer

    def setup(self) -> None:
        self.timeout = self.server.timeout_s  # every read and write on this connection
        super().setup()

    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        pass  # a request's URL can carry the token

    def parse_request(self) -> bool:
        if len(self.raw_requestline) > MAX_REQUEST_LINE:
            # unparsed: what send_error reads
            self.command, self.requestline, self.request_version = "", "", "HTTP/1.1"
            self.close_connection = True
            self.send_error(414)
            return False
        return super().parse_request()

    def do_GET(self) -> None:
        self._respond(head=False)

    def do_HEAD(self) -> None:
        self._respond(head=True)

    def _refuse_method(self) -> None:
        self.close_connection = True
        self._send(Answer(405, "text/plain", b"only GET and HEAD\n"), {"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse_method

    def _respond(self, head: bool) -> None:
        length = self.headers.get("Content-Length", "0").strip() or "0"
        if length != "0" or "Transfer-Encoding" in self.headers:
            self.close_connection = True  # its body is never read
            self._send(Answer(413, "text/plain", b"a request has no body here\n"))
            return
        try:
            answer, headers = self.server.app.answer(self.path, self.headers)
        except Exception as exc:  # a bug in a view: this request fails, the run goes on
            self.server.app.record_failure(exc)
            answer, headers = Answer(500, "text/plain", b"internal error\n"), {}
        if isinstance(answer, Stream):
            self._stream(answer, head)
        else:
            self._send(answer, headers, head)

    def _stream(self, stream: Stream, head: bool) -> None:
        """A multipart stream: the headers here, then the camera's `Broadcaster` writes the
        pictures to this connection until the viewer leaves or stalls, or the server stops;
        this thread only waits for that."""
        self.close_connection = True
        self.server.app.count(stream.status)
        self.send_response(stream.status)
        self.send_header("Content-Type", stream.content_type)
        self.send_header("Connection", "close")
        for key, value in SECURITY_HEADERS.items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            stream.broadcaster.join(self.connection).wait()

    def _send(self, answer: Answer, headers: dict | None = None, head: bool = False) -> None:
        self.server.app.count(answer.status)
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for key, value in {**SECURITY_HEADERS, **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(answer.body)


class _BoundedServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with at most `max_connections` connection threads and quiet
    handling of clients that go away."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address, max_connections: int, timeout_s: float, family):
        self.address_family = family
        self.app: WebApp | None = None  # set by WebServer.start, before serving begins
        self.timeout_s = timeout_s
        self.slots = threading.BoundedSemaphore(max_connections)
        self._open = 0
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # HTTPServer's would look up the host's name
        self.server_name, self.server_port = self.server_address[:2]

    @property
    def connections(self) -> int:
        with self._open_lock:
            return self._open

    def process_request(self, request, client_address) -> None:
        if not self.slots.acquire(blocking=False):
            try:
                request.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                    b"Retry-After: 1\r\nConnection: close\r\n\r\n"
                )
            except OSError:
                pass
            self.app.count(503)
            self.shutdown_request(request)
            return
        with self._open_lock:
            self._open += 1
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release()

    def _release(self) -> None:
        with self._open_lock:
            self._open -= 1
        self.slots.release()

    def handle_error(self, request, client_address) -> None:
        # a client that went away or timed out: its connection ends; -v shows what happened
        log.debug("--serve: connection from %s ended", client_address, exc_info=True)


class WebApp:
    """Routes a request to its `Views` answer, after the token check."""

    def __init__(self, views: Views, token: str | None, started_at: float):
        self.views = views  # (its video streams end when `views`' stop event is set)
        self.token = token.encode() if token else None
        self.started_at = started_at
        self.page = resources.files("realtime.web").joinpath(PAGE).read_bytes()
        self.server: _BoundedServer | None = None
        self._counts: Counter[int] = Counter()
        self._lock = threading.Lock()
        self.failures: list = []

    def count(self, status: int) -> None:
        with self._lock:
            self._counts[status] += 1

    def record_failure(self, exc: Exception) -> None:
        with self._lock:
            if len(self.failures) < 10:
                self.failures.append(failed(f"--serve: {type(exc).__name__}: {exc}", exc))

    def authorized(self, query: dict, headers) -> bool:
        if self.token is None:
            return True
        offered = query.get("token", [""])[-1]
        auth = headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            offered = auth[7:].strip()
        return hmac.compare_digest(offered.encode("utf-8", "replace"), self.token)

    def answer(self, target: str, headers) -> tuple[Answer | Stream, dict]:
        parts = urlsplit(target)
        path = parts.path
        if path == "/healthz":
            return self.views.health(), {}
        if self.token is None and not loopback_host(headers.get("Host", "")):
            # open on loopback, so a web page elsewhere must not reach it through a name that
            # resolves to 127.0.0.1 (DNS rebinding): only loopback names and addresses
            return Answer(403, "text/plain", b"this server answers loopback names only\n"), {}
        if not self.authorized(parse_qs(parts.query), headers):
            message = b"a token is needed: Authorization: Bearer TOKEN, or ?token=TOKEN\n"
            return Answer(401, "text/plain", message), {"WWW-Authenticate": "Bearer"}
        if path == "/":
            return Answer(200, "text/html; charset=utf-8", self.page), {
                "Content-Security-Policy": PAGE_POLICY
            }
        if path == "/api/state":
            return self.views.page_state(), {}
        if path == "/api/latest":
            return self.views.latest(), {}
        if path == "/api/events":
            return self.views.events(), {}
        if path == "/metrics":
            with self._lock:
                counts = dict(self._counts)
            connections = self.server.connections if self.server else 0
            text = prometheus.render(self.views.pipeline, self.started_at, connections, counts)
            return Answer(200, prometheus.CONTENT_TYPE, text.encode()), {}
        if path.startswith("/api/video/") and path.endswith(".mjpg"):
            video = self.views.video(path[len("/api/video/") : -len(".mjpg")])
            if video is not None:
                return video, {}
        if path.startswith("/api/frame/") and path.endswith(".jpg"):
            picture = self.views.picture(path[len("/api/frame/") : -len(".jpg")])
            if picture is not None:
                return picture, {}
        return Answer(404, "text/plain", b"not found\n"), {}


def loopback_host(host_header: str) -> bool:
    """Whether a request's Host header names this machine's loopback: `localhost`, an address
    in 127.0.0.0/8 or `[::1]`, with or without a port. Without a token the server answers no
    other (a name of the attacker's that resolves to 127.0.0.1 is how DNS rebinding reaches
    a loopback server from a browser)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else ""
    elif host.count(":") == 1:
        host = host.split(":")[0]
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _family(host: str) -> socket.AddressFamily:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return socket.AF_INET
    return infos[0][0] if infos else socket.AF_INET


class WebServer:
    """Binds at once (a port in use is an input error before anything else opens); `feed`
    is the sink the pipeline hands every prediction to; serves once `start(pipeline)` is
    called, on a thread of its own; `close()` stops it."""

    def __init__(
        self,
        address: ServeAddress,
        token: str | None,
        feed: WebFeed,
        max_connections: int = 128,
        timeout_s: float = 15.0,
    ):
        self.token = token
        self.feed = feed
        self.timeout_s = timeout_s
        self.stopping = threading.Event()  # ends the video streams
        self.app: WebApp | None = None
        self._thread: threading.Thread | None = None
        try:
            self.server = _BoundedServer(
                (address.host, address.port),
                max_connections,
                timeout_s,
                _family(address.host),
            )
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise InputError(f"--serve {address}: cannot listen there ({reason})") from None
        host, port = self.server.server_address[:2]
        self.address = ServeAddress(host, port)

    @property
    def url(self) -> str:
        return f"http://{self.address}/"

    def start(self, pipeline) -> None:
        """Serve `pipeline` (a `Pipeline` whose sinks include `feed`)."""
        views = Views(pipeline, self.feed, self.stopping, timeout_s=self.timeout_s)
        self.app = WebApp(views, self.token, time.time())
        self.app.server = self.server
        self.server.app = self.app
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, name="web-server"
        )
        self._thread.daemon = True
        self._thread.start()

    def failures(self) -> list:
        """What went wrong answering (a bug in a view), one `Failure` each."""
        return list(self.app.failures) if self.app else []

    def close(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(5)
        self.server.server_close()
