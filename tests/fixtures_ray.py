"""One local Ray for the whole test session: ``ray.init(num_cpus=2)``, started on first use, shut down at the end.

Registered from the root conftest.py (``pytest_plugins``); tests that need Ray ask for the ``ray_session`` fixture.
It is started through the ray engine's own ``connect`` so that the tests see Ray exactly as users do (quiet, no
dashboard); the engine then finds Ray initialized and reuses it.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_session():
    """The ``ray`` module, connected to this session's local Ray (2 CPUs)."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():  # started by someone else: theirs to shut down
        yield ray
        return
    from machinable.execution.engines.ray_engine import connect

    connect(num_cpus=2)
    try:
        yield ray
    finally:
        ray.shutdown()
