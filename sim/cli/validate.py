"""``greysim validate``: check a scenario file without running it (pydantic and yaml only)."""

from __future__ import annotations

from sim.cli.options import ScenarioArg, SetOpt, load_scenario, out


def validate_command(scenario: ScenarioArg, set_: SetOpt = None) -> None:
    """Check a scenario file without running it."""
    sc = load_scenario(scenario, set_ or [])
    real = sc.population.users * sc.population.weight
    out.print(f"{scenario}: valid. '{sc.name}', {sc.quarters} quarters from {sc.start} to "
              f"{sc.end}, {sc.population.users:,} users standing for {real:,.0f}, "
              f"strategy '{sc.rollout.name}' with {len(sc.rollout.phases)} phases; "
              f"digest {sc.digest()[:12]}")
