"""Find where code writes into named attributes: the static check behind the rules that one
module alone writes an array (access state, the population's fixed attributes)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import numpy as np

SIM = Path(__file__).resolve().parents[1] / "sim"


#: NumPy's ufuncs by name (their outputs may be given by position after the inputs).
UFUNCS = {name: f for name, f in vars(np).items() if isinstance(f, np.ufunc)}


def _numpy_call(node: ast.Call) -> bool:
    """Whether ``node`` calls ``np.<name>``."""
    return (isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "np")


def _attribute(node: ast.AST, names: set[str] | frozenset[str]) -> str | None:
    """The attribute of ``names`` that ``node`` writes into: ``x.a``, ``x.a[...]``."""
    while isinstance(node, ast.Subscript):
        node = node.value
    if isinstance(node, ast.Attribute) and node.attr in names:
        return node.attr
    return None


def writes(tree: ast.AST, names: set[str] | frozenset[str]) -> Iterator[tuple[int, str]]:
    """(line, attribute) of every assignment, in-place operation, ``out=`` (or a NumPy
    ufunc's output given by position) or ``copyto``/``setattr``/``put``/``place``/``fill``
    into an attribute of ``names``. Writes through another name (an alias) are not seen:
    the runtime check beside each use of this catches those."""
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        elif isinstance(node, ast.Call):
            targets = [k.value for k in node.keywords if k.arg == "out"]
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name in {"copyto", "setattr", "put", "place", "fill"} and node.args:
                targets.append(node.args[0])
            if _numpy_call(node) and name in UFUNCS:  # np.multiply(a, b, out): outputs last
                targets += node.args[UFUNCS[name].nin:]
        for target in targets:
            for t in (target.elts if isinstance(target, ast.Tuple) else [target]):
                if attr := _attribute(t, names):
                    yield node.lineno, attr


def writes_outside(names: set[str] | frozenset[str], allowed: set[Path]) -> list[str]:
    """Every write into ``names`` in ``sim/`` outside the ``allowed`` files."""
    found = []
    for path in sorted(SIM.rglob("*.py")):
        if path in allowed:
            continue
        for line, attr in writes(ast.parse(path.read_text(), str(path)), names):
            found.append(f"{path.relative_to(SIM.parent)}:{line} writes .{attr}")
    return found
