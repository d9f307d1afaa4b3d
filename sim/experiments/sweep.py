"""Sweeps: run a scenario over a grid or a Latin hypercube of parameter values.

Every point runs the replication seeds spawned from its own seed, so points that share a seed
share their random numbers (common random numbers) and differences between them come from the
parameters; sweeping ``seed`` itself gives each point its own. Each finished point is written
as its own folder of a Parquet dataset (``points/point=NNNN/``, atomically), so an
interrupted sweep rerun with the same command skips the points already complete and never
duplicates a row; a rerun whose inputs differ (another
``--users``, ``--quarters``, design, greysim ...) is refused (:mod:`sim.experiments.resume`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sim.errors import GreysimError, OptionError
from sim.experiments.compare import COVERAGES, run_metrics
from sim.experiments.parameters import Parameter
from sim.experiments.resume import check_resume, key_digest, resume_key
from sim.experiments.runs import RunOutput, RunSpec, replicate, run_all
from sim.scenario import Scenario, ScenarioError, keys, load

#: Outputs whose sensitivity to the swept parameters is summarised.
OUTPUTS = ("invited_share_final", "visible_share_final", "quarters_to_target",
           "default_rate_12m", "loss_rate", "net_income")


class SweepError(GreysimError, ValueError):
    """A sweep design that cannot be built; ``str()`` is the message users see."""


@dataclass(frozen=True)
class Design:
    """The points of a sweep: one row per point, one column per scenario key."""

    points: pd.DataFrame
    kind: str  # "grid", "lhs" or "sobol"

    @property
    def keys(self) -> list[str]:
        """The scenario keys of the design (not the Sobol design's dummy parameter)."""
        return [c for c in self.points.columns if c not in ("point", "dummy")]

    def changes(self, point: int) -> dict[str, object]:
        """The point's values by key, for :meth:`Scenario.replace`."""
        row = self.points.iloc[point]
        # a level written as YAML text ("[4000]") is read as what it writes, like an override
        return {key: keys.parse_value(v) if isinstance(v, str) else keys.plain(v)
                for key, v in ((k, row[k]) for k in self.keys)}

    def digest(self) -> str:
        text = self.points.to_json(orient="split", double_precision=15)
        return hashlib.sha256(f"{self.kind}:{text}".encode()).hexdigest()[:16]


@dataclass(frozen=True, repr=False)
class Sweep:
    """A finished sweep: its design, per-run results and which parameters move which output.

    ``results`` has one row per run (point, replication, the point's parameter values and the
    run's figures); ``sensitivity`` one row per output and parameter (index, its interval,
    the noise floor, a verdict, Spearman correlation, rank among the influential);
    ``metrics`` the monthly table of every point, labelled by point as ``strategy``;
    ``variance`` per output the variance between points beside the variance between a
    point's replications; ``root`` the folder holding the points (rerunning the same sweep
    there resumes it).
    """

    design: Design
    results: pd.DataFrame
    sensitivity: pd.DataFrame
    metrics: pd.DataFrame
    root: Path
    reps: int
    target: float
    coverage: str
    variance: pd.DataFrame = field(default_factory=pd.DataFrame)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables of a sweep's summary folder, by file stem."""
        return {"results": self.results, "sensitivity": self.sensitivity,
                "comparison": self.sensitivity,  # shown as the report's table
                "metrics": self.metrics, "variance": self.variance}

    def __repr__(self) -> str:
        lines = [f"Sweep of {len(self.design.points)} points x {self.reps} replications "
                 f"({self.design.kind}) over {', '.join(self.design.keys)} in {self.root}"]
        if not self.sensitivity.empty:
            for output, rows in self.sensitivity.groupby("output", sort=False):
                lines.append(f"  {output}: {_headline(rows)}")
        return "\n".join(lines)


def _headline(rows: pd.DataFrame) -> str:
    """What moves an output most, with its interval; or why nothing is reported."""
    top = rows[rows["rank"] == 1] if "rank" in rows else rows.iloc[:0]
    if top.empty:
        verdicts = set(rows["verdict"])
        return next((v for v in ("no variation", "too few finite values", "too few points")
                     if v in verdicts), "no parameter distinguishable from noise")
    r = top.iloc[0]
    span = (f" [{r.first_order_low:.2f}, {r.first_order_high:.2f}]"
            if np.isfinite(r.get("first_order_low", np.nan)) else "")
    return f"moved most by {r.parameter} (first order {r.first_order:.2f}{span})"


def grid(specs: Sequence[str | Parameter]) -> Design:
    """A full factorial design over parameters' levels (or ``key=v1,v2,...`` strings)."""
    params = [p if isinstance(p, Parameter) else Parameter.parse_levels(p) for p in specs]
    axes = {p.key: list(p.levels) for p in params}
    rows = [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]
    points = pd.DataFrame(rows)
    points.insert(0, "point", range(len(points)))
    return Design(points, "grid")


def latin_hypercube(ranges: Sequence[str | Parameter], n: int, seed: int) -> Design:
    """``n`` points of a Latin hypercube over parameter ranges (or ``key=lo:hi`` strings),
    drawn with scipy.stats.qmc; integer keys take whole values."""
    from scipy.stats import qmc

    params = [p if isinstance(p, Parameter) else Parameter.parse_range(p) for p in ranges]
    if not params:
        raise ValueError("a Latin hypercube needs at least one range key=lo:hi")
    unit = qmc.LatinHypercube(d=len(params), rng=np.random.default_rng(seed)).random(n)
    values = qmc.scale(unit, [p.low for p in params], [p.high for p in params])
    points = pd.DataFrame({p.key: [p.value(x) for x in values[:, i]]
                           for i, p in enumerate(params)})
    points.insert(0, "point", range(n))
    return Design(points, "lhs")


def sobol_design(ranges: Sequence[str | Parameter], n: int, seed: int) -> Design:
    """Saltelli's sample for Sobol indices over parameter ranges (``key=lo:hi``): ``n`` base
    samples (a power of two, at least 16) times ``d + 3`` points, with a ``dummy`` column
    that enters no run (the noise floor of the indices)."""
    from sim.analysis.sensitivity import sobol_sample

    params = [p if isinstance(p, Parameter) else Parameter.parse_range(p) for p in ranges]
    if not params:
        raise ValueError("a Sobol design needs at least one range key=lo:hi")
    unit = sobol_sample([p.key for p in params], [(p.low, p.high) for p in params], n, seed)
    points = pd.DataFrame({p.key: [p.value(x) for x in unit[p.key]] for p in params})
    points["dummy"] = unit["dummy"].to_numpy()
    points.insert(0, "point", range(len(points)))
    return Design(points, "sobol")


def check_points(design: Design) -> None:
    """Fail before any run when the design has too few points for its sensitivity method."""
    from sim.analysis.sensitivity import min_points

    if design.kind == "lhs" and len(design.points) < min_points("rbd_fast"):
        raise SweepError(f"a Latin hypercube sweep needs at least {min_points('rbd_fast')} "
                         f"points for its sensitivity indices (RBD-FAST); got "
                         f"{len(design.points)}: ask for --sample lhs:{min_points('rbd_fast')} "
                         "or more")


def point_scenarios(path: Path, design: Design,
                    overrides: Mapping[str, object] | Sequence[str] = ()) -> list[Scenario]:
    """The scenario of every point, validated up front so a bad value fails before any run."""
    base = load(path, overrides)
    scenarios = []
    for point in range(len(design.points)):
        try:
            scenarios.append(base.replace(design.changes(point)))
        except ScenarioError as exc:
            raise ScenarioError(str(path), exc.path,
                                f"{exc.problem} (sweep point {point})", exc.line) from None
    return scenarios


def _point_dir(root: Path, point: int) -> Path:
    return root / "points" / f"point={point:04d}"


def completed_points(root: Path) -> set[int]:
    """Points whose folder is complete (folders appear only by an atomic rename)."""
    base = root / "points"
    if not base.is_dir():
        return set()
    return {int(p.name.split("=")[1]) for p in base.iterdir()
            if p.is_dir() and p.name.startswith("point=")}


def _write_point(root: Path, point: int, outputs: list[RunOutput], design: Design,
                 target: float, coverage: str) -> None:
    from sim.io.folders import write_folder

    row = design.points.iloc[point].to_dict()
    metrics = pd.concat([o.tables["metrics"] for o in outputs], ignore_index=True)
    per_run = pd.DataFrame([{**row, **o.labels,
                             **_final(run_metrics(o.tables["metrics"], target, coverage))}
                            for o in outputs])
    write_folder(_point_dir(root, point), tables={"metrics": metrics, "runs": per_run},
                 kind="sweep-point")


def _final(metrics: dict) -> dict:
    """Per-run metrics plus the horizon's coverage under a fixed name."""
    inv = [k for k in metrics if k.startswith("invited_share_q")]
    vis = [k for k in metrics if k.startswith("visible_share_q")]
    return {**metrics, "invited_share_final": metrics[inv[-1]],
            "visible_share_final": metrics[vis[-1]]}


def run_sweep(path: Path, design: Design, root: Path, *, reps: int = 1,
              quarters: int | None = None, overrides: Mapping[str, object] | Sequence[str] = (),
              target: float = 0.3,
              coverage: str = "invited", executor=None,
              progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """Run every point not yet complete under ``root`` and return the per-run results."""
    from sim.io.folders import claim_folder

    check_points(design)
    scenarios = point_scenarios(path, design, overrides)
    claim_folder(root, "sweep")
    check_resume(root, sweep_key(load(path, overrides), design, reps, quarters, target,
                                 coverage), "sweep")
    _check_design(root, design)
    done = completed_points(root)
    todo = [p for p in range(len(scenarios)) if p not in done]
    # each point replicates from its own seed: points that differ only in other keys share
    # their random numbers, and a swept seed gives each point its own
    specs = [RunSpec(replica, quarters, {"point": p, "replication": r})
             for p in todo for r, replica in enumerate(replicate(scenarios[p], reps))]
    pending: dict[int, dict[int, RunOutput]] = {}

    def collect(_: int, output: RunOutput) -> None:
        point = output.labels["point"]
        pending.setdefault(point, {})[output.labels["replication"]] = output
        if len(pending[point]) == reps:
            finished = pending.pop(point)
            runs = [finished[r] for r in range(reps)]
            _write_point(root, point, runs, design, target, coverage)

    if specs:
        run_all(specs, executor, progress, on_result=collect)
    return load_results(root)


def design_of(grid_specs: Sequence[str] | None = None, ranges: Sequence[str] | None = None,
              samples: int | None = None, seed: int = 0, method: str = "lhs") -> Design:
    """A full factorial over ``key=v1,v2,...`` strings, or ``samples`` points over
    ``key=lo:hi`` ranges (a Latin hypercube, or with ``method="sobol"`` Saltelli's sample of
    ``samples`` base samples); :class:`SweepError` when neither or both are asked."""
    if bool(grid_specs) == bool(samples):
        raise SweepError("give either a grid (key=v1,v2,...) or a number of samples with "
                         "ranges (key=lo:hi)")
    try:
        if grid_specs:
            return grid(grid_specs)
        if method == "sobol":
            return sobol_design(ranges or [], samples, seed)
        return latin_hypercube(ranges or [], samples, seed)
    except SweepError:
        raise
    except ValueError as exc:  # the design parsers say which spec is malformed
        raise SweepError(str(exc)) from None


def sweep_root(base: Scenario, design: Design, reps: int, quarters: int | None,
               target: float, coverage: str) -> Path:
    """The default folder of a sweep: named by everything that shapes it, so the same sweep
    run again finds its finished points and resumes."""
    from sim.io.folders import scenario_folder

    key = sweep_key(base, design, reps, quarters, target, coverage)
    return scenario_folder(base.name) / f"sweep-{key_digest(key)}"


def sweep_key(base: Scenario, design: Design, reps: int, quarters: int | None,
              target: float, coverage: str) -> dict[str, str]:
    """Every input that changes a sweep's results (:func:`~sim.experiments.resume.resume_key`):
    a folder resumes only the sweep that has the same key."""
    return resume_key(base, quarters=quarters, reps=reps, design=design.digest(),
                      target=target, coverage=coverage)


def sweep(scenario: str | Path, design: Design | None = None, *,
          grid: Sequence[str] | None = None, ranges: Sequence[str] | None = None,
          samples: int | None = None, root: str | Path | None = None, reps: int = 1,
          quarters: int | None = None,
          overrides: Mapping[str, object] | Sequence[str] = (), target: float = 0.3,
          coverage: str = "invited", executor=None,
          progress: Callable[[int, int], None] | None = None) -> Sweep:
    """Run the scenario file at every point of ``design`` (or of ``grid``, or of ``samples``
    Latin hypercube points over ``ranges``), ``reps`` times each on common random numbers,
    keeping finished points under ``root`` so an interrupted sweep resumes."""
    if coverage not in COVERAGES:
        raise OptionError(f"coverage must be 'invited' or 'visible', got '{coverage}'")
    if design is None or root is None:
        base = load(scenario, overrides)
        design = design or design_of(grid, ranges, samples, base.seed)
        root = root or sweep_root(base, design, reps, quarters, target, coverage)
    root = Path(root)
    results = run_sweep(Path(scenario), design, root, reps=reps, quarters=quarters,
                        overrides=overrides, target=target, coverage=coverage,
                        executor=executor, progress=progress)
    return Sweep(design=design, results=results, sensitivity=sensitivity(results, design),
                 metrics=load_metrics(root, design), root=root, reps=reps, target=target,
                 coverage=coverage, variance=variance(results))


def _check_design(root: Path, design: Design) -> None:
    """Write the design once; a rerun must ask for the same design to resume (the other
    inputs are checked by the resume key, :mod:`sim.experiments.resume`)."""
    from sim.io.folders import OutputError, write_folder

    marker = root / "design" / "design.json"
    info = {"kind": design.kind, "digest": design.digest(), "keys": design.keys}
    if marker.exists():
        if json.loads(marker.read_text())["digest"] != info["digest"]:
            raise OutputError(f"{root} holds a sweep with another design; choose another --out "
                              "or pass --force to start it again")
        return
    write_folder(root / "design", tables={"points": design.points}, jsons={"design": info},
                 kind="sweep-design")


def load_results(root: Path) -> pd.DataFrame:
    """Every completed point's per-run results, in point and replication order."""
    frames = [pd.read_parquet(_point_dir(root, p) / "runs.parquet")
              for p in sorted(completed_points(root))]
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True).sort_values(
        ["point", "replication"], kind="stable").reset_index(drop=True)


def point_label(design: Design, point: int) -> str:
    """A readable name of a point: its parameter values."""
    row = design.points.iloc[point]
    values = ", ".join(f"{key.rsplit('.', 1)[-1]}={_short(row[key])}" for key in design.keys)
    return f"point {point}: {values}"


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float | np.floating) else str(value)


def load_metrics(root: Path, design: Design) -> pd.DataFrame:
    """Every completed point's monthly table, labelled by point as a ``strategy`` column so
    the comparison charts (coverage, risk against reach) draw one series per point."""
    frames = []
    for p in sorted(completed_points(root)):
        m = pd.read_parquet(_point_dir(root, p) / "metrics.parquet")
        m.insert(0, "strategy", point_label(design, p))
        frames.append(m)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def sensitivity(results: pd.DataFrame, design: Design) -> pd.DataFrame:
    """Which parameters move which outputs, and which only seem to
    (:mod:`sim.analysis.sensitivity`).

    Grid designs: the main-effect share of variance against a permutation noise floor; Latin
    hypercube designs: RBD-FAST first-order indices with bootstrap intervals against an
    independent dummy parameter; Sobol designs: first-order and total Sobol indices with
    bootstrap intervals against the design's dummy parameter. An output that does not vary is
    "no variation", an index within the noise "not distinguishable from noise". The Spearman
    rank correlation gives the sign of a monotone effect. Indices read the mean over each
    point's replications (see :func:`variance` for the noise between replications).
    """
    from sim.analysis import sensitivity as sa

    outputs = [o for o in OUTPUTS if o in results]
    if results.empty or not outputs:
        return pd.DataFrame()
    means = results.groupby("point")[outputs].mean().replace([np.inf, -np.inf], np.nan)
    params = design.points.set_index("point").loc[means.index]
    numeric = [k for k in design.keys if pd.api.types.is_numeric_dtype(params[k])]
    if design.kind == "sobol":
        table = sa.sobol(params[[*design.keys, sa.DUMMY]].astype(float), means)
    elif design.kind == "lhs":
        table = sa.rbd_fast(params[numeric].astype(float), means)
    elif len(means) < sa.min_points("grid"):
        return pd.DataFrame([{"output": o, "parameter": k, "verdict": "too few points"}
                             for o in outputs for k in design.keys])
    else:
        table = sa.main_effects(params[design.keys], means)
    spearman = []
    for r in table.itertuples():
        x = params[r.parameter] if r.parameter in numeric else None
        y = means[r.output]
        ok = y.notna()
        if x is None or r.verdict in ("no variation", "too few finite values") or ok.sum() < 3:
            spearman.append(np.nan)
            continue
        spearman.append(float(pd.Series(x[ok].to_numpy(dtype=float)).corr(
            pd.Series(y[ok].to_numpy(dtype=float)), method="spearman")))
    table["spearman"] = spearman
    return table


def variance(results: pd.DataFrame) -> pd.DataFrame:
    """Per output: the variance between points beside the variance between a point's
    replications (simulation noise)."""
    from sim.analysis.sensitivity import replication_variance

    if results.empty:
        return pd.DataFrame()
    return replication_variance(results, [o for o in OUTPUTS if o in results])
