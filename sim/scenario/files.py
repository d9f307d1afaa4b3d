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

#: libyaml's parser when PyYAML has it (ten times faster than the pure-Python one; loading a
#: scenario was most of a small run's time), else the pure-Python safe loader.
_SAFE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SAFE):
    """Safe YAML (no object-building tags) that leaves dates as text for pydantic to parse,
    so a bad date is reported with its key path like any other bad value."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_yaml(text: str):
    """Safe YAML of a value or a document; a value YAML cannot build (an integer of more
    than 4,300 digits ...) is a YAMLError like any other malformed text."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except (ValueError, RecursionError) as exc:
        raise yaml.YAMLError(str(exc)) from None


#: A scenario file is a few kilobytes; larger files are refused before they are parsed (a
#: 5 MB flat list took 1.7 GB and minutes to parse before any other limit could apply).
MAX_FILE_BYTES = 1_000_000
#: A scenario has a few hundred values; composing more YAML nodes than this (counting every
#: visit through an alias or a merge key ``<<``, i.e. the work of building the document) is an
#: alias bomb.
MAX_VALUES = 100_000
#: Python refuses to convert integers of more than 4,300 digits; no scenario value needs 30.
MAX_INT_DIGITS = 30


def _read(path: Path) -> tuple[Any, dict[Key, Origin]]:
    """Parse one file safely; compose its node tree once to learn the line of every key."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ScenarioError(str(path), "", f"the file is {size:,} bytes; allowed: at most "
                                f"{MAX_FILE_BYTES:,} bytes (a scenario is a few kilobytes)")
        with path.open("rb") as handle:  # the size may change after stat: read at most the cap
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise ScenarioError(str(path), "", f"the file is larger than {MAX_FILE_BYTES:,} "
                                "bytes; allowed: at most that (a scenario is a few kilobytes)")
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError(str(path), "", "not a UTF-8 text file") from None
    except OSError as exc:
        raise ScenarioError(str(path), "", f"cannot read the file: {exc.strerror}") from None
    loader = None
    try:
        loader = _Loader(text)  # the reader checks every character here
        node = loader.get_single_node()
        if node is None:
            return None, {}
        origins: dict[Key, Origin] = {}
        _walk(node, (), str(path), origins, _Budget())
        return loader.construct_document(node), origins
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        where = f" at column {mark.column + 1}" if mark is not None else ""
        extra = f" ({context})" if context else ""
        if isinstance(exc, yaml.reader.ReaderError):  # a control character, a NUL byte ...
            line = text.count("\n", 0, exc.position) + 1
            char = exc.character
            char = f"U+{char:04X}" if isinstance(char, int) else repr(char)
            problem = (f"the control character {char} (at character {exc.position + 1}) is "
                       "not allowed in YAML")
            where = extra = ""
        raise ScenarioError(str(path), "", f"not valid YAML{where}: {problem}{extra}; "
                            "allowed: plain YAML mappings, lists and values, no tags",
                            line) from None
    except RecursionError:
        mark = getattr(loader, "get_mark", None)  # libyaml's parser has none
        raise ScenarioError(str(path), "", "the YAML nests too deeply; allowed: a few levels "
                            "of mappings and lists", mark().line + 1 if mark else None) from None
    finally:
        if loader is not None:
            loader.dispose()


class _Budget:
    """The nodes composed so far, counted through aliases and merge keys alike."""

    def __init__(self) -> None:
        self.used = 0


_INT = "tag:yaml.org,2002:int"


def _scalar_key(node: yaml.ScalarNode, file: str, path: Key) -> Any:
    """A mapping key as YAML reads it (``1``, ``0x1`` and ``+1`` are the same integer), so
    keys that the mapping would silently merge are caught as duplicates."""
    if node.tag == _INT:
        _check_int(node, file, path)
    try:
        value = _KEYS.construct_object(node) if node.tag.startswith(_CORE) else node.value
    except (ValueError, yaml.YAMLError):
        value = node.value
    _KEYS.constructed_objects.clear()
    return value  # equal as Python dict keys (1, 0x1, 1.0, true) = merged by YAML


_CORE = "tag:yaml.org,2002:"
_KEYS = _Loader("")  # builds the scalars of keys only (no document)


def _check_int(node: yaml.ScalarNode, file: str, path: Key) -> None:
    digits = sum(c.isalnum() for c in node.value)
    if digits > MAX_INT_DIGITS:
        raise ScenarioError(file, ".".join(path), f"an integer of {digits:,} digits; allowed: "
                            f"at most {MAX_INT_DIGITS} digits", node.start_mark.line + 1)


def _walk(node: yaml.Node, key: Key, file: str, out: dict[Key, Origin], budget: _Budget,
          inside: frozenset[int] = frozenset()) -> None:
    """Record the line of every key path under ``node``; refuse duplicate keys, aliases that
    contain themselves and alias bombs (counting the nodes the document would be built from,
    every visit through an alias or a merge key included)."""
    line = node.start_mark.line + 1
    if id(node) in inside:
        raise ScenarioError(file, ".".join(key), "this YAML alias refers to a node that "
                            "contains it (an endless structure)", line)
    budget.used += 1
    if budget.used > MAX_VALUES:
        raise ScenarioError(file, ".".join(key), f"the file expands to more than "
                            f"{MAX_VALUES:,} values (through YAML aliases or merge keys); a "
                            "scenario is far smaller", line)
    inside = inside | {id(node)}
    if isinstance(node, yaml.ScalarNode):
        if node.tag == _INT:
            _check_int(node, file, key)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[(*key, str(i))] = Origin(file, item.start_mark.line + 1)
            _walk(item, (*key, str(i)), file, out, budget, inside)
    elif isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for k, v in node.value:
            if k.tag == "tag:yaml.org,2002:merge":  # '<<: *anchor' merges into this mapping
                for merged in v.value if isinstance(v, yaml.SequenceNode) else [v]:
                    _walk(merged, key, file, out, budget, inside)
                continue
            if not isinstance(k, yaml.ScalarNode):
                continue  # the constructor reports unhashable keys with their line
            line = k.start_mark.line + 1
            path = (*key, str(k.value))
            same = _scalar_key(k, file, path)
            if same in seen:
                raise ScenarioError(
                    file, ".".join(path), f"this key appears twice (lines {seen[same]} and "
                    f"{line}, as YAML reads them); YAML would silently keep only the last, so "
                    "remove one", line)
            seen[same] = line
            out[path] = Origin(file, line)
            _walk(v, path, file, out, budget, inside)


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
