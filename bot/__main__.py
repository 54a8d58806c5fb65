"""`python -m bot`: the same as the `bot` command."""

from bot.ui.cli import main

main()
