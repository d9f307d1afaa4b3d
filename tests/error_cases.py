"""Every kind of bad input, with what its message must name: the cases of test_errors.py.

The table of error messages in ``docs/errors.md`` is generated from these cases, so it cannot
drift: ``python tests/error_cases.py`` rewrites it, and ``test_readme_error_table_is_current``
fails when it is stale.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "scenarios/baseline.yaml"
DOC = ROOT / "docs" / "errors.md"  # the page that holds the table between the markers
BEGIN, END = "<!-- error-table: begin -->", "<!-- error-table: end -->"
CHILD = f"extends: {BASELINE}\n"  # a child of the baseline: its line 1


@dataclass(frozen=True)
class Case:
    """``greysim ARGS`` run in a folder holding ``files``; the message must name ``key``,
    ``line`` (as ``file:line``) and each of ``words``."""

    kind: str
    args: tuple[str, ...]
    files: dict[str, str] = field(default_factory=dict)
    key: str = ""
    line: str = ""
    words: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


def _child(body: str) -> dict[str, str]:
    return {"child.yaml": CHILD + body}


V = ("validate", "child.yaml")
SMALL = ("--users", "200", "--quarters", "1", "--quiet", "--out", "run")

CASES = [
    Case("YAML syntax error", ("validate", "broken.yaml"),
         {"broken.yaml": "name: x\npopulation:\n  users: [1, 2\nseed: 3\n"},
         line="broken.yaml:4", words=("not valid YAML",)),
    Case("YAML tag that would build an object", ("validate", "evil.yaml"),
         {"evil.yaml": "name: !!python/object/apply:os.system ['echo hi']\n"},
         line="evil.yaml:1", words=("could not determine a constructor",)),
    Case("duplicate key", V, _child("population:\n  users: 3\n  users: 4\n"),
         key="population.users", line="child.yaml:4", words=("appears twice", "lines 3 and 4")),
    Case("YAML alias bomb", ("validate", "bomb.yaml"),
         {"bomb.yaml": "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
             f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n"
             for p, c in zip("abcdefgh", "bcdefghi", strict=True))},
         line="bomb.yaml:", words=("more than 100,000 values",)),
    Case("YAML merge-key bomb", ("validate", "merge.yaml"),
         {"merge.yaml": "m0: &m0 {a: 1}\n" + "".join(
             f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 10)}]}}\n" for i in range(1, 7))},
         line="merge.yaml:1", words=("more than 100,000 values", "merge keys")),
    Case("keys YAML reads as one (1 and 0x1)", V, _child(
        "credit:\n  activation:\n    1: 0.5\n    0x1: 0.6\n"),
         key="credit.activation.0x1", line="child.yaml:5",
         words=("appears twice", "lines 4 and 5", "as YAML reads them")),
    Case("integer too long", V, _child("seed: " + "9" * 40 + "\n"),
         key="seed", line="child.yaml:2", words=("40 digits", "at most 30 digits")),
    Case("not a mapping", ("validate", "list.yaml"), {"list.yaml": "- 1\n- 2\n"},
         line="list.yaml:1", words=("a mapping of keys, got a list",)),
    Case("unknown (misspelt) key", V, _child("population:\n  userz: 5\n"),
         key="population.userz", line="child.yaml:3", words=("did you mean 'users'?",)),
    Case("misspelt key in a list item", V, _child(
        "rollout:\n  phases:\n    - name: p\n      start: 2025-01-01\n"
        "      bacth: {share: 0.1}\n"),
         key="rollout.phases.0.bacth", line="child.yaml:6", words=("did you mean 'batch'?",)),
    Case("missing key", ("validate", "bare.yaml"), {"bare.yaml": "name: x\n"},
         key="start", words=("required but missing",)),
    Case("wrong type", V, _child("quarters: many\n"),
         key="quarters", line="child.yaml:2", words=("valid integer", '"many"')),
    Case("wrong type of section", V, _child("population: 3\n"),
         key="population", line="child.yaml:2", words=("mapping of keys", "got 3")),
    Case("out-of-range number", V, _child("population:\n  past_default: 1.5\n"),
         key="population.past_default", line="child.yaml:3",
         words=("less than or equal to 1", "1.5")),
    Case("negative count", V, _child("population:\n  users: -3\n"),
         key="population.users", line="child.yaml:3", words=("greater than 0", "-3")),
    Case("not a finite number", V, _child("population:\n  weight: .inf\n"),
         key="population.weight", line="child.yaml:3", words=("finite number",)),
    Case("shares not summing to 1", V, _child("population:\n  device_grades:\n"
                                               "    A: {share: 0.5}\n"),
         key="population.device_grades", line="child.yaml:3",
         words=("sum to 1", "got 1.16", "A=0.5")),
    Case("bad date", V, _child("start: 2025-13-01\n"),
         key="start", line="child.yaml:2", words=("valid date", "2025-13-01")),
    Case("start not on the 1st", V, _child("start: 2025-01-15\n"),
         key="start", line="child.yaml:2", words=("first day of a month",)),
    Case("phase after the horizon", V, _child("quarters: 1\n"),
         key="rollout.phases.1.start", line=f"{BASELINE}:", words=(
             "extended by child.yaml", "2025-07-01", "outside the horizon")),
    Case("no client released by the start", V, _child("start: 2018-01-01\n"),
         key="release.versions", line=f"{BASELINE}:", words=("released by the start",)),
    Case("release after the start with a starting share", V + (
        "--set", "release.versions.4.share=0.1"), _child(""),
         key="release.versions", words=("after the start cannot have a starting share",)),
    Case("phase needs a client released after it ends", V, _child(
        "rollout:\n  phases:\n    - {name: early, start: 2025-01-01, batch: {share: 0.1}, "
        "min_version: 8.0.60}\n    - {name: late, start: 2025-06-01, batch: {share: 0.1}}\n"),
         key="rollout.phases.0.min_version", line="child.yaml:4",
         words=("released only on 2026-05-01", "reaches no one")),
    Case("phases out of order", V, _child(
        "rollout:\n  phases:\n    - {name: b, start: 2025-06-01, batch: {share: 0.1}}\n"
        "    - {name: a, start: 2025-01-01, batch: {share: 0.1}}\n"),
         key="rollout.phases", line="child.yaml:3", words=("in order of 'start'",)),
    Case("window ends before it starts", V, _child(
        "calendar:\n  holidays:\n    - {name: h, start: 2025-05-05, end: 2025-05-01}\n"),
         key="calendar.holidays.0", line="child.yaml:4", words=("ends (2025-05-01) before",)),
    Case("horizon longer than a century", V, _child("quarters: 40000\n"),
         key="quarters", line="child.yaml:2", words=("less than or equal to 400", "40000")),
    Case("batch larger than the population", V, _child(
        "rollout:\n  phases:\n    - {name: a, start: 2025-01-01, batch: {count: 2.0e9}}\n"),
         key="rollout.phases.0.batch.count", line="child.yaml:4",
         words=("larger than the population", "1e+09")),
    Case("unknown reference", V, _child(
        "rollout:\n  phases:\n    - {name: a, start: 2025-01-01, batch: {share: 0.1}, "
        "regions: [mars]}\n"),
         key="rollout.phases.0.regions", line="child.yaml:4",
         words=("unknown region 'mars'", "allowed: ['closed_province'")),
    Case("phase neither batch nor ramp", V, _child(
        "rollout:\n  phases:\n    - {name: a, start: 2025-01-01}\n"),
         key="rollout.phases.0", line="child.yaml:4",
         words=("exactly one of 'batch' or 'ramp'",)),
    Case("extends loop", ("validate", "a.yaml"),
         {"a.yaml": "extends: b.yaml\n", "b.yaml": "extends: a.yaml\n"},
         key="extends", line="b.yaml:1", words=("loops",)),
    Case("extends a missing file", ("validate", "c.yaml"), {"c.yaml": "extends: nowhere.yaml\n"},
         key="extends", line="c.yaml:1", words=("'nowhere.yaml' does not exist",)),
    Case("--set key that does not exist", ("validate", BASELINE, "--set", "scoring.cutof=3"),
         key="scoring.cutof", words=("does not exist", "did you mean 'cutoff'?")),
    Case("--set list item that does not exist",
         ("validate", BASELINE, "--set", "rollout.phases.7.batch.share=0.1"),
         key="rollout.phases.7", words=("no list item 7", "3 items")),
    Case("--set value out of range", ("validate", BASELINE, "--set", "population.users=-1"),
         key="population.users", words=("set on the command line", "greater than 0")),
    Case("count stored in int8 (device switches)",
         V + ("--set", "behaviour.device_switch_rate=200"), _child(""),
         key="behaviour.device_switch_rate", words=("less than or equal to 30", "200")),
    Case("share too small to simulate", V + (
        "--set", "population.archetypes.stable_salaried.class_iii=1e-17"), _child(""),
         key="population.archetypes.stable_salaried.class_iii",
         words=("too small to simulate", "1e-12 to 1")),
    Case("days past any date (limit freeze)",
         V + ("--set", f"credit.limits.freeze_days={2**63}"), _child(""),
         key="credit.limits.freeze_days", words=("less than or equal to 36525",)),
    Case("months past any horizon (instalments)",
         V + ("--set", f"credit.repayment.instalment_months={2**63}"), _child(""),
         key="credit.repayment.instalment_months", words=("less than or equal to 1200",)),
    Case("days past any date (R1 hiding)", V + ("--set", f"fraud.r1_hidden_days={2**63}"),
         _child(""), key="fraud.r1_hidden_days", words=("less than or equal to 36525",)),
    Case("rate far too high (device switches)",
         V + ("--set", "behaviour.device_switch_rate=1e308"), _child(""),
         key="behaviour.device_switch_rate", words=("less than or equal to 30",)),
    Case("rate far too high (funding)", V + ("--set", "credit.loss.funding_rate=1e308"),
         _child(""), key="credit.loss.funding_rate", words=("less than or equal to 1",)),
    Case("amount far too large (equity)", V + ("--set", "capital.equity=1e308"), _child(""),
         key="capital.equity", words=("less than or equal to 1000000000000000",)),
    Case("too many band edges (int8 codes)", V, _child(
        "reporting:\n  bands:\n    income: [" + ", ".join(map(str, range(1, 131))) + "]\n"),
         key="reporting.bands", line="child.yaml:3", words=("130 band edges", "at most 126")),
    Case("--quarters beyond the horizon", ("run", BASELINE, "--quarters", "40", "--quiet"),
         key="quarters", words=("longer than the scenario's horizon",)),
    Case("population too large for memory", ("run", BASELINE, "--users", "100000000", "--quiet"),
         key="population.users", words=("need about", "only 8.0 GB is available"),
         env={"GREYSIM_MEMORY_LIMIT": "8G"}),
    Case("memory limit that is not a size", ("run", BASELINE, "--quiet"),
         words=("GREYSIM_MEMORY_LIMIT='.'", "e.g. 8G"), env={"GREYSIM_MEMORY_LIMIT": "."}),
    Case("replications that cannot fit in memory",
         ("compare", BASELINE, "scenarios/other.yaml", "--reps", "1000000", "--users", "1000",
          "--workers", "1", "--quiet"),
         files={"scenarios/other.yaml": "extends: baseline.yaml\nrollout: {name: other}\n"},
         words=("2,000,000 runs", "stay in memory", "only 8.0 GB is available",
                "--reps"), env={"GREYSIM_MEMORY_LIMIT": "8G"}),
    Case("numeric overflow in a run", ("run", BASELINE, "--set", "behaviour.drift_sd=60",
                                       *SMALL),
         key="behaviour.drift_sd", words=("month 3", "process 'behaviour'", "not finite")),
    Case("probability leaving [0, 1]", ("run", BASELINE, "--set", "risk.monthly_hazard=0.6",
                                        *SMALL),
         key="risk.dispersion", words=("process 'risk'", "left [0, 1]", "not clipped")),
    Case("--out folder holding other files", ("run", BASELINE, *SMALL[:-1], "busy"),
         {"busy/notes.txt": "mine"}, words=("busy holds files that greysim did not write",
                                            "choose another --out")),
    Case("a behaviour target in a month without a re-scoring",
         ("calibrate", BASELINE, "--targets", "t.yaml", "--users", "200", "--check"),
         {"t.yaml": "targets:\n  - {name: pay, table: users, month: 4, "
                    "statistic: payments_per_month / users, value: 28, tolerance: 4}\n"},
         key="targets.0.month", words=("t.yaml", "month 4", "multiple of 3")),
    Case("a behaviour target that another targets file moves off the run's last month",
         ("calibrate", "child.yaml", "--targets", "a.yaml", "--targets", "b.yaml", "--users",
          "200", "--check"),
         {**_child("reevaluation: {every_months: 6}\n"),
          "a.yaml": "targets:\n  - {name: pay, table: users, month: 9, "
                    "statistic: payments_per_month / users, value: 28, tolerance: 4}\n",
          "b.yaml": "targets:\n  - {name: pay12, table: users, month: 12, "
                    "statistic: payments_per_month / users, value: 28, tolerance: 4}\n"},
         key="targets.0.month", words=("a.yaml", "month 9", "multiple of 6 or 12")),
    Case("--check on a folder that is not a run", ("run", "--check", "busy"),
         {"busy/notes.txt": "mine"}, words=("not a greysim run folder",)),
]


def message(case: Case, folder: Path) -> tuple[int, str]:
    """Run the case's command in ``folder``; its exit code and its message, paths relative."""
    from sim.cli.app import app

    for name, text in case.files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    (folder / "scenarios").mkdir(exist_ok=True)
    (folder / BASELINE).write_text((ROOT / BASELINE).read_text())
    old = Path.cwd()
    os.chdir(folder)
    try:
        res = CliRunner().invoke(app, list(case.args), env=case.env)
    finally:
        os.chdir(old)
    text = " ".join(res.output.split()).removeprefix("error: ")
    text = text.replace(str(ROOT) + "/", "").replace(str(folder) + "/", "")
    return res.exit_code, re.sub(r"(Allowed here: [^.]{60})[^.]*\.", r"\1 ...", text)


def table() -> str:
    """The error table: one row per case, with the message greysim prints for it."""
    rows = ["| bad input | example | message (exit code 2) |", "|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for i, case in enumerate(CASES):
            folder = Path(tmp) / str(i)
            folder.mkdir()
            _, text = message(case, folder)
            example = "greysim " + " ".join(case.args)
            if case.files:
                example += " with " + "; ".join(
                    f"{k}: {v.strip()}" for k, v in case.files.items())
            rows.append(f"| {case.kind} | `{_cell(example)}` | {_cell(text)} |")
    return "\n".join(rows)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ↵ ")


def readme_table() -> str:
    """The table as written in ``docs/errors.md`` (the name predates the docs folder)."""
    text = DOC.read_text()
    return text[text.index(BEGIN) + len(BEGIN):text.index(END)].strip()


def write_readme() -> None:
    """Rewrite the table in ``docs/errors.md``."""
    text = DOC.read_text()
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    DOC.write_text(f"{head}{BEGIN}\n{table()}\n{END}{tail}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    write_readme()
    print(f"wrote the error table in {DOC}")
