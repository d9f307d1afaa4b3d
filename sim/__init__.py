"""greysim: simulate the staged (grey) release of an invitation-only consumer credit line."""

from importlib.metadata import PackageNotFoundError, version

from .engine import Result, run
from .scenario import Scenario, ScenarioError, load

try:
    __version__ = version("greysim")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["Result", "Scenario", "ScenarioError", "load", "run", "__version__"]
