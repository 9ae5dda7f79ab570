"""``settings: code_identity: executed``: a trial's code fingerprint from the functions it executed, instead of
every project file its component imports (:mod:`machinable.collection.fingerprint`).

What ran is measured as function coverage through the interpreter's trace hook: the trial's code objects are
noted at their first call, with no per-line tracing (a line tracer such as coverage.py's costs ~5 ms a trial
to collect its data; this costs a dictionary lookup per call: the benchmarks' ``code-identity`` figure). A tool
that traces already (a debugger, coverage) keeps getting every event. Threads the trial starts are traced too.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from machinable.trials import TrialSpec

EXECUTED = "executed"


@dataclass
class Measured:
    code: dict[str, str] = field(default_factory=dict)


def executed_code(spec: TrialSpec) -> AbstractContextManager[Measured | None]:
    """Note what the trial executes, when its spec asks for it (None otherwise): ``.code`` is its fingerprint
    once the block has ended, however it ended."""
    if spec.code_identity != EXECUTED or not spec.project_root:
        return nullcontext()  # the common case costs no generator
    return _measure(spec)


@contextmanager
def _measure(spec: TrialSpec) -> Iterator[Measured]:
    from machinable.collection.fingerprint import executed

    root = os.path.join(os.path.realpath(spec.project_root), "")
    seen: dict[Any, None] = {}
    lines: dict[str, set[int]] = {}
    previous, previous_threads = sys.gettrace(), threading.gettrace()

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        code = frame.f_code
        if event == "call" and code not in seen:
            seen[code] = None
            if code.co_filename.startswith(root):
                lines.setdefault(code.co_filename, set()).add(code.co_firstlineno)
        return previous(frame, event, arg) if previous is not None else None

    measured = Measured()
    sys.settrace(tracer)
    threading.settrace(tracer)
    try:
        yield measured
    finally:
        sys.settrace(previous)
        threading.settrace(previous_threads)  # type: ignore[arg-type]
        measured.code = executed(lines, spec.project_root)
