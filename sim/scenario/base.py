"""The frozen base model, the field types and the schema walk every scenario section shares.

Scenario sections subclass :class:`_Model` (frozen, unknown keys refused); categories that
split the population (archetypes, regions, A/B arms ...) subclass :class:`_Shared`, whose
``share`` values must sum to 1 within their mapping. The walk (:func:`annotation_at`) answers
what the schema allows at a dotted key path, so key handling never guesses from spelling.
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Bounds a planner never needs to exceed: past them a value validated, then crashed a run
# (an int8 code wrapped, a date overflowed, an infinite product passed as a limit).
#: Categories of one dimension (archetypes, regions, versions, arms ...): codes are int8.
MAX_CATEGORIES = 127
#: The smallest non-zero class III share (a Gaussian copula cut needs 1 - share < 1).
MIN_SHARE = 1e-12
#: The largest gamma shape of a spread multiplier (larger is already no spread at all).
MAX_SHAPE = 1e6
#: Most simulated users (user indices and counts stay far inside int32/int64 arrays).
MAX_USERS = 1_000_000_000
#: The longest span in months a scenario may give (a century).
MAX_MONTHS = 1200
#: The longest span in days a scenario may give (a century).
MAX_DAYS = 36_525
#: The largest amount of money in CNY (limits, caps, equity): a thousand trillion.
MAX_AMOUNT = 1e15
#: The largest multiplier or factor (leverage, hazard multipliers, gate growth ...).
MAX_FACTOR = 1_000.0
#: The largest value of a behaviour median or reference (payments, days, contacts, income).
MAX_MEDIAN = 1e12
#: The most score points a cut-off, penalty or score effect may weigh (scores are 0-100).
MAX_POINTS = 1_000.0
#: The largest sd of a logarithm (a larger spread only overflows to infinity).
MAX_LOG_SD = 20.0

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]
NonNegFloat = Annotated[float, Field(ge=0.0)]
PositiveInt = Annotated[int, Field(gt=0)]
Months = Annotated[int, Field(gt=0, le=MAX_MONTHS)]
Days = Annotated[int, Field(gt=0, le=MAX_DAYS)]
Amount = Annotated[float, Field(gt=0.0, le=MAX_AMOUNT)]
Factor = Annotated[float, Field(ge=1.0, le=MAX_FACTOR)]
Median = Annotated[float, Field(gt=0.0, le=MAX_MEDIAN)]
LogSd = Annotated[float, Field(ge=0.0, le=MAX_LOG_SD)]
Points = Annotated[float, Field(ge=0.0, le=MAX_POINTS)]

SHARE_TOLERANCE = 1e-6
MODULES = (
    "spending_capacity",
    "repayment_trust",
    "social_influence",
    "assets",
    "behavioural_stability",
    "risk_resilience",
)


#: Categorical dimensions of a user, reported in the segment table in this order.
DIMENSIONS = ("archetype", "region", "account_class", "device_grade", "os", "data_sharing",
              "version")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True,
                              allow_inf_nan=False, validate_default=True)

    @field_validator("*", mode="after")
    @classmethod
    def _sorted_keys(cls, v):
        """Mappings in key order: segments are coded in mapping order, so listing regions or
        archetypes in another order must not draw another population from the same seed."""
        return dict(sorted(v.items(), key=lambda kv: str(kv[0]))) if isinstance(v, dict) else v


def _check_shares(shares: Mapping[str, float], what: str) -> None:
    total = sum(shares.values())
    if abs(total - 1.0) > SHARE_TOLERANCE:
        names = ", ".join(f"{k}={v:g}" for k, v in shares.items())
        raise ValueError(f"{what} shares must sum to 1, got {total:.6g} ({names})")


class _Shared(_Model):
    share: Probability = Field(
        description="share of the users in this category (the mapping's shares sum to 1)")


def _shared(mapping: Mapping[str, _Shared], what: str) -> Mapping[str, _Shared]:
    if not mapping:
        raise ValueError(f"{what} needs at least one entry")
    if len(mapping) > MAX_CATEGORIES:
        raise ValueError(f"{len(mapping)} {what} entries; allowed: at most {MAX_CATEGORIES} "
                         "(categories are coded in int8 arrays)")
    _check_shares({k: v.share for k, v in mapping.items()}, what)
    return mapping


# --------------------------------------------------------------------------- schema walk

#: What :func:`annotation_at` returns for a key the schema does not have.
UNKNOWN = object()


def strip(annotation: Any) -> Any:
    """The annotation without ``Annotated`` constraints and without ``| None``."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
            continue
        if origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) == 1:
                annotation = args[0]
                continue
        return annotation


def is_model(annotation: Any) -> bool:
    a = strip(annotation)
    return isinstance(a, type) and issubclass(a, BaseModel)


def child(annotation: Any, part: str) -> Any:
    """The annotation of key ``part`` below ``annotation``, or :data:`UNKNOWN`."""
    a = strip(annotation)
    if is_model(a):
        field = a.model_fields.get(part)
        return field.annotation if field is not None else UNKNOWN
    origin, args = get_origin(a), get_args(a)
    if origin is dict:
        keys = strip(args[0])
        if get_origin(keys) is Literal and part not in map(str, get_args(keys)):
            return UNKNOWN
        return args[1]
    if origin is list and part.isdigit():
        return args[0]
    if origin is tuple and part.isdigit() and int(part) < len(args):
        return args[int(part)]
    return UNKNOWN


def annotation_at(root: type, parts: Sequence[str]) -> Any:
    """The schema's annotation at a key path below the model ``root``, or :data:`UNKNOWN`."""
    annotation: Any = root
    for part in parts:
        annotation = child(annotation, str(part))
        if annotation is UNKNOWN:
            return UNKNOWN
    return annotation


def allowed_keys(root: type, parts: Sequence[str]) -> list[str]:
    """The keys a model at ``parts`` allows (empty for mappings with free keys)."""
    a = strip(annotation_at(root, parts))
    if is_model(a):
        return sorted(a.model_fields)
    if get_origin(a) is dict and get_origin(strip(get_args(a)[0])) is Literal:
        return sorted(map(str, get_args(strip(get_args(a)[0]))))
    return []


def is_number(annotation: Any) -> bool:
    """Whether the schema holds a number (int or float, not bool) at this annotation."""
    a = strip(annotation)
    if get_origin(a) in (Union, types.UnionType):
        return any(is_number(x) for x in get_args(a))
    return a in (int, float)


def is_share_category(root: type, parts: Sequence[str]) -> bool:
    """Whether ``parts`` is the ``share`` of a category in a mapping of shared categories
    (its siblings' shares must then still sum to 1), judged from the schema."""
    if len(parts) < 3 or parts[-1] != "share":
        return False
    item = strip(annotation_at(root, parts[:-1]))
    mapping = strip(annotation_at(root, parts[:-2]))
    return (isinstance(item, type) and issubclass(item, _Shared)
            and get_origin(mapping) is dict)
