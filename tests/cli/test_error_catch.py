"""The command line catches errors in one place: a GreysimError is one paragraph and exit 2,
anything else is a bug (exit 1, one line, the traceback only with --debug), Ctrl-C exit 130."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sim.analysis.abtest import PopulationMismatch
from sim.analysis.charts import MissingData
from sim.cli import validate
from sim.cli.app import app
from sim.errors import GreysimError, OptionError
from sim.experiments.calibrate import TargetError
from sim.experiments.sweep import SweepError
from sim.io.cost import ResourceError
from sim.io.folders import OutputError
from sim.io.report import ReportError
from sim.model.numeric import NumericError
from sim.scenario import ScenarioError


def _invoke(*args: str, env: dict | None = None):
    return CliRunner().invoke(app, list(args), env=env)


def _raise(exc: BaseException):
    def command(*_args, **_kwargs):
        raise exc
    return command


@pytest.mark.parametrize("cls", [ScenarioError, NumericError, ResourceError, OutputError,
                                 ReportError, TargetError, MissingData, SweepError,
                                 PopulationMismatch, OptionError])
def test_every_user_facing_error_is_a_greysim_error(cls):
    assert issubclass(cls, GreysimError)


def test_a_greysim_error_is_one_paragraph_and_exit_2(tmp_path):
    res = _invoke("report", str(tmp_path))  # a folder that holds no run
    assert res.exit_code == 2
    assert res.output.startswith("error: ") and str(tmp_path) in res.output
    assert "\n\n" not in res.output.strip() and "Traceback" not in res.output


def test_a_message_is_printed_as_written_not_as_markup(monkeypatch):
    monkeypatch.setattr(validate, "load_scenario",
                        _raise(OptionError("key '[bold]x[/]' at file.yaml:100: bad")))
    res = _invoke("validate", "any.yaml")
    assert res.exit_code == 2
    assert "key '[bold]x[/]' at file.yaml:100: bad" in res.output


def test_an_unexpected_exception_is_a_bug_in_one_line_without_traceback(monkeypatch):
    monkeypatch.setattr(validate, "load_scenario", _raise(RuntimeError("boom")))
    res = _invoke("validate", "any.yaml")
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert len(lines) == 1, res.output
    assert "bug in greysim" in lines[0] and "RuntimeError: boom" in lines[0]
    assert "--debug" in lines[0] and "Traceback" not in res.output


@pytest.mark.parametrize(("args", "env"), [(["--debug"], None), ([], {"GREYSIM_DEBUG": "1"})])
def test_debug_shows_the_traceback_of_a_bug(monkeypatch, args, env):
    monkeypatch.setattr(validate, "load_scenario", _raise(RuntimeError("boom")))
    res = _invoke(*args, "validate", "any.yaml", env=env)
    assert res.exit_code == 1
    assert "Traceback" in res.output and "RuntimeError: boom" in res.output


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch):
    monkeypatch.setattr(validate, "load_scenario", _raise(KeyboardInterrupt()))
    res = _invoke("validate", "any.yaml")
    assert res.exit_code == 130
    assert res.output.strip() == "error: interrupted"
