"""The report's charts from Python (or a Jupyter cell): run a scenario, draw, save or show.

    python examples/charts.py            # writes examples/out/*.png

In a notebook, leave out ``savefig``: a returned Figure is shown inline. For a comparison of
strategies see ``examples/planning.py``.
"""

from pathlib import Path

import sim
from sim.analysis import charts

ROOT = Path(__file__).resolve().parents[1]
# 50k simulated users standing for the baseline's billion (the weight scales), as --users does
scenario = sim.load(ROOT / "scenarios" / "baseline.yaml", users=50000)
result = sim.run(scenario)
target = scenario.reporting.target_coverage

figures = {
    "coverage": charts.coverage(result.monthly, target=target,
                                holidays=scenario.calendar.holidays),
    "access_archetype_region": charts.segment_heatmap(result.segments, "archetype", "region"),
    "visibility_version": charts.visibility_by_version(result.segments),
    "funnel": charts.funnel(result.monthly),
    "churn": charts.churn(result.monthly),
    "batch_default": charts.batch_default(result.vintages, result.batches),
    "vintages": charts.vintage_curves(result.vintages, result.batches),
    "net_income": charts.net_income(result.monthly),
    "capital": charts.capital(result.monthly),
}

out = Path(__file__).parent / "out"
out.mkdir(exist_ok=True)
for name, fig in figures.items():
    fig.savefig(out / f"{name}.png", dpi=100)
    print(f"wrote {out / name}.png")
