"""`python -m ragbus` is the `ragbus` command."""

from ragbus.cli import main

main()
