"""Imported by the ``process`` engine's fork server when it starts: the modules of the numerical libraries that the
controller had imported by then (their names in ``MACHINABLE_PRELOAD``), so that every worker forked from the server
has them already. torch's first optimizer alone imports some 800 modules (over a second); without this each worker
of each execution would pay it again.
"""

from __future__ import annotations

import importlib
import os

from machinable.execution.engines.start_method import VARIABLE


def preload() -> None:
    for name in os.environ.get(VARIABLE, "").split(","):
        if not name:
            continue
        try:
            importlib.import_module(name)
        except Exception:  # noqa: S112 - one the controller had may not import on its own: the worker imports it
            continue


preload()
