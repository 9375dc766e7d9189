"""Mutation testing of the core modules with mutmut, and the score docs/testing.md quotes.

    pip install 'realtime-action[checks]'
    python tests/mutation.py [--shared ../shared] [--children 2] [MUTANT_PATTERN ...]

mutmut (configured in pyproject.toml, `[tool.mutmut]`: which modules, which fast tests)
copies the tree to `mutants/`, makes every small change it knows in the core modules (`<` to
`<=`, `+ 1` to `+ 2`, `and` to `or`, a constant to another, a call's argument dropped...) and
runs, per change, the fast tests that reach the changed function. A change that fails a test
is killed (a hang past the time limit counts as killed too: the suite noticed). Work is kept
in `mutants/` and a second run only redoes changed functions.

The score printed at the end is killed / (all - equivalents): `tests/mutation_equivalents.txt`
lists, one per line, the mutants that cannot change behaviour (with the reason after `#`);
docs/testing.md says why each is there. Not in CI: a full run takes tens of minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENTS = ROOT / "tests" / "mutation_equivalents.txt"
#: mutmut's exit codes per mutant -> outcome
KILLED = {1, 3, -24, 24, 152, 36}  # a test failed, or the tests used up their CPU time
SURVIVED = {0}
NO_TESTS = {5, 33}


def equivalents() -> dict[str, str]:
    """Mutant name -> why it cannot change behaviour."""
    if not EQUIVALENTS.is_file():
        return {}
    out = {}
    for line in EQUIVALENTS.read_text().splitlines():
        name, _, reason = line.partition("#")
        if name.strip():
            out[name.strip()] = reason.strip()
    return out


def outcomes() -> dict[str, dict[str, int | None]]:
    """Module -> {mutant name: exit code} from mutmut's records in mutants/."""
    found = {}
    for meta in sorted((ROOT / "mutants").rglob("*.py.meta")):
        codes = json.loads(meta.read_text()).get("exit_code_by_key", {})
        module = meta.relative_to(ROOT / "mutants").with_suffix("").with_suffix("").as_posix()
        found[module] = codes
    return found


def report() -> int:
    """Print the score per module and in all; 0 when every mutant was checked."""
    known = equivalents()
    totals: Counter = Counter()
    survivors = []
    print(f"{'module':<34}{'mutants':>8}{'killed':>8}{'equiv.':>8}{'alive':>8}{'score':>8}")
    found = outcomes()
    for module, codes in found.items():
        c: Counter = Counter()
        for name, code in codes.items():
            if name in known:
                c["equivalent"] += 1
            elif code is None:
                c["unchecked"] += 1
            elif code in KILLED:
                c["killed"] += 1
            else:
                c["alive"] += 1
                survivors.append((name, "no test reaches it" if code in NO_TESTS else code))
        c["all"] = len(codes)
        totals.update(c)
        print(f"{module:<34}{c['all']:>8}{c['killed']:>8}{c['equivalent']:>8}{c['alive']:>8}"
              f"{score(c):>8}")  # fmt: skip
    print(f"{'all':<34}{totals['all']:>8}{totals['killed']:>8}{totals['equivalent']:>8}"
          f"{totals['alive']:>8}{score(totals):>8}")  # fmt: skip
    share = totals["equivalent"] / max(totals["all"], 1)
    print(f"equivalent mutants: {totals['equivalent']} ({share:.1%} of all)")
    for name, why in survivors:
        print(f"  alive: {name} ({why})")
    if totals["unchecked"]:
        print(f"{totals['unchecked']} mutants not checked yet: run again to finish")
    stale = sorted(set(known) - {n for codes in found.values() for n in codes})
    for name in stale:
        print(f"  listed as equivalent but no longer generated: {name}")
    return 1 if totals["unchecked"] else 0


def score(c: Counter) -> str:
    tested = c["all"] - c["equivalent"]
    return f"{100 * c['killed'] / tested:.1f}%" if tested else "-"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared", default=str(ROOT.parent / "shared"))
    p.add_argument("--children", type=int, default=os.cpu_count() or 1)
    p.add_argument("--report-only", action="store_true", help="only print the last run's score")
    p.add_argument(
        "mutants",
        nargs="*",
        help="mutmut names or patterns, e.g. 'realtime.head.window*'",
    )
    args = p.parse_args()
    if not args.report_only:
        # mutmut runs the tests from mutants/, where ../shared is not the shared folder
        env = {**os.environ, "REALTIME_SHARED": str(Path(args.shared).resolve())}
        command = ["mutmut", "run", "--max-children", str(args.children), *args.mutants]
        done = subprocess.run(command, cwd=ROOT, env=env)
        if done.returncode not in (0, 1):
            print(f"error: mutmut run ended with exit code {done.returncode}", file=sys.stderr)
            return 1
    return report()


if __name__ == "__main__":
    sys.exit(main())
