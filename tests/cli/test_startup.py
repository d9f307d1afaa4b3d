"""The command line starts without the numerical libraries, and its modules import no cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import sim.cli

HEAVY = ("numpy", "pandas", "scipy", "matplotlib", "dask")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("args", [["version"], ["--help"],
                                  ["validate", "scenarios/baseline.yaml"]])
def test_light_commands_load_no_numerical_library(args):
    code = ("import sys\nfrom typer.testing import CliRunner\nimport sim.cli.app\n"
            f"res = CliRunner().invoke(sim.cli.app.app, {args!r})\n"
            "assert res.exit_code == 0, res.output\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def _cli_imports(path: Path) -> set[str]:
    """The sim.cli modules a module imports when it is imported (module level only)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sim.cli"):
            names = [f"{node.module}.{a.name}" for a in node.names]
            found |= {n for n in [node.module, *names] if _module_path(n)}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("sim.cli")}
    return found


def _module_path(name: str) -> Path | None:
    base = Path(sim.cli.__file__).parent / Path(*name.split(".")[2:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if name != "sim.cli" and path.is_file():
            return path
    return None


def test_cli_modules_import_no_cycle():
    folder = Path(sim.cli.__file__).parent
    graph = {f"sim.cli.{p.stem}": _cli_imports(p) for p in folder.glob("*.py")
             if p.stem != "__init__"}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import cycle: {' -> '.join((*path, name))}"
        if name in done:
            return
        for dep in graph.get(name, ()):
            visit(dep, (*path, name))
        done.add(name)

    for name in graph:
        visit(name, ())
    assert {"sim.cli.run", "sim.cli.experiment"} <= graph["sim.cli.app"]  # the walk sees edges


def test_the_collector_is_paused_for_the_start_up_and_on_while_a_command_runs(tmp_path):
    """The console script pauses the cyclic garbage collector for its start-up and a run's
    imports and scenario (they make no garbage), and every command runs with it on, so a
    long command frees its cycles; the start-up's objects are frozen while the command runs
    (out of the collector's passes) and unfrozen after it (an in-process caller's collector
    sees them again)."""
    code = ("import gc, sys\nimport sim.cli.run as run\n"
            "seen = []\n"
            "def spy(*a, **k):\n    seen.append(gc.isenabled())\n"
            "    seen.append(gc.get_freeze_count() > 0)\n    sys.exit(0)\n"
            "run._simulate = spy\n"
            "load = run.load_scenario\n"
            "def loading(*a, **k):\n    seen.append(gc.isenabled())\n"
            "    seen.append(gc.get_freeze_count() > 0)\n    return load(*a, **k)\n"
            "run.load_scenario = loading\n"
            f"sys.argv = ['greysim', 'run', 'scenarios/baseline.yaml', '--users', '100', "
            f"'--quiet', '--no-report', '--out', {str(tmp_path / 'run')!r}]\n"
            "import sim.cli\nenabled_at_start = gc.isenabled()\n"
            "try:\n    sim.cli.main()\nexcept SystemExit:\n    pass\n"
            "print(enabled_at_start, seen, gc.isenabled(), gc.get_freeze_count())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    # on at the start (before main); off while the run loads its scenario, the start-up's
    # objects already frozen; on while it runs (over the objects made since the command
    # started); nothing frozen after it
    assert proc.stdout.split() == ["True", "[False,", "True,", "True,", "True]", "True", "0"]


def test_a_run_without_its_report_never_imports_pandas(tmp_path):
    """``run --no-report`` writes its folder from the tables as recorded: pandas (a quarter
    of a second to import) is for the report and the analysis, not for the run."""
    out = tmp_path / "run"
    code = ("import sys\nimport sim.cli\n"
            f"sys.argv = ['greysim', 'run', 'scenarios/baseline.yaml', '--users', '2000', "
            f"'--quarters', '2', '--no-report', '--quiet', '--out', {str(out)!r}]\n"
            "try:\n    sim.cli.main()\nexcept SystemExit as exc:\n    assert not exc.code\n"
            "print('pandas' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "False"
    assert (out / "metrics.parquet").is_file() and (out / "summary.json").is_file()
