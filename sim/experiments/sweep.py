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
from dataclasses import dataclass
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
    kind: str  # "grid" or "lhs"

    @property
    def keys(self) -> list[str]:
        return [c for c in self.points.columns if c != "point"]

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
    run's figures); ``sensitivity`` one row per output and parameter (first-order share of
    variance, Spearman correlation, rank); ``metrics`` the monthly table of every point,
    labelled by point as ``strategy``; ``root`` the folder holding the points (rerunning the
    same sweep there resumes it).
    """

    design: Design
    results: pd.DataFrame
    sensitivity: pd.DataFrame
    metrics: pd.DataFrame
    root: Path
    reps: int
    target: float
    coverage: str

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables of a sweep's summary folder, by file stem."""
        return {"results": self.results, "sensitivity": self.sensitivity,
                "comparison": self.sensitivity,  # shown as the report's table
                "metrics": self.metrics}

    def __repr__(self) -> str:
        lines = [f"Sweep of {len(self.design.points)} points x {self.reps} replications "
                 f"({self.design.kind}) over {', '.join(self.design.keys)} in {self.root}"]
        if not self.sensitivity.empty:
            top = self.sensitivity[self.sensitivity["rank"] == 1]
            for r in top.head(6).itertuples():
                share = "" if np.isnan(r.first_order) else f" (first order {r.first_order:.2f})"
                lines.append(f"  {r.output}: moved most by {r.parameter}{share}")
        return "\n".join(lines)


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
              samples: int | None = None, seed: int = 0) -> Design:
    """A full factorial over ``key=v1,v2,...`` strings, or a Latin hypercube of ``samples``
    points over ``key=lo:hi`` ranges; :class:`SweepError` when neither or both are asked."""
    if bool(grid_specs) == bool(samples):
        raise SweepError("give either a grid (key=v1,v2,...) or a number of samples with "
                         "ranges (key=lo:hi)")
    try:
        return grid(grid_specs) if grid_specs else latin_hypercube(ranges or [], samples, seed)
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
                 coverage=coverage)


def _check_design(root: Path, design: Design) -> None:
    """Write the design once; a rerun must ask for the same design to resume."""
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
    """Which parameters move which outputs most.

    Grid designs: the first-order (main-effect) share of variance, the variance of the
    output's mean at each level of a parameter over the output's variance. Latin hypercube
    designs: SALib's RBD-FAST first-order index. For both, the Spearman rank correlation gives
    the sign and strength of a monotone effect.
    """
    rows = []
    outputs = [o for o in OUTPUTS if o in results]
    means = results.groupby("point")[outputs].mean().replace([np.inf, -np.inf], np.nan)
    params = design.points.set_index("point").loc[means.index, design.keys]
    numeric = [k for k in design.keys if pd.api.types.is_numeric_dtype(params[k])]
    for output in outputs:
        y = means[output].to_numpy(dtype=float)
        finite = np.isfinite(y)
        if finite.sum() < 3 or np.var(y[finite]) == 0:
            continue
        extra = {}
        if design.kind == "lhs":
            extra = _rbd_fast(numeric, params.loc[finite, numeric].to_numpy(dtype=float),
                              y[finite])
        for key in design.keys:
            x = params[key][finite]
            row = {"output": output, "parameter": key, "spearman": float("nan")}
            if key in numeric:
                row["spearman"] = float(pd.Series(x.to_numpy(dtype=float)).corr(
                    pd.Series(y[finite]), method="spearman"))
            if design.kind == "grid":
                level_means = pd.Series(y[finite]).groupby(x.astype(str).to_numpy()).mean()
                row["first_order"] = float(level_means.var(ddof=0) / y[finite].var(ddof=0))
            else:
                row["first_order"] = float(extra["first_order"][numeric.index(key)])
            rows.append(row)
    table = pd.DataFrame(rows)
    if not table.empty:
        table["rank"] = table.groupby("output")["first_order"].rank(ascending=False,
                                                                    method="first")
    return table


def _rbd_fast(keys: list[str], X: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """SALib's RBD-FAST first-order indices from a Latin hypercube sample.

    RBD-FAST needs more points than twice its number of harmonics; with fewer the indices
    are left undefined (NaN) and the rank correlation is all the summary has.
    """
    from SALib.analyze import rbd_fast

    harmonics = 4
    if len(y) <= 2 * harmonics + 1:
        return {"first_order": np.full(len(keys), np.nan)}
    problem = {"num_vars": len(keys), "names": keys,
               "bounds": [[float(X[:, i].min()), float(X[:, i].max()) + 1e-12]
                          for i in range(len(keys))]}
    result = rbd_fast.analyze(problem, X, y, M=harmonics, num_resamples=50, seed=1,
                              print_to_console=False)
    return {"first_order": np.clip(np.asarray(result["S1"], dtype=float), 0.0, 1.0)}
