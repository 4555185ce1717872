"""`python -m imds_detect` runs the command line."""

from .cli import main

main()
