"""The ``greysim`` console script: catches Ctrl-C even while the libraries are loading."""

import sys


def main() -> None:
    try:
        from sim.cli.app import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    cli_main()
