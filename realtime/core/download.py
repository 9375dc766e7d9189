"""Resumable HTTP downloads with a progress bar (model weights, data sets).

- The transfer goes to `<file>.part`. If it is cut, the download retries with an HTTP `Range`
  request from where it stopped (and a later run does the same), appending only when the
  server answers `206 Partial Content` for exactly that offset.
- The finished file appears under its final name only when complete (atomic rename), so a
  reader never sees half a file.
- Every failure is one `InputError` line naming the URL and what to do offline.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from realtime.core.errors import InputError

CHUNK = 1 << 16


class _Cut(Exception):
    """The transfer stopped before the announced end (resumable)."""


class _Stalled(Exception):
    """No byte arrived for the whole timeout: the server is not answering (an error, not a
    retry: waiting again would only repeat the silence)."""


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]download[/] {task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,  # a finished (or failed) transfer leaves one line, not a stale bar
    )


def _open(url: str, offset: int, timeout: float):
    request = urllib.request.Request(url, headers={"User-Agent": "realtime-action-training"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    return urllib.request.urlopen(request, timeout=timeout)


def _content_range_start(header: str | None) -> int | None:
    # "bytes 100-999/1000"
    if not header or not header.startswith("bytes "):
        return None
    try:
        return int(header[6:].split("-", 1)[0])
    except ValueError:
        return None


def _transfer(url: str, part: Path, progress: Progress, task, timeout: float) -> None:
    """One HTTP request appending to `part`; raises _Cut if it ends early."""
    offset = part.stat().st_size if part.exists() else 0
    try:
        response = _open(url, offset, timeout)
    except TimeoutError:
        raise _Stalled() from None
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # our .part is already complete (or bogus): restart
            part.unlink()
            raise _Cut("range not satisfiable; restarting") from None
        raise InputError(f"download failed: HTTP {exc.code} {exc.reason} for {url}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise _Stalled() from None
        raise
    with response:
        status = getattr(response, "status", 200)
        if offset and status == 206:
            start = _content_range_start(response.headers.get("Content-Range"))
            if start != offset:
                part.unlink()
                raise _Cut("server resumed at the wrong offset; restarting")
            mode = "ab"
        else:
            offset, mode = 0, "wb"  # no resume support: start over
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        progress.update(task, total=total, completed=offset)
        received = offset
        with open(part, mode) as handle:
            while True:
                try:
                    block = response.read1(CHUNK)  # what has arrived: a stall keeps it
                except TimeoutError:
                    raise _Stalled() from None
                except (OSError, ValueError) as exc:  # connection reset, IncompleteRead...
                    raise _Cut(str(exc)) from None
                if not block:
                    break
                handle.write(block)
                received += len(block)
                progress.update(task, completed=received)
        if total is not None and received < total:
            raise _Cut(f"connection closed at {received} of {total} bytes")


def fetch(
    url: str,
    archive: Path,
    console: Console,
    retries: int = 5,
    timeout: float = 30.0,
    backoff: float = 1.0,
    offline_hint: str = "download it elsewhere and pass the local file",
) -> Path:
    """Download `url` to `archive` (resuming `archive.part`), or raise InputError.

    `offline_hint` ends the error line when the host cannot be reached at all.
    """
    archive.parent.mkdir(parents=True, exist_ok=True)
    part = archive.with_name(archive.name + ".part")
    if part.exists():
        console.print(f"resuming {part.name} from {part.stat().st_size} bytes")
    with _progress(console) as progress:
        task = progress.add_task(archive.name, total=None)
        for attempt in range(retries + 1):
            try:
                _transfer(url, part, progress, task, timeout)
                break
            except _Stalled:
                raise InputError(
                    f"download of {url} stalled: nothing received for {timeout:g} s; "
                    + (
                        f"run the command again to resume from {part}"
                        if part.exists()
                        else f"on an offline machine {offline_hint}"
                    )
                ) from None
            except _Cut as exc:
                if attempt == retries:
                    raise InputError(
                        f"download of {url} interrupted ({exc}); run the command again to "
                        f"resume from {part}"
                    ) from None
                progress.console.print(f"transfer cut ({exc}); resuming")
                time.sleep(backoff * (attempt + 1))
            except urllib.error.URLError as exc:
                raise InputError(
                    f"cannot download {url}: {exc.reason}; on an offline machine {offline_hint}"
                ) from None
            except (TimeoutError, OSError) as exc:
                if attempt == retries:
                    raise InputError(f"cannot download {url}: {exc}") from None
                time.sleep(backoff * (attempt + 1))
    part.replace(archive)
    console.print(f"downloaded {archive} ({archive.stat().st_size / 1e6:.1f} MB)")
    return archive
