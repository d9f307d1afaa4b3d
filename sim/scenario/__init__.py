"""Scenario files: the validated, frozen description of one simulated rollout."""

from sim.scenario.schema import *  # noqa: F403
from sim.scenario.schema import _resolve  # noqa: F401
