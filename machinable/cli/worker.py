"""The built-in plugin ``worker``: ``machinable worker``, what each array task of the slurm engine runs.

Users don't call it: the engine writes it into the ``sbatch`` script. It takes the trials of one submitted
batch from the execution's storage (``--storage``: the storage's URL or the JSON the engine wrote) and runs them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from machinable.errors import UsageError
from machinable.hookspec import hookimpl

if TYPE_CHECKING:
    from machinable.execution.options import Config


@hookimpl
def machinable_subcommands(subparsers: Any) -> None:
    worker = subparsers.add_parser(
        "worker",
        help="run the trials of a batch the slurm engine submitted (used in its sbatch scripts)",
        description="Take the trials of a submitted batch one at a time (an atomic claim in storage), run "
        "them, and exit when none is left. The slurm engine's job arrays run this.",
    )
    worker.add_argument("--storage", required=True, metavar="URL|JSON", help="the execution's storage")
    worker.add_argument("--execution", required=True, metavar="FOLDER", help="the execution's folder")
    worker.add_argument("--batch", required=True, metavar="NAME", help="the batch to work on")
    worker.set_defaults(run=run_worker)


def run_worker(config: Config) -> int:
    from machinable.execution.engines.slurm.worker import work

    option = config.option
    target: Any = option.storage
    if target.startswith("{"):
        try:
            target = json.loads(target)
        except ValueError as exc:
            raise UsageError(f"--storage: not a URL and not valid JSON ({exc})") from None
    return work(target, option.execution, option.batch)
