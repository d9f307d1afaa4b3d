"""greysim: simulate the staged (grey) release of an invitation-only consumer credit line.

The top-level names are imported on first use, so the command line starts, and answers
Ctrl-C, before NumPy, pandas and SciPy are loaded. The subpackages follow the data flow:
``scenario`` (files and schema) -> ``model`` (mechanisms on arrays) -> ``engine`` (the SimPy
calendar and the recorder) -> ``experiments`` and ``analysis`` (many runs, statistics,
charts) -> ``io`` (folders, report) -> ``cli``.
"""

from importlib import import_module

_HOME = {
    "GreysimError": "sim.errors",
    "Scenario": "sim.scenario",
    "ScenarioError": "sim.scenario",
    "load": "sim.scenario",
    "Result": "sim.engine.result",
    "run": "sim.experiments.runs",
    "compare": "sim.experiments.compare",
    "Comparison": "sim.experiments.compare",
    "Verdict": "sim.experiments.compare",
    "sweep": "sim.experiments.sweep",
    "Sweep": "sim.experiments.sweep",
    "calibrate": "sim.experiments.calibrate",
    "Fit": "sim.experiments.calibrate",
    "robust": "sim.experiments.robust",
    "Robustness": "sim.experiments.robust",
}

__all__ = [*_HOME, "__version__"]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("greysim")
    except PackageNotFoundError:  # running from a source tree without installation
        return "0.0.0+unknown"


def __getattr__(name: str):
    if name == "__version__":
        value = _version()
    elif name in _HOME:
        value = getattr(import_module(_HOME[name]), name)
    else:
        raise AttributeError(f"module 'sim' has no attribute '{name}'")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME, "__version__"])
