"""Scenarios: the validated, frozen description of one simulated rollout.

Modules by concept: ``population``, ``scoring``, ``calendar`` (releases, holidays, macro,
reporting), ``rollout`` (phases, gates, A/B arms), ``credit``, ``root`` (the whole
:class:`Scenario` and its cross-checks), ``files`` (YAML and ``extends``), ``keys`` (dotted
key paths), ``messages`` (errors), ``loading`` (:func:`load`).
"""

from sim.scenario import keys
from sim.scenario.base import DIMENSIONS, MODULES, SHARE_TOLERANCE
from sim.scenario.calendar import (
                                   BANDABLE,
                                   Calendar,
                                   ClientVersion,
                                   Macro,
                                   MacroShock,
                                   PolicyChange,
                                   Release,
                                   Reporting,
                                   Window,
                                   add_months,
)
from sim.scenario.credit import (
                                   Capital,
                                   CapRule,
                                   Credit,
                                   Delinquency,
                                   Fraud,
                                   Limits,
                                   Loss,
                                   Pricing,
                                   Repayment,
                                   ScoreEffects,
)
from sim.scenario.files import MAX_VALUES, parse_yaml
from sim.scenario.files import resolve as _resolve
from sim.scenario.loading import load
from sim.scenario.messages import Origin, ScenarioError
from sim.scenario.population import (
                                   MAX_BOUND_CARDS,
                                   AccountClass,
                                   Archetype,
                                   Behaviour,
                                   DataSharing,
                                   DeviceGrade,
                                   OperatingSystem,
                                   PopulationSpec,
                                   Region,
                                   Spread,
                                   Variation,
)
from sim.scenario.rollout import AB, Arm, Batch, Gate, Holdout, Phase, RampStep, Rollout
from sim.scenario.root import MAX_BATCHES, Scenario, validate
from sim.scenario.scoring import (
                                   AssetSignals,
                                   Cutoff,
                                   OtherIndicators,
                                   Penalty,
                                   Preconditions,
                                   Reevaluation,
                                   References,
                                   RepaymentSignals,
                                   ResilienceSignals,
                                   Risk,
                                   Scoring,
                                   Signals,
                                   SocialSignals,
                                   SpendingSignals,
                                   StabilitySignals,
)

__all__ = [
    # the scenario and how to get one
    "Scenario", "ScenarioError", "load", "validate", "parse_yaml", "keys", "Origin",
    "add_months",
    # sections
    "PopulationSpec", "Archetype", "Region", "DeviceGrade", "OperatingSystem", "DataSharing",
    "AccountClass", "Spread", "Variation", "Behaviour",
    "Scoring", "Signals", "SpendingSignals", "RepaymentSignals", "SocialSignals",
    "AssetSignals", "StabilitySignals", "ResilienceSignals", "References", "Cutoff", "Penalty",
    "Preconditions", "OtherIndicators", "Risk", "Reevaluation",
    "Release", "ClientVersion", "Calendar", "Window", "PolicyChange", "Macro", "MacroShock",
    "Reporting",
    "Rollout", "Phase", "Batch", "RampStep", "Gate", "Holdout", "AB", "Arm",
    "Credit", "Pricing", "Limits", "CapRule", "Repayment", "Delinquency", "Loss",
    "ScoreEffects", "Capital", "Fraud",
    # constants
    "DIMENSIONS", "MODULES", "SHARE_TOLERANCE", "BANDABLE", "MAX_BOUND_CARDS", "MAX_BATCHES",
    "MAX_VALUES",
    "_resolve",
]
