# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Planning a grey release with greysim
#
# A notebook-style walk through the planner's four questions: load a strategy, derive
# variants with `Scenario.replace`, compare them on common random numbers with `sim.compare`,
# and draw the charts that answer "how fast" and "at what risk". Open it in Jupyter with
# Jupytext, or run it as a script (`python examples/planning.py`; it saves the charts to
# `examples/out/`). `GREYSIM_EXAMPLE_USERS`, `GREYSIM_EXAMPLE_REPS` and
# `GREYSIM_EXAMPLE_QUARTERS` make it smaller (the test suite runs it at a few thousand users).

# %%
import os
from pathlib import Path

import sim
from sim.analysis import charts

HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
SCENARIOS = HERE.parent / "scenarios"
USERS = int(os.environ.get("GREYSIM_EXAMPLE_USERS", "50000"))  # standing for the same billion
REPS = int(os.environ.get("GREYSIM_EXAMPLE_REPS", "4"))
QUARTERS = int(os.environ.get("GREYSIM_EXAMPLE_QUARTERS", "0")) or None  # None: the horizon
TARGET, BUDGET = 0.30, 0.025  # 30% invited coverage; 2.5% 12-month default rate

# %% [markdown]
# ## 1. Load a strategy
# `users=` simulates that many users standing for the scenario's real population (the weight
# scales), exactly like `greysim run --users`.

# %%
tier_first = sim.load(SCENARIOS / "tier-first.yaml", users=USERS)
print(tier_first.rollout.name, [p.name for p in tier_first.rollout.phases])

# %% [markdown]
# ## 2. Derive variants
# `Scenario.replace` takes the scenario file's dotted keys (list items by index) and returns a
# new, validated scenario; a bad key or value raises an error naming it.

# %%
wider = tier_first.replace({"name": "tier-first-wider", "rollout.name": "tier-first-wider",
                            "rollout.phases.0.batch.share": 0.08,
                            "rollout.phases.1.batch.share": 0.08})
holiday = tier_first.replace({"name": "tier-first-holidays", "rollout.name": "holiday-x3",
                              **{f"rollout.phases.{i}.holiday_multiplier": 3.0
                                 for i in range(len(tier_first.rollout.phases))}})

# %% [markdown]
# ## 3. Compare them
# Every strategy runs `REPS` times; replication r of each uses the same seed, so differences
# measure the strategy, not the noise. The verdict names the strategy that reaches the target
# soonest within the default budget.

# %%
comparison = sim.compare([tier_first, wider, holiday], reps=REPS, target=TARGET,
                         max_default_rate=BUDGET, quarters=QUARTERS)
print(comparison.verdict)
headline = comparison.summary[comparison.summary.metric.isin(
    ["quarters_to_target", "default_rate_12m", "loss_rate"])]
print(headline[["strategy", "metric", "mean", "ci_low", "ci_high", "diff"]].to_string())

# %% [markdown]
# ## 4. How fast, at what risk
# Coverage per month with the month each strategy reaches the target, then months to target
# against the 12-month default rate with the budget line.

# %%
growth = charts.coverage(comparison.metrics, target=TARGET,
                         holidays=tier_first.calendar.holidays)
speed = charts.speed_risk(comparison.metrics, target=TARGET, budget=BUDGET)

# %%
if __name__ == "__main__":  # as a script: save the charts (a notebook shows them inline)
    out = Path(os.environ.get("GREYSIM_EXAMPLE_OUT", HERE / "out"))
    out.mkdir(parents=True, exist_ok=True)
    for name, fig in (("coverage", growth), ("speed_risk", speed)):
        fig.savefig(out / f"{name}.png", dpi=100)
        print(f"wrote {out / name}.png")
