"""Which cameras a run watches: `--source` (repeatable) or `--cameras FILE`.

A cameras file is TOML, one `[[camera]]` table per camera:

    [[camera]]
    name = "door"                                   # letters, digits, . _ - (40 at most)
    source = "rtsp://user:pass@192.0.2.10/stream1"  # as --source: index, file or URL
    rtsp_transport = "tcp"                          # optional, as the command-line flags:
    open_timeout = 10                               #   --rtsp-transport, --open-timeout,
    read_timeout = 5                                #   --read-timeout, --reconnect
    reconnect = "forever"                           #   (a number of attempts, or "forever")

A camera's own settings override the command line's, which apply to every camera. A relative
file path is relative to the cameras file. Cameras named by `--source` are `cam1`, `cam2`...
in the order given. Names appear in every output line (`camera`) and in recording names
(`--output 'rec-{camera}.mp4'`), so they are checked to be file-name safe and unique; sources
are shown with credentials redacted (`realtime.frames.sources.SourceSpec`).
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from realtime.core.cliargs import seconds
from realtime.core.errors import InputError
from realtime.frames.sources import CaptureOptions, SourceKind, SourceSpec, parse_source
from realtime.stream.reconnect import ReconnectPolicy, parse_reconnect

#: The standard library's TOML reader (3.11+), or the same package for 3.10 (`tomli`)
tomllib = importlib.import_module("tomllib" if sys.version_info >= (3, 11) else "tomli")

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")
TRANSPORTS = ("tcp", "udp")
#: The keys a camera table may have, besides `name` and `source`.
SETTINGS = ("rtsp_transport", "open_timeout", "read_timeout", "reconnect")
ONE_WAY = "give the cameras with --source (repeatable) or --cameras FILE, once"
#: What a recording name with several cameras must contain.
CAMERA_FIELD = "{camera}"


@dataclass(frozen=True)
class CameraConfig:
    """One camera as the run will open it."""

    name: str
    source: SourceSpec
    options: CaptureOptions
    reconnect: ReconnectPolicy


def camera_configs(args) -> list[CameraConfig]:
    """The cameras the arguments name: `--source` (repeatable) or `--cameras FILE`."""
    options = CaptureOptions(args.open_timeout, args.read_timeout, args.rtsp_transport)
    policy = ReconnectPolicy(attempts=args.reconnect)
    if bool(args.cameras) == bool(args.source):
        raise InputError(ONE_WAY)
    if args.cameras:
        return read_cameras_file(Path(args.cameras), options, policy)
    return [
        CameraConfig(f"cam{i}", parse_source(text), options, policy)
        for i, text in enumerate(args.source, start=1)
    ]


def read_cameras_file(
    path: Path, options: CaptureOptions, policy: ReconnectPolicy
) -> list[CameraConfig]:
    """The cameras of a TOML file (see the module doc); InputError naming the file and the
    camera for anything wrong in it."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"cameras file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the cameras file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"camera"})
    if unknown:
        raise InputError(f"{path}: unknown key {unknown[0]!r} (cameras are [[camera]] tables)")
    tables = data.get("camera")
    if not isinstance(tables, list) or not tables:
        raise InputError(f"{path}: no camera (add a [[camera]] table with a name and a source)")
    cameras: list[CameraConfig] = []
    for number, table in enumerate(tables, start=1):
        camera = _camera(path, number, table, options, policy)
        if any(c.name == camera.name for c in cameras):
            raise InputError(f"{path}: two cameras are named {camera.name!r}")
        cameras.append(camera)
    return cameras


def _camera(
    path: Path, number: int, table, options: CaptureOptions, policy: ReconnectPolicy
) -> CameraConfig:
    where = f"{path}: camera {number}"
    if not isinstance(table, dict):
        raise InputError(f"{where} is not a table")
    name = table.get("name")
    if name is not None:
        where = f"{path}: camera {name!r}" if isinstance(name, str) else where
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InputError(
            f"{where}: 'name' must be 1 to 40 letters, digits, '.', '_' or '-' "
            "(starting with a letter or digit)"
        )
    unknown = sorted(set(table) - {"name", "source", *SETTINGS})
    if unknown:
        known = ", ".join(("name", "source", *SETTINGS))
        raise InputError(f"{where}: unknown key {unknown[0]!r} (known: {known})")
    if "source" not in table:
        raise InputError(f"{where}: no 'source'")
    source = table["source"]
    if isinstance(source, bool) or not isinstance(source, (str, int)):
        raise InputError(f"{where}: 'source' must be a camera index, a file or a URL")
    try:
        spec = parse_source(str(source))
        if spec.kind is SourceKind.FILE and not Path(spec.target).is_absolute():
            spec = SourceSpec(SourceKind.FILE, str(path.parent / spec.target))
        options = _options(table, options)
        if "reconnect" in table:
            attempts = table["reconnect"]
            if isinstance(attempts, bool) or not isinstance(attempts, (str, int)):
                raise ValueError("'reconnect' must be a number of attempts or 'forever'")
            policy = replace(policy, attempts=parse_reconnect(str(attempts)))
    except (InputError, ValueError, argparse.ArgumentTypeError) as exc:
        raise InputError(f"{where}: {exc}") from None
    return CameraConfig(name, spec, options, policy)


def _options(table: dict, options: CaptureOptions) -> CaptureOptions:
    transport = table.get("rtsp_transport", options.rtsp_transport)
    if transport is not None and transport not in TRANSPORTS:
        raise ValueError(f"'rtsp_transport' must be one of {', '.join(TRANSPORTS)}")
    timeouts = {}
    for key in ("open_timeout", "read_timeout"):
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{key!r} must be a number of seconds")
            timeouts[key] = seconds(str(value))
    return CaptureOptions(
        timeouts.get("open_timeout", options.open_timeout_s),
        timeouts.get("read_timeout", options.read_timeout_s),
        transport,
    )


def output_path(pattern: str, camera: str, several: bool) -> str:
    """Where `camera`'s recording goes: `--output` with `{camera}` replaced by its name. With
    several cameras the name must contain `{camera}` (one file per camera)."""
    if several and CAMERA_FIELD not in pattern:
        raise InputError(
            f"--output records one file per camera: put {CAMERA_FIELD} in its name "
            f"(e.g. rec-{CAMERA_FIELD}.mp4)"
        )
    return pattern.replace(CAMERA_FIELD, camera)
