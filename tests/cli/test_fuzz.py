"""Fuzzing: however a planner mangles a scenario, greysim answers 0 or 2, never a traceback.

Hypothesis mutates the baseline (drops keys, changes their types, rescales numbers, misspells
keys, corrupts the YAML text) and runs ``greysim validate`` and, for some, ``greysim run`` on
a tiny population. Exit code 2 must always name a key or a line.

In CI the search is derandomized (the same examples on every clone) with a fixed budget, so a
green run stays green; every failure the fuzzer ever found is kept as an explicit example in
:data:`PAST_FINDS`. Exploratory fuzzing is opt-in: ``GREYSIM_FUZZ=1`` draws fresh random
examples (``GREYSIM_FUZZ_EXAMPLES``, 300 by default) and keeps Hypothesis' example database.
"""

from __future__ import annotations

import copy
import os
import re
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sim.cli.app import app
from sim.scenario import parse_yaml

ROOT = Path(__file__).resolve().parents[2]
BASE = parse_yaml((ROOT / "scenarios" / "baseline.yaml").read_text())
EXPLORE = os.environ.get("GREYSIM_FUZZ", "") not in ("", "0")
EXAMPLES = int(os.environ.get("GREYSIM_FUZZ_EXAMPLES", "300" if EXPLORE else "80"))

#: Failures the fuzzer found, as ``--set`` overrides of the baseline: each once ended in a
#: traceback and must now exit 0 or 2 naming the key.
PAST_FINDS = [
    # a Poisson draw with a mean beyond int64 (commit 149a0fa)
    "population.account_classes.III.bound_cards=9e18",
    # rng.integers high out of bounds for int64 in synthesis; validate said the file was valid
    "population.variation.id_expired_max_months=100000000000000000000",
    # issue 17: values that validated, then crashed or corrupted a run
    "behaviour.device_switch_rate=200",  # int8 switch counts wrapped negative
    "behaviour.device_switch_rate=1e308",
    "population.archetypes.stable_salaried.class_iii=1e-17",  # StatisticsError
    f"credit.limits.freeze_days={2**63}",  # OverflowError
    f"credit.repayment.instalment_months={2**63}",
    f"fraud.r1_hidden_days={2**63}",
    "credit.loss.funding_rate=1e308",
    "capital.equity=1e308",  # exited 0 with an infinite capital limit
    "seed=" + "9" * 5000,  # beyond Python's 4,300-digit conversion limit
]
NAMES_KEY_OR_LINE = re.compile(r"keys? '[^']+'|\.yaml:\d+")


def _paths(node, prefix=()):
    """Every key path of the scenario, mappings and lists alike."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        yield (*prefix, key)
        if isinstance(value, dict | list):
            yield from _paths(value, (*prefix, key))


PATHS = list(_paths(BASE))
KEY_PATHS = [p for p in PATHS if isinstance(p[-1], str)]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**20, 10**20),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["2025-02-30", "0001-01-01", "9999-12-01", "yes", "~", "1e3", ".nan"]),
)
values = st.one_of(scalars, st.lists(scalars, max_size=3),
                   st.dictionaries(st.text(max_size=6), scalars, max_size=3))
factors = st.sampled_from([-1, 0, 1e-12, 0.5, 1.5, 3, 1e3, 1e9, 1e300])
nudges = st.sampled_from([0.5, 0.9, 1.1, 2, 10])  # often still valid: exercises the run


def _parent(doc, path):
    node = doc
    for key in path[:-1]:
        node = node[key]
    return node


@st.composite
def mutation(draw, doc):
    """Apply one mutation to ``doc`` in place."""
    kind = draw(st.sampled_from(["drop", "retype", "rescale", "misspell", "nudge", "nudge"]))
    paths = list(_paths(doc)) if kind != "misspell" else [
        p for p in _paths(doc) if isinstance(p[-1], str)]
    if not paths:
        return
    path = draw(st.sampled_from(paths))
    parent, key = _parent(doc, path), path[-1]
    if kind == "nudge":
        value = parent[key]
        if isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool)):
            parent[key] = type(value)(value * draw(nudges))
    elif kind == "drop":
        del parent[key]
    elif kind == "retype":
        parent[key] = draw(values)
    elif kind == "rescale":
        value, factor = parent[key], draw(factors)
        if isinstance(value, bool) or not isinstance(value, int | float):
            parent[key] = draw(values)
        elif isinstance(value, int) and float(factor).is_integer():
            parent[key] = value * int(factor)
        else:
            parent[key] = value * factor
    else:
        text = str(key)
        i = draw(st.integers(0, max(len(text) - 1, 0)))
        op = draw(st.sampled_from(["delete", "insert", "swap", "case"]))
        if op == "delete":
            new = text[:i] + text[i + 1:]
        elif op == "insert":
            new = text[:i] + draw(st.sampled_from("aeiouz_s")) + text[i:]
        elif op == "swap" and len(text) > 1:
            j = min(i + 1, len(text) - 1)
            new = text[:i] + text[j] + text[i] + text[j + 1:] if i != j else text[::-1]
        else:
            new = text.upper()
        if new and new not in parent:
            parent[new] = parent.pop(key)


@st.composite
def corrupted(draw, text):
    """The YAML text with a slice cut out, a character inserted, or a line doubled."""
    lines = text.splitlines(keepends=True)
    op = draw(st.sampled_from(["cut", "insert", "double", "dedent"]))
    i = draw(st.integers(0, len(text) - 1))
    if op == "cut":
        return text[:i] + text[i + draw(st.integers(1, 40)):]
    if op == "insert":
        return text[:i] + draw(st.sampled_from(list(":-[]{}&*!#'\"\t|>%@`") + ["\n  ", ": :"])) \
            + text[i:]
    n = draw(st.integers(0, len(lines) - 1))
    if op == "double":
        return "".join(lines[: n + 1] + lines[n:])
    return "".join(lines[:n] + [lines[n].lstrip()] + lines[n + 1:])


@st.composite
def scenarios(draw):
    doc = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        draw(mutation(doc))
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    if draw(st.integers(0, 3)) == 0:
        text = draw(corrupted(text))
    return text


def _check(res) -> None:
    assert res.exit_code in (0, 2), (res.output, res.exc_info)
    assert "Traceback" not in res.output, res.output
    if res.exit_code == 2:
        assert NAMES_KEY_OR_LINE.search(res.output), res.output


@settings(max_examples=EXAMPLES, deadline=None, derandomize=not EXPLORE,
          database=None if not EXPLORE else settings.default.database,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(text=scenarios(), run=st.integers(0, 3))
def test_mangled_scenarios_exit_0_or_2_and_name_the_key_or_line(text, run):
    runner = CliRunner()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mangled.yaml"
        path.write_text(text, encoding="utf-8")
        checked = runner.invoke(app, ["validate", str(path)])
        _check(checked)
        if checked.exit_code == 0 or run == 0:
            _check(runner.invoke(app, ["run", str(path), "--users", "60", "--quarters", "1",
                                       "--quiet", "--no-report", "--out", str(Path(tmp) / "run")]))


@pytest.mark.parametrize("override", PAST_FINDS)
def test_past_fuzz_finds_exit_0_or_2_and_name_the_key(override, tmp_path):
    runner = CliRunner()
    base = ROOT / "scenarios" / "baseline.yaml"
    checked = runner.invoke(app, ["validate", str(base), "--set", override])
    _check(checked)
    ran = runner.invoke(app, ["run", str(base), "--set", override, "--users", "60",
                              "--quarters", "1", "--quiet", "--no-report",
                              "--out", str(tmp_path / "run")])
    _check(ran)
    assert checked.exit_code == ran.exit_code, (checked.output, ran.output)
