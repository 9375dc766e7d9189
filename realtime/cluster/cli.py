"""`python -m realtime.cluster head|worker|up|status|down`: the command line (parsing and the
checks that need no Ray); `realtime.cluster.commands` runs the commands."""

from __future__ import annotations

import argparse
import importlib.util
import sys

from realtime.backbones.base import CHOICES as BACKEND_CHOICES
from realtime.cluster.nodes import ADDRESS_ENV, DEFAULT_PORT
from realtime.core.cliargs import (
    HelpFormatter,
    OneLineErrorParser,
    add_backbone_arguments,
    add_segment_arguments,
    configure_logging,
    int_up_to,
    positive_float,
    run_reporting_errors,
    seconds,
    stopping_early,
)
from realtime.core.errors import InputError

EXAMPLES = f"""\
on one machine (the head keeps the results):
  python -m realtime.cluster head --model models/ucf101_top5 --out results/
on each machine with cameras to run (one worker per machine):
  python -m realtime.cluster worker --address HEAD_HOST:{DEFAULT_PORT}
then, on the head's machine:
  python -m realtime.cluster up --cameras cameras.toml
  python -m realtime.cluster status
  python -m realtime.cluster down

The head binds to 127.0.0.1 unless --host is given. Ray has no authentication: a cluster
belongs on a trusted network (docs/cluster.md).
"""


class EpilogAsWritten(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """The examples keep their lines."""


def capacity(text: str) -> str:
    if text == "auto":
        return text
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= 100_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not 'auto' or frames per second (1+)")
    return text


def build_parser() -> argparse.ArgumentParser:
    p = OneLineErrorParser(
        prog="python -m realtime.cluster",
        description="Run cameras on several machines: Ray places each camera on a worker "
        "with room and moves it when its machine dies; every result reaches the head.",
        epilog=EXAMPLES,
        formatter_class=EpilogAsWritten,
    )
    p.add_argument("--verbose", "-v", action="store_true", help="tracebacks of failures")
    commands = p.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=OneLineErrorParser
    )
    address_help = f"the head's HOST:PORT (default: ${ADDRESS_ENV}, else 127.0.0.1:{DEFAULT_PORT})"

    h = commands.add_parser(
        "head",
        help="start the cluster: its head, the model, the results",
        formatter_class=HelpFormatter,
    )
    h.add_argument("--model", "-m", required=True, metavar="DIR", help="the model to ship")
    h.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="a new (or empty) directory for CAMERA.jsonl, CAMERA.events.jsonl",
    )
    h.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address the head listens on (the workers must reach it)",
    )
    h.add_argument("--port", type=int_up_to(65535), default=DEFAULT_PORT, help="the head's port")
    add_segment_arguments(h, "events")

    w = commands.add_parser(
        "worker",
        help="join a cluster and run the cameras placed here",
        formatter_class=HelpFormatter,
    )
    w.add_argument("--address", help=address_help)
    w.add_argument(
        "--host",
        help="this machine's address for the cluster (default: the one that routes to the head)",
    )
    w.add_argument(
        "--capacity",
        type=capacity,
        default="auto",
        metavar="auto|FPS",
        help="frames per second this machine offers (auto: its backbone's rate measured "
        "at start, times 0.4: docs/cluster.md)",
    )
    add_backbone_arguments(w, BACKEND_CHOICES)

    u = commands.add_parser(
        "up", help="place the cameras of a cameras file", formatter_class=HelpFormatter
    )
    u.add_argument(
        "--cameras",
        required=True,
        metavar="FILE",
        help="TOML, [[camera]] tables as for python -m realtime --cameras",
    )
    u.add_argument("--address", help=address_help)
    u.add_argument(
        "--demand",
        type=positive_float,
        metavar="FPS",
        help="what a camera reserves (default: the model's sampling rate)",
    )
    u.add_argument(
        "--wait",
        type=seconds,
        default=30.0,
        metavar="S",
        help="how long to wait for the cameras to be placed",
    )
    u.add_argument(
        "--open-timeout",
        type=seconds,
        default=10.0,
        metavar="S",
        help="each camera's open timeout (a file's own settings win)",
    )
    u.add_argument(
        "--read-timeout", type=seconds, default=5.0, metavar="S", help="each camera's read timeout"
    )
    u.add_argument("--rtsp-transport", choices=("tcp", "udp"), help="RTSP transport")

    s = commands.add_parser(
        "status",
        help="every camera: machine, state, action, fps, age",
        formatter_class=HelpFormatter,
    )
    s.add_argument("--address", help=address_help)

    d = commands.add_parser(
        "down", help="stop the cameras, the workers and the head", formatter_class=HelpFormatter
    )
    d.add_argument("--address", help=address_help)
    d.add_argument(
        "--wait",
        type=seconds,
        default=60.0,
        metavar="S",
        help="how long to wait for the head to stop",
    )
    return p


def run(args) -> int:
    if importlib.util.find_spec("ray") is None:
        raise InputError("the cluster needs Ray: pip install 'realtime-action[cluster]'")
    from realtime.cluster import commands

    return getattr(commands, args.command)(args)


def main(argv: list[str] | None = None) -> int:
    return stopping_early(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    return run_reporting_errors(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
