"""Helpers for plugins that add command line options (``machinable_addoption``)."""

from __future__ import annotations

import argparse

__all__ = ["getgroup"]


def getgroup(parser: argparse.ArgumentParser, title: str) -> argparse._ArgumentGroup:
    """The option group ``title`` of ``parser``, created on first use, so plugins can share a ``--help`` section.

    argparse itself would make a second section of the same title on every ``add_argument_group`` call.
    """
    for group in parser._action_groups:
        if group.title == title:
            return group
    return parser.add_argument_group(title)
