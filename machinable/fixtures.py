"""Fixtures: values injected into functional components (and other fixtures) by parameter name.

Built-in fixtures (``config``, ``seed``, ``flags``, ``record``, ``log``, ``store``, ``storage``, ``tmp_path``) come
from the running trial. User fixtures are functions decorated with ``@ml.fixture``; a fixture that ``yield``\\ s
gets its teardown run after the trial (scope ``trial``) or at the end of the worker's session (scope ``session``).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar, overload

from machinable.errors import CollectionError, UsageError, did_you_mean

F = TypeVar("F", bound=Callable[..., Any])
SCOPES = ("trial", "session")
BUILTIN = ("config", "seed", "flags", "record", "log", "store", "storage", "tmp_path")


@dataclass(frozen=True)
class FixtureDef:
    name: str
    module: str
    attribute: str
    scope: str
    params: tuple[str, ...]

    def load(self) -> Callable[..., Any]:
        target: Any = importlib.import_module(self.module)
        for part in self.attribute.split("."):
            target = getattr(target, part)
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
        f.__machinable_fixture__ = FixtureDef(  # type: ignore[attr-defined]
            name=name or f.__name__,
            module=f.__module__,
            attribute=f.__qualname__,
            scope=scope,
            params=tuple(inspect.signature(f).parameters),
        )
        return f

    return mark(func) if func is not None else mark


def fixtures_in(namespace: Mapping[str, Any]) -> list[FixtureDef]:
    """The fixtures defined in a module's namespace."""
    return [d for v in namespace.values() if isinstance(d := getattr(v, "__machinable_fixture__", None), FixtureDef)]


def check_definitions(defs: Iterable[FixtureDef]) -> None:
    """Every fixture's parameters must name fixtures that exist; cycles are refused."""
    by_name = {d.name: d for d in defs}
    known = set(BUILTIN) | set(by_name)
    for d in by_name.values():
        for p in d.params:
            if p not in known:
                raise CollectionError(
                    f"fixture '{d.name}' asks for fixture '{p}', which does not exist{did_you_mean(p, known)}"
                )

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise CollectionError(f"fixtures depend on each other in a cycle: {' -> '.join((*path, name))}")
        for p in by_name[name].params if name in by_name else ():
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
                result = func(**{p: get(p) for p in d.params})
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
        """Run the code after ``yield`` of each fixture, last set up first torn down."""
        while generators:
            gen = generators.pop()
            try:
                next(gen)
            except StopIteration:
                continue
            raise CollectionError(f"fixture {gen.__name__} yielded more than once")

    def close(self) -> None:
        self.finish(self._session_teardown)
        self._session.clear()


CONF_MODULE = "machinable_conf"


def project_conf(root: str | Path) -> ModuleType | None:
    """The project's ``machinable_conf.py`` (fixtures and hooks for the whole project), imported once, or None."""
    from machinable.config.importing import import_module

    if not (Path(root) / f"{CONF_MODULE}.py").is_file():
        return None
    return import_module(Path(root), CONF_MODULE, f"{CONF_MODULE}.py")


def project_fixtures(root: str | Path) -> dict[str, FixtureDef]:
    conf = project_conf(root)
    return {d.name: d for d in fixtures_in(vars(conf))} if conf is not None else {}
