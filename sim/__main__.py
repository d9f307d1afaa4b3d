"""``python -m sim``: the greysim command."""

from .cli import main

main()
