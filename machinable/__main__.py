"""``python -m machinable``: the same as the ``machinable`` command."""

from machinable.cli.main import console_main

if __name__ == "__main__":
    console_main()
