"""``python -m sim``: the greysim command."""

from .entry import main

main()
