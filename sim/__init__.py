"""greysim: simulate the staged (grey) release of an invitation-only consumer credit line.

The top-level names (``load``, ``run``, ``Result``, ``Scenario``, ``ScenarioError``) and the
submodules (``sim.abtest``, ``sim.charts``, ...) are imported on first use, so the command
line starts, and answers Ctrl-C, before NumPy, pandas and SciPy are loaded.
"""

from importlib import import_module

_HOME = {"Result": "engine", "run": "engine", "Scenario": "scenario",
         "ScenarioError": "scenario", "load": "scenario"}

__all__ = ["Result", "Scenario", "ScenarioError", "load", "run", "__version__"]


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
        value = getattr(import_module(f".{_HOME[name]}", __name__), name)
    elif not name.startswith("_"):
        try:
            value = import_module(f".{name}", __name__)
        except ModuleNotFoundError:
            raise AttributeError(f"module 'sim' has no attribute '{name}'") from None
    else:
        raise AttributeError(f"module 'sim' has no attribute '{name}'")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME, "__version__"])
