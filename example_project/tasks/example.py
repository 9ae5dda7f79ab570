"""The guide's example: run the 'optimization' component in three independent trials."""

import sys

import machinable as ml

task = ml.Task().component("optimization").repeat(3)

if __name__ == "__main__":
    # Storage: the project's settings (./results) unless a URL or path is given: `python tasks/example.py ~/results`.
    execution = ml.execute(task, storage=sys.argv[1] if len(sys.argv) > 1 else None, echo=False)
    print(f"execution {execution.id} (seed {execution.seed}), storage {execution.storage}")
    for trial in execution.trials:
        last = trial.records[-1] if trial.records else {}
        loss, weight = last.get("loss", float("nan")), last.get("weight", float("nan"))
        print(f"  {trial.node_id:<24} {trial.status:<7} seed={trial.seed:<11} final loss={loss:.4f} weight={weight:.3f}")
    print(execution.summary())
    sys.exit(0 if not execution.failed else 1)
