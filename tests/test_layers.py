"""The package layers: each imports only the layers below it, nothing imports in a circle, and
imports inside functions are kept for the optional heavy dependencies.

    python tests/test_layers.py      # print the import graph between the layers' modules

Layers, lowest first: core <- frames <- backbones <- head <- stream <- outputs <- ui <- web <- the
application (`realtime.cli`, `realtime.app`, `realtime.cameras`, `realtime.plot`,
`python -m realtime`).
`training/` may use core, frames, backbones and head, never the stream, outputs, UI or CLI.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from realtime.core.optional import OPTIONAL_MODULES  # noqa: E402

LAYERS = (
    "core", "frames", "backbones", "head", "stream", "outputs", "ui", "web", "app", "cluster"
)  # fmt: skip
#: The highest layer `training/` may import.
TRAINING_REACH = LAYERS.index("head")


@dataclass(frozen=True)
class Import:
    importer: str  # module name
    imported: str  # module name (a `from package import module` resolves to the module)
    line: int
    inside_function: bool


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    files = [*(ROOT / "realtime").rglob("*.py"), *(ROOT / "training").rglob("*.py")]
    return {module_name(f): f for f in sorted(files)}


def imports_of(name: str, path: Path, known: set[str]) -> list[Import]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from realtime.backbones import conversion` imports the module itself
            targets = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module
                for a in node.names
            ]
        else:
            continue
        for target in targets:
            found.append(Import(name, target, node.lineno, node.col_offset > 0))
    return found


def layer_of(module: str) -> int | None:
    """The layer of a `realtime` module; None for `training` and third-party modules."""
    parts = module.split(".")
    if parts[0] != "realtime":
        return None
    if len(parts) > 1 and parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    return LAYERS.index("app")  # realtime.cli, .app, .cameras, .__main__, realtime


def all_imports() -> list[Import]:
    modules = project_modules()
    known = set(modules)
    return [i for name, path in modules.items() for i in imports_of(name, path, known)]


def is_optional(module: str) -> bool:
    return module in OPTIONAL_MODULES or module.split(".")[0] in OPTIONAL_MODULES


def test_every_module_has_a_layer_and_realtime_has_no_loose_modules():
    loose = [
        m
        for m in project_modules()
        if m.startswith("realtime.")
        and m.split(".")[1] not in LAYERS
        and m
        not in (
            "realtime.cli",
            "realtime.app",
            "realtime.cameras",
            "realtime.plot",
            "realtime.__main__",
        )
    ]
    assert loose == []


def test_layers_import_only_downwards():
    upward = [
        f"{i.importer}:{i.line} imports {i.imported}"
        for i in all_imports()
        if layer_of(i.importer) is not None
        and layer_of(i.imported) is not None
        and layer_of(i.imported) > layer_of(i.importer)
    ]
    assert upward == []


def test_training_uses_only_core_frames_backbones_and_head():
    reaching = [
        f"{i.importer}:{i.line} imports {i.imported}"
        for i in all_imports()
        if i.importer.startswith("training")
        and layer_of(i.imported) is not None
        and layer_of(i.imported) > TRAINING_REACH
    ]
    assert reaching == []


def test_imports_inside_functions_are_only_the_optional_heavy_ones():
    inner = [
        f"{i.importer}:{i.line} imports {i.imported} inside a function"
        for i in all_imports()
        if i.inside_function and not is_optional(i.imported)
    ]
    assert inner == []


def test_nothing_imports_in_a_circle():
    graph: dict[str, set[str]] = {}
    modules = set(project_modules())
    for i in all_imports():
        if i.imported in modules and i.imported != i.importer:
            graph.setdefault(i.importer, set()).add(i.imported)
    # a package imports its own modules (`__init__`), which is not a cycle through it
    for name in modules:
        graph[name] = {m for m in graph.get(name, ()) if not name.startswith(m + ".")}
    state: dict[str, int] = {}
    cycles = []

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


@pytest.mark.parametrize(
    "importer, imported, allowed",
    [
        ("realtime.head.keras", "realtime.stream.engine", False),
        ("realtime.ui.display", "realtime.stream.pipeline", True),
        ("realtime.cli", "realtime.ui.display", True),
        ("realtime.frames.sources", "realtime.backbones.base", False),
    ],
)
def test_the_rule_itself(importer, imported, allowed):
    assert (layer_of(imported) <= layer_of(importer)) is allowed


def print_graph() -> None:
    """Layer by layer, each module and the project modules it imports."""
    edges: dict[str, set[str]] = {}
    modules = project_modules()
    for i in all_imports():
        if i.imported in modules and i.imported != i.importer:
            edges.setdefault(i.importer, set()).add(i.imported)
    groups = [(layer, [m for m in modules if layer_of(m) == n]) for n, layer in enumerate(LAYERS)]
    groups.append(("training", [m for m in modules if m.startswith("training")]))
    for layer, members in groups:
        print(f"[{layer}]")
        for m in members:
            print(f"  {m}" + (f" -> {', '.join(sorted(edges[m]))}" if m in edges else ""))


if __name__ == "__main__":
    print_graph()
