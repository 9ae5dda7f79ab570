"""Fixtures: values injected into functional components (and other fixtures) by parameter name.

Built-in fixtures (``config``, ``seed``, ``flags``, ``record``, ``log``, ``store``, ``storage``,
``local_directory``, ``tmp_path``) come from the running trial. User fixtures are functions decorated with
``@ml.fixture``; a fixture that ``yield``\\ s gets its teardown run after the trial (scope ``trial``) or at the
end of the worker's session (scope ``session``).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar, overload

from machinable.errors import CollectionError, UsageError, did_you_mean

F = TypeVar("F", bound=Callable[..., Any])
SCOPES = ("trial", "session")
BUILTIN = ("config", "seed", "flags", "record", "log", "store", "storage", "local_directory", "tmp_path")


@dataclass(frozen=True)
class FixtureDef:
    name: str
    module: str
    attribute: str
    scope: str
    params: tuple[str, ...]  # the parameters fixtures are injected into (not *args / **kwargs)
    # those of ``params`` with a default: injected only if such a fixture exists
    defaults: tuple[str, ...] = ()

    def load(self) -> Callable[..., Any]:
        from machinable.config.importing import import_attribute

        target = import_attribute(None, self.module, self.attribute, f"fixture '{self.name}'", None)
        return getattr(target, "__wrapped_fixture__", target)


@overload
def fixture(func: F) -> F: ...
@overload
def fixture(*, scope: str = "trial", name: str | None = None) -> Callable[[F], F]: ...


def fixture(func: F | None = None, *, scope: str = "trial", name: str | None = None) -> F | Callable[[F], F]:
    """Declare a fixture; components and other fixtures receive it by naming it as a parameter."""
    if scope not in SCOPES:
        raise UsageError(f"fixture scope must be one of {', '.join(SCOPES)}, not {scope!r}")

    def mark(f: F) -> F:
        params = injectable(inspect.signature(f))
        f.__machinable_fixture__ = FixtureDef(  # type: ignore[attr-defined]
            name=name or f.__name__,
            module=f.__module__,
            attribute=f.__qualname__,
            scope=scope,
            params=tuple(p.name for p in params),
            defaults=tuple(p.name for p in params if p.default is not p.empty),
        )
        return f

    return mark(func) if func is not None else mark


def injectable(signature: inspect.Signature) -> list[inspect.Parameter]:
    """The parameters that fixtures may fill: every one but ``*args`` and ``**kwargs``."""
    return [p for p in signature.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def fixtures_in(namespace: Mapping[str, Any]) -> list[FixtureDef]:
    """The fixtures defined in a module's namespace."""
    return [
        d
        for v in namespace.values()
        if isinstance(d := getattr(v, "__machinable_fixture__", None), FixtureDef)
    ]


def check_definitions(defs: Iterable[FixtureDef]) -> None:
    """Every fixture's parameters must name fixtures that exist; cycles are refused."""
    by_name = {d.name: d for d in defs}
    known = set(BUILTIN) | set(by_name)
    for d in by_name.values():
        for p in d.params:
            if p not in known and p not in d.defaults:
                raise CollectionError(
                    f"fixture '{d.name}' asks for fixture '{p}', which does not exist{did_you_mean(p, known)}"
                )
            # A session value is made once: built from one trial's value it would leak into every other trial.
            if d.scope == "session" and (p in BUILTIN or (p in by_name and by_name[p].scope != "session")):
                raise CollectionError(
                    f"session fixture '{d.name}' asks for '{p}', which is made anew for every trial; "
                    f"give '{d.name}' scope='trial' or stop asking for '{p}'"
                )

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise CollectionError(f"fixtures depend on each other in a cycle: {' -> '.join((*path, name))}")
        for p in by_name[name].params if name in by_name else ():
            if p in known:
                visit(p, (*path, name))

    for name in by_name:
        visit(name, ())


class FixtureManager:
    """Sets fixtures up for a trial and tears them down; session fixtures live as long as the manager."""

    def __init__(self, defs: Iterable[FixtureDef] = ()) -> None:
        self.defs = {d.name: d for d in defs}
        self._session: dict[str, Any] = {}
        self._session_teardown: list[Any] = []

    def names(self) -> tuple[str, ...]:
        return (*BUILTIN, *self.defs)

    def arguments(
        self, signature: inspect.Signature, builtins: Mapping[str, Callable[[], Any]], teardown: list[Any]
    ) -> tuple[list[Any], dict[str, Any]]:
        """(positional, keyword) arguments for a functional component's ``signature``: a fixture for every
        parameter that names one; a parameter with a default that names none keeps its default."""
        params = [
            p
            for p in injectable(signature)
            if p.name in builtins or p.name in self.defs or p.default is p.empty
        ]
        values = self.resolve([p.name for p in params], builtins, teardown)
        positional = [values[p.name] for p in params if p.kind is p.POSITIONAL_ONLY]
        return positional, {p.name: values[p.name] for p in params if p.kind is not p.POSITIONAL_ONLY}

    def resolve(
        self, wanted: Iterable[str], builtins: Mapping[str, Callable[[], Any]], teardown: list[Any]
    ) -> dict[str, Any]:
        """Values for ``wanted``; trial-scoped generators are appended to ``teardown`` (last in, first out)."""
        values: dict[str, Any] = {}

        def get(name: str) -> Any:
            if name in values:
                return values[name]
            if name in builtins:
                values[name] = builtins[name]()
            elif name in self._session:
                values[name] = self._session[name]
            else:
                d = self.defs[name]
                func = d.load()
                given = [p for p in d.params if p not in d.defaults or p in builtins or p in self.defs]
                result = func(**{p: get(p) for p in given})
                if inspect.isgenerator(result):
                    (self._session_teardown if d.scope == "session" else teardown).append(result)
                    result = next(result)
                if d.scope == "session":
                    self._session[name] = result
                values[name] = result
            return values[name]

        return {name: get(name) for name in wanted}

    @staticmethod
    def finish(generators: list[Any]) -> None:
        """Run the code after ``yield`` of each fixture, last set up first torn down.

        Every teardown runs even when one fails (each releases its own resource); the first failure is raised
        after all of them ran.
        """
        failure: BaseException | None = None
        while generators:
            gen = generators.pop()
            try:
                next(gen)
            except StopIteration:
                continue
            except Exception as exc:
                failure = failure or exc
                continue
            gen.close()
            failure = failure or UsageError(
                f"fixture '{gen.__name__}' yielded more than once; yield one value"
            )
        if failure is not None:
            raise failure

    def close(self) -> None:
        """Tear the session fixtures down. A failure is reported as a warning, never raised: every trial has
        finished and been stored by now, and the caller must still get its results."""
        try:
            self.finish(self._session_teardown)
        except Exception as exc:
            warnings.warn(
                f"machinable: session fixture teardown failed: {type(exc).__name__}: {exc}", RuntimeWarning, 2
            )
        finally:
            self._session.clear()


CONF_MODULE = "machinable_conf"


def project_conf(root: str | Path) -> ModuleType | None:
    """The project's ``machinable_conf.py`` (fixtures and hooks for the whole project), imported once, or None."""
    from machinable.config.importing import import_module

    if not (Path(root) / f"{CONF_MODULE}.py").is_file():
        return None
    return import_module(Path(root), CONF_MODULE, f"{CONF_MODULE}.py")


def discover_fixtures(
    found: dict[str, FixtureDef] | None = None,
    *,
    root: str | Path | None = None,
    modules: Iterable[ModuleType] = (),
) -> dict[str, FixtureDef]:
    """The one fixture discovery, shared by collection, ``ml.execute`` and re-runs: the fixtures of the project's
    ``machinable_conf.py`` (``root``) and of ``modules``, added to ``found`` (a module's fixture replaces one of
    the same name found before). Returns ``found``."""
    found = {} if found is None else found
    conf = project_conf(root) if root is not None else None
    for module in (conf, *modules) if conf is not None else modules:
        found.update((d.name, d) for d in fixtures_in(vars(module)))
    return found
