"""Trial specs and trial results: plain, picklable data that crosses between the controller and the workers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OUTCOMES = ("passed", "failed", "crashed", "interrupted", "preempted")
# A trial a --needed run did not run again because an identical one passed before: it counts as passed.
CACHED = "cached"
PASSING = frozenset({"passed", CACHED})


@dataclass
class TrialSpec:
    """Everything a worker needs to run one trial; workers never re-collect the project."""

    node_id: str
    component: str
    module: str
    attribute: str
    project_root: str | None
    config: dict[str, Any]
    versions: tuple[str, ...]
    seed: int
    uid: str
    repeat_number: int = 0
    repeat_total: int = 1
    flags: dict[str, Any] = field(default_factory=dict)
    keywords: tuple[str, ...] = ()
    timeout: float | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    # (name, module, attribute) of mixins bound as self._<name>_
    mixins: tuple[tuple[str, str, str], ...] = ()
    # the component object itself, when it cannot be imported by name (e.g. defined in __main__)
    target: Any = None
    # how the trial was planned (collection.plan.Recipe), so overrides can be applied to it after selection;
    # never stored, None for a spec read back from storage
    recipe: Any = field(default=None, repr=False, compare=False)
    # the checkpoint a resumed trial restores: its folder relative to the trial's folder
    # ('attempts/1/checkpoints/3'), set by the resume that found it; never stored
    checkpoint: str | None = field(default=None, compare=False)
    # the code fingerprint: {project file the component's module imports: content hash} (collection.fingerprint)
    code: dict[str, str] = field(default_factory=dict, compare=False)
    # how the code fingerprint is taken: 'imported' (above) or 'executed' (measured while the trial runs)
    code_identity: str = "imported"
    # torch's deterministic mode in the trial: False, True or 'warn' (components/seeding.py)
    deterministic: bool | str = False

    def trial_info(self, execution_id: str) -> dict[str, Any]:
        """What trial.json keeps about this trial."""
        return {
            "node_id": self.node_id,
            "uid": self.uid,
            "component": self.component,
            "module": self.module,
            "attribute": self.attribute,
            "config": self.config,
            "versions": list(self.versions),
            "seed": self.seed,
            "execution_id": execution_id,
            "repeat_number": self.repeat_number,
            "repeat_total": self.repeat_total,
            "flags": self.flags,
            "keywords": list(self.keywords),
            "timeout": self.timeout,
            "resources": self.resources,
            "mixins": [list(m) for m in self.mixins],
            "project_root": self.project_root,
            "code": self.code,
            **({"code_identity": self.code_identity} if self.code_identity != "imported" else {}),
            **({"deterministic": self.deterministic} if self.deterministic else {}),
        }

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> TrialSpec:
        """Rebuild a spec from what :meth:`trial_info` stored (resume and reproduce run stored plans)."""
        return cls(
            node_id=info["node_id"],
            component=info["component"],
            module=info["module"],
            attribute=info["attribute"],
            project_root=info.get("project_root"),
            config=info["config"],
            versions=tuple(info.get("versions", ())),
            seed=info["seed"],
            uid=info["uid"],
            repeat_number=info.get("repeat_number", 0),
            repeat_total=info.get("repeat_total", 1),
            flags=dict(info.get("flags", {})),
            keywords=tuple(info.get("keywords", ())),
            timeout=info.get("timeout"),
            resources=dict(info.get("resources") or {}),
            mixins=tuple(tuple(m) for m in info.get("mixins", ())),
            code=dict(info.get("code") or {}),
            code_identity=info.get("code_identity") or "imported",
            deterministic=info.get("deterministic") or False,
        )


@dataclass
class TrialResult:
    """The outcome of one trial, as the engine reports it back to the controller."""

    node_id: str
    uid: str
    component: str
    config: dict[str, Any]
    versions: tuple[str, ...]
    seed: int
    status: str
    error: str | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    started: float | None = None
    finished: float | None = None
    repeat_number: int = 0
    repeat_total: int = 1
    flags: dict[str, Any] = field(default_factory=dict)
    # the trial's folder, shipped back from another process's memory storage
    files: dict[str, bytes] | None = None
    # what a trial that did not pass printed (output.log) and logged (log.txt); '' for a passed trial
    output: str = ""
    log: str = ""
    code: dict[str, str] = field(default_factory=dict)  # the spec's code fingerprint
    cached_from: str | None = None  # 'FOLDER/UID' of the stored trial a cached result stands for
    _stored: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, spec: TrialSpec, status: str, error: str | None, **fields: Any) -> TrialResult:
        """The result of running ``spec``; ``fields`` are the remaining attributes (records, timings ...)."""
        return cls(
            node_id=spec.node_id,
            uid=spec.uid,
            component=spec.component,
            config=spec.config,
            versions=spec.versions,
            seed=spec.seed,
            status=status,
            error=error,
            repeat_number=spec.repeat_number,
            repeat_total=spec.repeat_total,
            **{"code": spec.code, **fields},
        )

    @property
    def duration(self) -> float:
        if self.started is None or self.finished is None:
            return 0.0
        return self.finished - self.started

    @property
    def passed(self) -> bool:
        """It passed, here or (cached) in the run it stands for."""
        return self.status in PASSING

    @property
    def store(self) -> Any:
        """The trial's stored objects (read from storage): ``trial.store['name']``."""
        if self._stored is None:
            raise AttributeError("this result is not attached to a storage")
        return self._stored.store
