"""`python -m transferkit` (also what `accelerate launch -m transferkit` runs)."""

from .cli.app import main

main()
