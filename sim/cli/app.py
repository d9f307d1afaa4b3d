"""The ``greysim`` command: the typer app, its commands, and the one place errors are caught.

Commands live in small modules (:mod:`sim.cli.run`, :mod:`sim.cli.experiment`, ...) that
import the numerical libraries only inside the command functions; this module registers
them. Every command runs inside :class:`CatchingGroup`:

* a :class:`~sim.errors.GreysimError` prints its one-paragraph message, exit code 2;
* Ctrl-C prints one line (what was kept, if anything), exit code 130;
* anything else is a bug in greysim: one line naming it, exit code 1, and the traceback
  with ``greysim --debug`` (or ``GREYSIM_DEBUG=1``).
"""

from __future__ import annotations

import os
import sys
import traceback

import typer
from rich.text import Text
from typer.core import TyperCommand, TyperGroup
from typer.exceptions import TyperException

from sim.cli import calibrate, experiment, report, robust, run, validate, vintages
from sim.cli.options import collector_running, err, interrupted_line, out
from sim.errors import GreysimError

DEBUG = "greysim.debug"


def fail(message: str, code: int = 2) -> None:
    """Print ``error: message`` as plain text (never console markup) and exit with ``code``."""
    err.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False,
              soft_wrap=True)
    raise typer.Exit(code)


def _debugging(ctx: typer.Context) -> bool:
    return bool(ctx.meta.get(DEBUG)) or os.environ.get("GREYSIM_DEBUG", "") not in ("", "0")


class CatchingGroup(TyperGroup):
    """The command group that turns exceptions into messages and exit codes, once for all
    commands."""

    def invoke(self, ctx: typer.Context):
        token = interrupted_line.set("interrupted")
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException):  # typer's own exits and usage errors
            raise
        except GreysimError as exc:
            if _debugging(ctx):
                traceback.print_exc()
            fail(str(exc))
        except BrokenPipeError:  # the reader closed the pipe (| head): nothing to say
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # Python's flush at exit would fail again
            sys.exit(1)
        except KeyboardInterrupt as exc:
            dest = getattr(exc, "dest", None)  # Ctrl-C after the folder was in place
            fail(f"interrupted after writing {dest}" if dest else interrupted_line.get(), 130)
        except Exception as exc:
            if _debugging(ctx):
                traceback.print_exc()
                fail(f"this is a bug in greysim: {type(exc).__name__}: {exc}", 1)
            fail(f"this is a bug in greysim, please report it: {type(exc).__name__}: {exc} "
                 "(run again with --debug, or GREYSIM_DEBUG=1, for the traceback)", 1)
        finally:
            interrupted_line.reset(token)


class Command(TyperCommand):
    """A greysim command: the cyclic garbage collector, paused for the start-up
    (:func:`sim.cli.main`), is back on while the command runs (:func:`collector_running`)."""

    def invoke(self, ctx: typer.Context):
        with collector_running():
            return super().invoke(ctx)


app = typer.Typer(
    cls=CatchingGroup,
    help="Plan the grey release of an invitation-only credit line.",
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
)


@app.callback()
def options(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", envvar="GREYSIM_DEBUG",
                               help="Show the traceback of an unexpected error."),
) -> None:
    """Plan the grey release of an invitation-only credit line."""
    ctx.meta[DEBUG] = debug


def version_command() -> None:
    """Print the greysim version."""
    from sim import __version__

    out.print(__version__)


app.command("run", cls=Command)(run.run_command)
app.command("validate", cls=Command)(validate.validate_command)
app.command("version", cls=Command)(version_command)
app.command("report", cls=Command)(report.report_command)
app.command("calibrate", cls=Command)(calibrate.calibrate_command)
app.command("compare", cls=Command)(experiment.compare_command)
app.command("sweep", cls=Command)(experiment.sweep_command)
app.command("vintages", cls=Command)(vintages.vintages_command)
app.command("robust", cls=Command)(robust.robust_command)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
