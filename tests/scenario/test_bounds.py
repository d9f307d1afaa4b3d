"""Every number a planner sets has a bound the simulation can honour: values past it used to
validate and then crash a run (an int8 code wrapped, a date overflowed, an infinite limit)."""

from __future__ import annotations

import types
from typing import Annotated, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from sim.scenario import Scenario, load
from sim.scenario.base import MAX_CATEGORIES, is_model, strip

BASELINE = "scenarios/baseline.yaml"


def _numbers(model: type[BaseModel], prefix: str = ""):
    """(key path, annotation) of every int or float field below ``model``."""
    for name, field in model.model_fields.items():
        yield from _walk(field.annotation, f"{prefix}{name}", field.metadata)


def _walk(annotation, path, metadata=()):
    a = annotation
    meta = list(metadata)
    while True:  # unwrap Annotated and Optional, collecting constraints
        if get_origin(a) is Annotated:
            meta += list(a.__metadata__)
            a = get_args(a)[0]
        elif get_origin(a) in (Union, types.UnionType):
            args = [x for x in get_args(a) if x is not type(None)]
            if len(args) != 1:
                return
            a = args[0]
        else:
            break
    if is_model(a):
        yield from _numbers(strip(a), f"{path}.")
    elif get_origin(a) in (dict, list):
        yield from _walk(get_args(a)[-1], f"{path}.*")
    elif a in (int, float):
        yield path, a, meta


def _upper(meta) -> float | None:
    for m in meta:
        # a pydantic FieldInfo nested in a union holds its constraints in .metadata
        if hasattr(m, "metadata") and (found := _upper(m.metadata)) is not None:
            return found
        for attr in ("le", "lt"):
            if getattr(m, attr, None) is not None:
                return getattr(m, attr)
    return None


def test_every_count_day_and_month_has_an_upper_bound():
    ints = [(p, _upper(m)) for p, t, m in _numbers(Scenario) if t is int]
    assert ints, "the walk found no integer keys"
    unbounded = [p for p, up in ints if up is None]
    assert not unbounded, f"integer keys without an upper bound: {unbounded}"


def test_every_rate_days_and_months_float_has_an_upper_bound():
    words = ("rate", "days", "months", "weeks", "factor", "multiplier", "leverage", "equity",
             "amount", "weight", "median", "sigma", "spread", "dispersion", "shape")
    floats = [(p, _upper(m)) for p, t, m in _numbers(Scenario) if t is float]
    named = [(p, up) for p, up in floats if any(w in p.rsplit(".", 1)[-1] for w in words)]
    assert len(named) > 20
    unbounded = [p for p, up in named if up is None]
    assert not unbounded, f"rates, spans and amounts without an upper bound: {unbounded}"


@pytest.mark.parametrize(("key", "value"), [
    ("behaviour.device_switch_rate", 200),        # int8 switch counts wrapped negative
    ("behaviour.device_switch_rate", 1e308),
    ("population.archetypes.stable_salaried.class_iii", 1e-17),  # StatisticsError
    ("credit.limits.freeze_days", 2**63),          # OverflowError
    ("credit.repayment.instalment_months", 2**63),
    ("fraud.r1_hidden_days", 2**63),
    ("credit.loss.funding_rate", 1e308),
    ("capital.equity", 1e308),                     # validated, then an infinite limit
    ("quarters", 10**6),
    ("seed", 2**64),
])
def test_values_that_crashed_a_run_are_refused_naming_the_key(key, value):
    from sim.scenario import ScenarioError

    with pytest.raises(ScenarioError) as info:
        load(BASELINE, {key: value})
    assert info.value.path == key or key.startswith(info.value.path)


def test_categories_are_bounded_by_their_int8_codes():
    from sim.scenario import ScenarioError

    shares = {f"r{i}": {"share": 1 / (MAX_CATEGORIES + 1)} for i in range(MAX_CATEGORIES + 1)}
    base = load(BASELINE, users=1000)
    raw = base.model_dump(mode="json")
    raw["population"]["regions"] = shares
    from sim.scenario import validate

    with pytest.raises(ScenarioError, match="at most 127"):
        validate(raw)
