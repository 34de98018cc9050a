"""Runs the command line when payonce is started with ``python -m payonce``."""

from payonce.entrypoints.cli import main

main()
