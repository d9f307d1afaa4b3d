"""Scenario files: safe YAML with the line of every key, and ``extends`` chains merged.

A file may ``extends: other.yaml`` (resolved relative to the file) and override any key; only
mappings merge, a list or a value replaces the base's. Every key path remembers the file and
line that wrote it (:class:`~sim.scenario.messages.Origin`), so errors can point at it.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

from sim.scenario.messages import Key, Origin, ScenarioError, _kind


class _Loader(yaml.SafeLoader):
    """Safe YAML (no object-building tags) that leaves dates as text for pydantic to parse,
    so a bad date is reported with its key path like any other bad value."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_yaml(text: str):
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader




#: A scenario has a few hundred values; a file expanding to far more is an alias bomb.
MAX_VALUES = 100_000


def _read(path: Path) -> tuple[Any, dict[Key, Origin]]:
    """Parse one file safely; compose its node tree once to learn the line of every key."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ScenarioError(str(path), "", "not a UTF-8 text file") from None
    except OSError as exc:
        raise ScenarioError(str(path), "", f"cannot read the file: {exc.strerror}") from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        origins: dict[Key, Origin] = {}
        _walk(node, (), str(path), origins)
        return loader.construct_document(node), origins
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        where = f" at column {mark.column + 1}" if mark is not None else ""
        extra = f" ({context})" if context else ""
        raise ScenarioError(str(path), "", f"not valid YAML{where}: {problem}{extra}; "
                            "allowed: plain YAML mappings, lists and values, no tags",
                            line) from None
    except RecursionError:
        raise ScenarioError(str(path), "", "the YAML nests too deeply",
                            loader.get_mark().line + 1) from None
    finally:
        loader.dispose()


def _walk(node: yaml.Node, key: Key, file: str, out: dict[Key, Origin],
          inside: frozenset[int] = frozenset()) -> None:
    """Record the line of every key path under ``node``; refuse duplicate keys, aliases that
    contain themselves and alias bombs."""
    line = node.start_mark.line + 1
    if id(node) in inside:
        raise ScenarioError(file, ".".join(key), "this YAML alias refers to a node that "
                            "contains it (an endless structure)", line)
    if len(out) > MAX_VALUES:
        raise ScenarioError(file, ".".join(key), f"the file expands to more than "
                            f"{MAX_VALUES:,} values (through YAML aliases); a scenario is far "
                            "smaller", line)
    inside = inside | {id(node)}
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[(*key, str(i))] = Origin(file, item.start_mark.line + 1)
            _walk(item, (*key, str(i)), file, out, inside)
    elif isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for k, v in node.value:
            if k.tag == "tag:yaml.org,2002:merge":  # '<<: *anchor' merges into this mapping
                for merged in v.value if isinstance(v, yaml.SequenceNode) else [v]:
                    _walk(merged, key, file, out, inside)
                continue
            if not isinstance(k, yaml.ScalarNode):
                continue  # the constructor reports unhashable keys with their line
            line = k.start_mark.line + 1
            path = (*key, str(k.value))
            if k.value in seen:
                raise ScenarioError(
                    file, ".".join(path), f"this key appears twice (lines {seen[k.value]} and "
                    f"{line}); YAML would silently keep only the last, so remove one", line)
            seen[k.value] = line
            out[path] = Origin(file, line)
            _walk(v, path, file, out, inside)


def resolve(path: Path, chain: tuple[Path, ...]) -> tuple[dict, dict[Key, Origin]]:
    """The file's mapping with its ``extends`` chain merged in, and where each key came from."""
    if not chain and not path.is_file():
        raise ScenarioError(str(path), "", f"scenario file '{path}' does not exist")
    resolved = path.resolve()
    raw, origins = _read(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ScenarioError(str(path), "", f"a scenario is a mapping of keys, got {_kind(raw)}",
                            1)
    parent = raw.pop("extends", None)
    if parent is None:
        return raw, origins
    line = origins.get(("extends",), Origin(str(path))).line
    if not isinstance(parent, str) or not parent:
        raise ScenarioError(str(path), "extends", "'extends' names one scenario file (got "
                            f"{json.dumps(parent, default=str)[:80]})", line)
    target = path.parent / parent
    if not target.is_file():
        raise ScenarioError(str(path), "extends", f"the extended file '{parent}' does not exist "
                            f"(looked for {target})", line)
    if target.resolve() in (*chain, resolved):
        loop = " -> ".join(str(p) for p in (*chain, resolved, target.resolve()))
        raise ScenarioError(str(path), "extends", f"'extends' loops: {loop}; allowed: a chain "
                            "of files that ends in one without 'extends'", line)
    base, base_origins = resolve(target, (*chain, resolved))
    return merge(base, raw), _merge_origins(base_origins, base, origins, raw)


def _merge_origins(base_origins: dict[Key, Origin], base: dict,
                   over_origins: dict[Key, Origin], over: dict) -> dict[Key, Origin]:
    """Origins after ``merge(base, over)``: the override's keys win, and a list or scalar in
    the override replaces the base's whole subtree (only mappings merge)."""
    out = dict(base_origins)

    def drop_under(prefix: Key) -> None:
        n = len(prefix)
        for key in [k for k in out if len(k) > n and k[:n] == prefix]:
            del out[key]

    def visit(b: Any, o: dict, prefix: Key) -> None:
        for key, value in o.items():
            here = (*prefix, str(key))
            below = b.get(key) if isinstance(b, dict) else None
            if isinstance(value, dict) and isinstance(below, dict):
                visit(below, value, here)
            else:
                drop_under(here)

    visit(base, over, ())
    out.update(over_origins)
    return out


def merge(base: dict, override: dict) -> dict:
    """Deep-merge mappings; lists and scalars in ``override`` replace the base's."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
