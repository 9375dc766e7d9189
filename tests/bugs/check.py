"""Bugs that once passed the whole suite, kept as patches: the suite must now fail on each.

Each patch is applied to a fresh copy of the working tree; the tests named for it run there
(with the same Python and `--shared`); a bug that leaves them green is reported, exit 1.

    python tests/bugs/check.py [--shared ../shared] [NAME ...]

Not part of CI (a few minutes: patch 3 converts and quantizes InceptionV3).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

#: patch name -> the tests that must fail with it
MUST_FAIL = {
    "1-dropped-counts-unread": ["tests/test_capture.py"],
    "2-first-open-ignores-open-timeout": ["tests/test_bad_input.py::test_url_that_never_answers"],
    "3-held-out-fp32-stored-as-int8": ["tests/test_backends.py", "-k", "int8"],
    "4-pipeline-ignores-smooth": ["tests/test_cli.py", "-k", "smooth"],
}
SKIP = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", "weights", "data"}


def copy_tree(target: Path) -> None:
    shutil.copytree(ROOT, target, ignore=lambda _dir, names: [n for n in names if n in SKIP])


def check(name: str, shared: Path) -> bool:
    """True when the tests catch the bug (fail with it applied)."""
    with tempfile.TemporaryDirectory(prefix=f"bug-{name}-") as tmp:
        copy = Path(tmp) / "tree"
        copy_tree(copy)
        applied = subprocess.run(
            ["git", "apply", str(HERE / f"{name}.patch")], cwd=copy, capture_output=True
        )
        if applied.returncode != 0:  # the code around the bug changed: remake the patch
            print(f"STALE   {name}: the patch no longer applies to this tree")
            return False
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
             "--shared", str(shared), *MUST_FAIL[name]],
            cwd=copy, capture_output=True, text=True,
        )  # fmt: skip
    summary = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
    caught = result.returncode == 1  # tests failed (not: collection error, all skipped)
    print(f"{'caught' if caught else 'MISSED'}  {name}: {summary}")
    return caught


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared", default=str(ROOT.parent / "shared"))
    p.add_argument("names", nargs="*", metavar="NAME", help=", ".join(MUST_FAIL))
    args = p.parse_args()
    unknown = sorted(set(args.names) - set(MUST_FAIL))
    if unknown:
        p.error(f"unknown patch {', '.join(unknown)}")
    args.names = args.names or list(MUST_FAIL)
    missed = [n for n in args.names if not check(n, Path(args.shared).resolve())]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
