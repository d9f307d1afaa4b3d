"""``python -m sim``: the greysim command."""

from sim.cli import main

main()
