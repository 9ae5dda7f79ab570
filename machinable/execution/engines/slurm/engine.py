"""The controller of the ``slurm`` engine: submits one job array per resource shape, follows the trials through
storage, cancels on ``-x`` or Ctrl-C, or detaches. Preempted trials are requeued by their workers (``requeue``)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from machinable.errors import UsageError
from machinable.execution.engines.base import Detached, Engine, RunContext, StopExecution
from machinable.execution.engines.slurm import commands
from machinable.execution.engines.slurm.options import Shape, SlurmOptions, shape_of
from machinable.hookspec import hookimpl

if TYPE_CHECKING:
    from machinable.execution.engines.slurm.follow import Submission
    from machinable.trials import TrialResult, TrialSpec

# The command line builds every engine's plugin at start: storage, the follower and the script renderer are
# imported when a slurm execution runs.


class SlurmEngine(Engine):
    """Runs trials in Slurm job arrays of pull workers (see docs/engines.md, "Slurm")."""

    name = "slurm"

    def __init__(self, **options: Any) -> None:
        self.options = SlurmOptions.parse(options)
        self._submissions = 0

    def describe(self) -> str:
        where = f", partition {self.options.partition}" if self.options.partition else ""
        return f"slurm (at most {self.options.max_parallel} array tasks at once{where})"

    def run(self, specs: list[TrialSpec], context: RunContext) -> Iterator[TrialResult]:
        from machinable.execution.engines.slurm.follow import Submission

        if context.location.is_memory:
            raise UsageError(
                "engine 'slurm': memory storage lives in this process only; the nodes need a shared storage "
                "(--storage /shared/path or s3://bucket/path)"
            )
        commands.require("sbatch")
        specs = [context.with_timeout(spec) for spec in specs]
        submission = Submission(specs, context)
        self._submit(submission, specs, context)
        if self.options.detach:
            raise Detached(self._detach_message(context, submission))
        yield from self._follow(submission, context)

    def _submit(self, submission: Submission, specs: list[TrialSpec], context: RunContext) -> None:
        from machinable.execution.engines.slurm.batches import Batch
        from machinable.execution.engines.slurm.submit import stored_options, submit
        from machinable.plugins import plugin_refs

        latest = submission.claims.current()
        groups: dict[Shape, list[TrialSpec]] = {}
        for spec in specs:
            groups.setdefault(shape_of(spec, self.options), []).append(spec)
        refs = [list(ref) for ref in plugin_refs(context.pm)] if context.pm is not None else []
        for shape, group in groups.items():
            self._submissions += 1
            batch = Batch(
                name=f"batch-{self._submissions}",
                uids=[s.uid for s in group],
                claims={s.uid: latest.get(s.uid, 0) for s in group},
                checkpoints={s.uid: s.checkpoint for s in group if s.checkpoint},
                plugins=refs,
                echo=context.echo,
                warning=self.options.warning_signal,
                options=stored_options(self.options),
            )
            chdir = group[0].project_root or "."
            record = submit(
                context.location,
                context.writer.folder,
                context.execution_id,
                self.options,
                batch,
                shape,
                chdir,
            )
            submission.add(record, batch)
        submission.save_jobs()

    def _detach_message(self, context: RunContext, submission: Submission) -> str:
        from machinable.execution.engines.slurm.submit import follow_command

        return (
            f"detached: execution {context.execution_id} runs in Slurm job(s) {', '.join(submission.jobs)}; "
            f"follow it with: {follow_command(context.execution_id, context.location.url)}"
        )

    def _follow(self, submission: Submission, context: RunContext) -> Iterator[TrialResult]:
        try:
            while submission.open:
                yield from submission.poll()
                if submission.open:
                    time.sleep(self.options.poll_interval)
        except StopExecution:
            yield from submission.cancel(self._pause)
        except KeyboardInterrupt:
            if not _confirm_cancel(submission):
                raise Detached(self._detach_message(context, submission)) from None
            yield from submission.cancel(self._pause)
            raise

    def _pause(self) -> None:
        time.sleep(self.options.poll_interval)


def _confirm_cancel(submission: Submission) -> bool:
    """Ctrl-C while attached: ask whether to cancel the jobs (with no terminal to ask: cancel)."""
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return True
    try:
        answer = input(f"\ncancel the Slurm job(s) {', '.join(submission.jobs)}? [y/N] ")
    except (EOFError, KeyboardInterrupt):
        return True
    return answer.strip().lower() in ("y", "yes")


@hookimpl
def machinable_engines() -> dict[str, Any]:
    return {"slurm": SlurmEngine}
