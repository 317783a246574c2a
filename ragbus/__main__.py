"""`python -m ragbus` is the `ragbus` command."""

from ragbus.cli.app import main

main()
