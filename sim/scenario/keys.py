"""Dotted key paths (``rollout.phases.0.batch.share``): the one way to read, set and replace
scenario values by key, for overrides, :meth:`Scenario.replace`, sweeps and calibration.

A key names an existing value of the scenario (list items by index). It may also name a value
the file leaves to its default (a model field) or a new entry of a mapping of plain values
(an archetype's ``tilts``, score weights); never a new category (an archetype, a region).
What a key may hold, and whether it is a category's ``share``, is read from the schema, not
guessed from the key's spelling. Setting a category's ``share`` rescales its siblings not set,
so the shares still sum to 1.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from pydantic import BaseModel

from sim.scenario.base import (
    UNKNOWN,
    allowed_keys,
    annotation_at,
    child,
    is_model,
    is_number,
    is_share_category,
    strip,
)
from sim.scenario.files import parse_yaml
from sim.scenario.messages import Key, Origin, ScenarioError, did_you_mean


def split(key: str) -> Key:
    """A dotted key as its parts: ``"a.0.b"`` -> ``("a", "0", "b")``."""
    return tuple(key.strip().split("."))


def get(data: Any, key: str | Key) -> Any:
    """The value at ``key`` in nested mappings and lists; ``KeyError`` when there is none."""
    node = data
    for part in split(key) if isinstance(key, str) else key:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise KeyError(key)
    return node


def parse_value(text: str) -> Any:
    """A value written as YAML text (``0.05``, ``[a, b]``, ``{x: 1}``); text that is not YAML
    stays text."""
    try:
        return parse_yaml(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def parse_assignment(text: str, source: str = "<override>") -> tuple[str, Any]:
    """``"key.path=value"`` as ``(key, value)``, the value parsed as YAML."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ScenarioError(source, key, f"an override is key.path=value, got '{text}'")
    return key, parse_value(value)


def parse_assignments(items: Iterable[str], source: str = "<override>") -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` as ``{"a.b": 1, "c": "x"}`` (a later key wins)."""
    return dict(parse_assignment(item, source) for item in items)


def value_text(value: Any) -> str:
    """A value as it would be written after ``key=`` (floats in full precision)."""
    value = plain(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str | int | bool) or value is None:
        return str(value) if not isinstance(value, bool) else str(value).lower()
    return yaml.safe_dump(value, default_flow_style=True).strip()


def plain(value: Any) -> Any:
    """NumPy scalars as Python numbers, so the schema reads them like written numbers."""
    item = getattr(value, "item", None)
    if type(value).__module__ == "numpy" and callable(item):
        return item()
    return value


def numeric_key(root: type, key: str) -> bool:
    """Whether the schema holds a number at ``key`` (raises for a key it does not have)."""
    annotation = annotation_at(root, split(key))
    if annotation is UNKNOWN:
        raise unknown_key(root, key)
    return is_number(annotation)


def unknown_key(root: type, key: str, source: str = "<scenario>") -> ScenarioError:
    """The error for a key the schema does not have, naming the first wrong part."""
    parts = split(key)
    for n in range(1, len(parts) + 1):
        if annotation_at(root, parts[:n]) is UNKNOWN:
            here = ".".join(parts[:n])
            hint = did_you_mean(parts[n - 1], allowed_keys(root, parts[: n - 1]))
            return ScenarioError(source, here, f"this key does not exist{hint}")
    return ScenarioError(source, key, "this key does not exist")


def set_values(raw: dict, changes: Mapping[str, Any], root: type, *, source: str,
               origins: dict[Key, Origin] | None = None, note: str = "set") -> dict[str, Any]:
    """Set every ``changes`` key in the raw mapping ``raw`` (in place) and return every key
    that changed, including category shares rescaled so they still sum to 1.

    ``origins`` records each key as set by ``note`` (e.g. "set on the command line"), so a
    later validation error says where the bad value came from.
    """
    changed: dict[str, Any] = {}
    for key, value in changes.items():
        key = key.strip()
        via = f"{note}: {key}={value_text(value)}"
        _set(raw, split(key), plain(value), root, source, via)
        changed[key] = plain(value)
        if origins is not None:
            _overridden(origins, split(key), source, via)
    changed.update(_rescale_shares(raw, changed, root, source))
    return changed


def _set(raw: dict, parts: Key, value: Any, root: type, source: str, via: str) -> None:
    node: Any = raw
    annotation: Any = root
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        here = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ScenarioError(source, here, f"no list item {part}; the list has "
                                    f"{len(node)} items", via=via)
            index: Any = int(part)
        elif isinstance(node, dict):
            if part not in node and not _may_add(annotation, part):
                known = set(node) | set(allowed_keys(root, parts[:depth]))
                raise ScenarioError(source, here, "this key does not exist"
                                    + did_you_mean(part, known), via=via)
            index = part
        else:
            raise ScenarioError(source, here, "this key does not exist (its parent holds a "
                                "value, not keys)", via=via)
        if last:
            node[index] = value
            return
        if isinstance(node, dict) and part not in node:
            node[part] = _default(annotation, part)
        node, annotation = node[index], child(annotation, part)


def _may_add(annotation: Any, part: str) -> bool:
    """A key absent from the file may be set if the schema has it as a model field (its
    default is filled in) or as an entry of a mapping of plain values, not of categories."""
    if annotation is UNKNOWN:
        return False
    sub = child(annotation, part)
    if sub is UNKNOWN:
        return False
    return is_model(annotation) or not is_model(sub)


def _default(annotation: Any, name: str) -> Any:
    """The raw (YAML-like) form of a field's default, so setting one key keeps the rest."""
    a = strip(annotation)
    field = a.model_fields.get(name) if is_model(a) else None
    default = field.default if field is not None else None
    if isinstance(default, BaseModel):
        return default.model_dump(mode="json")
    if isinstance(default, dict | list):
        return copy.deepcopy(default)
    return {}


def _overridden(origins: dict[Key, Origin], key: Key, source: str, via: str) -> None:
    for k in [k for k in origins if k[: len(key)] == key]:
        del origins[k]
    origins[key] = Origin(source, None, via)


def _rescale_shares(raw: dict, changed: Mapping[str, Any], root: type,
                    source: str) -> dict[str, float]:
    """Rescale the shares of categories not set so each set's shares still sum to 1."""
    groups = {split(k)[:-2] for k in changed if is_share_category(root, split(k))}
    out: dict[str, float] = {}
    for group in sorted(groups):
        cats = get(raw, group)
        prefix = ".".join(group)
        fixed = [c for c in cats if f"{prefix}.{c}.share" in changed]
        free = [c for c in cats if c not in fixed]
        if not free:
            continue  # every share given: the schema checks they sum to 1
        try:
            room = 1.0 - sum(float(cats[c]["share"]) for c in fixed)
            free_total = sum(float(cats[c]["share"]) for c in free)
        except (TypeError, ValueError, KeyError):
            continue  # a share that is not a number: validation names it
        if free_total <= 0 or room < 0:
            raise ScenarioError(source, prefix, f"the shares set ({', '.join(fixed)}) leave "
                                f"{room:.6g} for the others; allowed: shares that sum to at "
                                "most 1, with the others holding some share to rescale")
        for c in free:
            cats[c]["share"] = float(cats[c]["share"]) * room / free_total
            out[f"{prefix}.{c}.share"] = cats[c]["share"]
    return out


def share_group(root: type, key: str) -> str | None:
    """The mapping of categories whose ``share`` ``key`` is (``population.archetypes``), or
    None when ``key`` is not a category's share."""
    parts = split(key)
    return ".".join(parts[:-2]) if is_share_category(root, parts) else None


def nest(values: Mapping[str, Any], full: Mapping[str, Any] | None = None) -> dict:
    """Dotted keys as nested mappings, to write as a scenario file that ``extends`` another.

    A list cannot be merged by ``extends`` (a list replaces the base's), so a key inside a
    list writes the whole top-most list from ``full`` (the resolved scenario's mapping).
    """
    out: dict = {}
    for key, value in values.items():
        parts = split(key)
        through = _first_list(full, parts) if full is not None else None
        if through is not None:
            parts, value = parts[: through + 1], copy.deepcopy(get(full, parts[: through + 1]))
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _first_list(full: Any, parts: Key) -> int | None:
    """The index of the first part of ``parts`` that names a list in ``full``."""
    node = full
    for i, part in enumerate(parts):
        node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list) and i < len(parts) - 1:
            return i
    return None
