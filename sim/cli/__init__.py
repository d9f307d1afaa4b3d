"""The ``greysim`` console script: catches Ctrl-C even while the libraries are loading."""

import atexit
import gc
import sys


def main() -> None:
    # The start-up (typer, rich, the parsing of the command line) makes tens of thousands
    # of objects and no garbage: the cyclic collector is off until the command runs
    # (sim.cli.app.Command), which pauses it again for its own imports
    # (sim.cli.options.collector_paused).
    gc.disable()
    # The interpreter's teardown runs the cyclic collector over every object still alive
    # (the libraries' hundreds of thousands): 0.1-0.2 s after a 1M-user run. Frozen at
    # exit (after the command, which closed its files), they are left to the process's end.
    atexit.register(gc.freeze)
    try:
        from sim.cli.app import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    cli_main()
