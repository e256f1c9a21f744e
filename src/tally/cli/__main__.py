"""`python -m tally.cli`: the same as the `tally` console script."""

from tally.cli import main

main()
