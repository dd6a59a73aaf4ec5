"""The package's layers: imports run one way, and ``import mlp_core`` stays NumPy-only.

Every ``import`` in the package (at module level *and* inside functions) is read from the
source with :mod:`ast` and mapped to its room. A module may import only rooms below its
own, and inside the core only the core modules listed before it; the rooms above the core
must not form a cycle either. A negative control feeds the checker a back-edge.
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

import mlp_core

PACKAGE_DIR = pathlib.Path(mlp_core.__file__).resolve().parent

# The rooms, lowest first: a room may import only the rooms before it.
ROOMS = ("_version", "core", "fast", "training", "distributed", "bench", "book", "cli")
# Inside the core, the order of its modules (each may import only those before it).
CORE_ORDER = (
    "errors",
    "backend",
    "validate",
    "activations",
    "losses",
    "params",
    "batching",
    "single",
    "batched",
    "gradcheck",
    "data",
    "io",
)


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_sources() -> dict[str, tuple[str, bool]]:
    """{module name: (source, is_package)} for every .py file of mlp_core."""
    return {
        module_name(p): (p.read_text("utf-8"), p.name == "__init__.py")
        for p in sorted(PACKAGE_DIR.rglob("*.py"))
    }


def imported_modules(name: str, source: str, is_package: bool, known: set[str]) -> set[str]:
    """The mlp_core modules that ``source`` (the module ``name``) imports."""
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            targets = [
                f"{stem}.{a.name}" if f"{stem}.{a.name}" in known else stem for a in node.names
            ]
        else:
            continue
        found.update(t for t in targets if t == "mlp_core" or t.startswith("mlp_core."))
    return found


def room(module: str) -> tuple[int, int]:
    """(rank of the room, rank inside the core) of a module; the package root is last."""
    parts = module.split(".")
    if len(parts) == 1:  # the package's __init__: the top-level API, above everything
        return len(ROOMS), 0
    top = "cli" if parts[1] == "__main__" else parts[1]
    if top not in ROOMS:
        raise AssertionError(f"{module} is in no room; add its room to ROOMS")
    inner = 0
    if top == "core" and len(parts) > 2:
        if parts[2] not in CORE_ORDER:
            raise AssertionError(f"{module} is missing from CORE_ORDER")
        inner = CORE_ORDER.index(parts[2]) + 1
    return ROOMS.index(top), inner


def violations(sources: dict[str, tuple[str, bool]]) -> list[str]:
    """Every import against the order, and every cycle among the modules."""
    known = set(sources)
    edges = {m: imported_modules(m, src, pkg, known) - {m} for m, (src, pkg) in sources.items()}
    bad = []
    for m, targets in edges.items():
        for t in sorted(targets):
            if t == "mlp_core" and m != "mlp_core":
                bad.append(f"{m} imports the package root mlp_core (import the room instead)")
                continue
            if t not in known:
                bad.append(f"{m} imports {t}, which does not exist")
                continue
            here, there = room(m), room(t)
            is_own_package = m.startswith(t + ".") or t.startswith(m + ".")
            if here[0] == there[0] and (here[0] != ROOMS.index("core") or is_own_package):
                continue  # the same room: cycles are checked below
            if there > here:
                bad.append(f"{m} imports {t}: against the order {' ← '.join(ROOMS)}")
    # cycles (depth-first search over module-level and function-level imports alike)
    state: dict[str, int] = {}

    def visit(m, path):
        state[m] = 1
        for t in sorted(edges.get(m, ())):
            if t.startswith(m + ".") or m.startswith(t + "."):
                continue  # a package and its own submodules
            if state.get(t) == 1:
                bad.append("import cycle: " + " → ".join(path[path.index(t) :] + [t]))
            elif t in edges and not state.get(t):
                visit(t, path + [t])
        state[m] = 2

    for m in sorted(edges):
        if not state.get(m):
            visit(m, [m])
    return bad


def test_imports_run_one_way():
    assert violations(package_sources()) == []


def test_every_module_has_a_room():
    for name in package_sources():
        room(name)  # raises for a module outside the rooms


@pytest.mark.parametrize(
    ("module", "line"),
    [
        ("mlp_core.core.batched", "from ..training import train"),  # core → training
        ("mlp_core.core.activations", "from .io import save_params"),  # core, out of order
        ("mlp_core.fast.engine", "def f():\n    from ..bench import harness"),  # hidden
        ("mlp_core.training", "import mlp_core"),  # the package root
    ],
)
def test_negative_control_a_back_edge_is_caught(module, line):
    sources = package_sources()
    source, is_package = sources[module]
    sources[module] = (source + "\n" + line + "\n", is_package)
    assert violations(sources), f"{line!r} in {module} was not caught"


def test_negative_control_a_cycle_is_caught():
    sources = package_sources()
    for name in ("mlp_core.bench.harness", "mlp_core.bench"):
        assert name in sources
    src, pkg = sources["mlp_core.bench.harness"]
    sources["mlp_core.bench.harness"] = (src + "\nfrom . import cycle_b\n", pkg)
    sources["mlp_core.bench.cycle_b"] = ("from . import harness\n", False)
    assert any(v.startswith("import cycle") for v in violations(sources))


def test_import_mlp_core_loads_neither_matplotlib_nor_ipywidgets():
    code = (
        "import sys, mlp_core\n"
        "print(sorted(m for m in ('matplotlib', 'ipywidgets', 'cupy', 'mlp_core.bench', "
        "'mlp_core.book') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
