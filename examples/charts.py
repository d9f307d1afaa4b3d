"""The report's charts from Python (or a Jupyter cell): run a scenario, draw, save or show.

    python examples/charts.py            # writes examples/out/*.png

In a notebook, leave out ``savefig``: a returned Figure is shown inline.
"""

from pathlib import Path

import sim
from sim.analysis import charts

ROOT = Path(__file__).resolve().parents[1]
scenario = sim.load(ROOT / "scenarios" / "baseline.yaml", {"population.users": 50000})
result = sim.run(scenario, seed=7)

figures = {
    "coverage": charts.coverage(result.monthly, target=scenario.reporting.target_coverage,
                                holidays=scenario.calendar.holidays),
    "funnel": charts.funnel(result.monthly),
    "access_archetype_region": charts.segment_heatmap(result.segments, "archetype", "region"),
    "access_version_device": charts.segment_heatmap(result.segments, "version", "device_grade"),
    "churn": charts.churn(result.monthly),
}

# Charts that need the credit model's columns (vintage curves, capital, net income) or a
# comparison of strategies (risk against reach) say what they miss instead of drawing.
for fn in (charts.capital, charts.net_income, charts.risk_reach):
    try:
        figures[fn.__name__] = fn(result.monthly)
    except charts.MissingData as why:
        print(f"{fn.__name__}: not drawn, {why}")

out = Path(__file__).parent / "out"
out.mkdir(exist_ok=True)
for name, fig in figures.items():
    fig.savefig(out / f"{name}.png", dpi=110)
    print(f"wrote {out / name}.png")
