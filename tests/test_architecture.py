"""The house rules of DESIGN.md, checked on the source: imports only point down the layers,
no import cycle, the model free of pandas and I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SIM = Path(__file__).resolve().parents[1] / "sim"

#: Layers from the bottom up; a module may import its own layer and those below it.
LAYERS = ("errors", "scenario", "model", "engine", "analysis", "io", "experiments", "cli")


def _module(path: Path) -> str:
    parts = path.relative_to(SIM.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(p): p for p in SIM.rglob("*.py")}


def _resolve(name: str) -> str:
    """The deepest known module that ``name`` names (``sim.model.credit.Book`` -> credit)."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def imports(module: str) -> set[str]:
    """Every ``sim`` module that ``module`` imports: at the top, inside a function, or for
    type annotations only (a type-only cycle still ties the two modules together)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        found |= {_resolve(n) for n in names if n == "sim" or n.startswith("sim.")}
    return found - {module, "sim"}


GRAPH = {m: imports(m) for m in MODULES}


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_module_sits_in_a_layer():
    stray = [m for m in MODULES if m not in ("sim", "sim.__main__") and layer(m) is None]
    assert not stray, f"modules outside the layers {LAYERS}: {stray}"


def test_imports_point_down():
    upward = [f"{m} -> {d}" for m, deps in GRAPH.items() for d in deps
              if layer(m) is not None and layer(d) is not None and layer(d) > layer(m)]
    assert not upward, "imports that point up a layer:\n" + "\n".join(sorted(upward))


def test_no_import_cycle():
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(GRAPH.get(m, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state and (cycle := visit(d)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(GRAPH):
        if m not in state and (cycle := visit(m)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


@pytest.mark.parametrize("banned", ["pandas", "matplotlib", "seaborn", "typer", "rich"])
def test_the_model_needs_no_tables_charts_or_terminal(banned):
    users = []
    for module, path in MODULES.items():
        if not module.startswith(("sim.model", "sim.scenario")):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            users += [module for n in names if n.split(".")[0] == banned]
    assert not users, f"{banned} imported by {sorted(set(users))}"


def test_the_model_does_no_io():
    calls = []
    for module, path in MODULES.items():
        if not module.startswith("sim.model"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in ("open", "print", "input"):
                calls.append(f"{module}:{node.lineno} {node.func.id}()")
    assert not calls, calls
