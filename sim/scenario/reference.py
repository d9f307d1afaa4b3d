"""The scenario reference: every key path of the schema with its type, default, bounds and
description, as the Markdown page ``docs/scenario-reference.md``.

Generated from the pydantic models, so it cannot drift from what ``greysim validate`` accepts:
``python -m sim.scenario.reference > docs/scenario-reference.md`` rewrites it and a test fails
when the page is stale. Descriptions come from ``Field(description=...)``, else from the
docstring of the section's model.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import types
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from sim.scenario.base import strip
from sim.scenario.root import Scenario

#: Constraint attributes of annotated-types metadata, and how the page writes them.
BOUNDS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))


@dataclass(frozen=True)
class Row:
    """One key path of the schema."""

    path: str
    type: str
    default: str
    allowed: str
    description: str


def _constraints(annotation: Any, metadata: list) -> list[str]:
    """Bounds written on the field and inside its (optional, annotated) type."""
    found = list(metadata)
    stack = [annotation]
    while stack:
        a = stack.pop()
        origin = get_origin(a)
        if origin is Annotated:
            found += list(get_args(a)[1:])
            stack.append(get_args(a)[0])
        elif origin in (Union, types.UnionType):
            stack += list(get_args(a))
    out = []
    for item in found:
        for attr, sign in BOUNDS:
            value = getattr(item, attr, None)
            if value is not None:
                out.append(f"{sign} {value:g}" if isinstance(value, float) else f"{sign} {value}")
        for sub in getattr(item, "metadata", ()):  # a FieldInfo used inside Annotated
            for attr, sign in BOUNDS:
                value = getattr(sub, attr, None)
                if value is not None:
                    out.append(f"{sign} {value}")
    return list(dict.fromkeys(out))


def _type(a: Any) -> str:
    a = strip(a)
    origin, args = get_origin(a), get_args(a)
    if origin is Literal:
        return "one of " + ", ".join(f"`{x}`" for x in args)
    if origin in (Union, types.UnionType):
        return " or ".join(_type(x) for x in args if x is not type(None))
    if origin is list:
        return f"list of {_type(args[0])}"
    if origin is tuple:
        return "pair of " + " and ".join(_type(x) for x in args)
    if origin is dict:
        return f"mapping of {_key(args[0])} to {_type(args[1])}"
    if isinstance(a, type) and issubclass(a, BaseModel):
        return "section"
    return {int: "integer", float: "number", str: "text", bool: "true/false",
            dt.date: "date (YYYY-MM-DD)"}.get(a, getattr(a, "__name__", str(a)))


def _key(a: Any) -> str:
    a = strip(a)
    if get_origin(a) is Literal:
        return "/".join(map(str, get_args(a)))
    return "name"


def _default(field) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "(its keys' defaults)"
    if value is None:
        return "none"
    text = json.dumps(value, default=str) if isinstance(value, list | dict | tuple) else str(value)
    if isinstance(value, bool):
        text = text.lower()
    return text if len(text) <= 60 else text[:57] + "..."


def _doc(model: type) -> str:
    doc = inspect.getdoc(model) or ""
    if doc.startswith(("Usage docs", "!!!")) or model.__doc__ is None:
        return ""
    return " ".join(doc.split("\n\n", 1)[0].split())


def _children(a: Any) -> tuple[str, Any] | None:
    """The suffix and model of what sits below a mapping or list of sections, if any."""
    a = strip(a)
    origin, args = get_origin(a), get_args(a)
    if isinstance(a, type) and issubclass(a, BaseModel):
        return "", a
    if origin is dict:
        below = _children(args[1])
        return (f".<{_key(args[0])}>" + below[0], below[1]) if below else None
    if origin is list:
        below = _children(args[0])
        return (".N" + below[0], below[1]) if below else None
    if origin in (Union, types.UnionType):
        for x in args:
            if (below := _children(x)) is not None:
                return below
    return None


def rows(model: type[BaseModel] = Scenario, prefix: str = "",
         seen: dict[type, str] | None = None) -> list[Row]:
    """Every key path below ``model``; a section met a second time points at the first."""
    seen = {} if seen is None else seen
    out = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        below = _children(field.annotation)
        description = field.description or (_doc(below[1]) if below else "")
        if below and below[1] in seen:
            description = (description + " " if description else "") + \
                f"Same keys as `{seen[below[1]]}`."
        bounds = _constraints(field.annotation, field.metadata)
        allowed = ", ".join(bounds)
        out.append(Row(path, _type(field.annotation), _default(field), allowed,
                       description))
        if below and below[1] not in seen:
            sub = path + below[0]
            seen[below[1]] = sub
            out += rows(below[1], sub + ".", seen)
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown() -> str:
    """The whole page."""
    lines = [
        "# Scenario reference",
        "",
        "<!-- generated by `python -m sim.scenario.reference > docs/scenario-reference.md`; "
        "do not edit -->",
        "",
        "Every key a scenario file may hold, generated from the schema in `sim/scenario/`. "
        "`<name>` is a key you choose (an archetype, a region, an arm), `<A/B/C>` one of the "
        "listed keys, and `N` a list position (from 0, as in "
        "`--set rollout.phases.0.batch.share=0.05`). Unknown keys are errors. Shares of a "
        "mapping of categories (archetypes, regions, device grades, arms...) must sum to 1. "
        "Amounts are CNY; rates are per month unless named.",
        "",
        "| key | type | default | allowed | description |",
        "|---|---|---|---|---|",
    ]
    for r in rows():
        lines.append(f"| `{r.path}` | {_cell(r.type)} | {_cell(r.default)} | "
                     f"{_cell(r.allowed)} | {_cell(r.description)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
