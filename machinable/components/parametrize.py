"""``@ml.parametrize(name, values, ids=None)``: one trial per value, like pytest's parametrize.

``name`` is a configuration key (``learning_rate``, or a dotted path ``data.name``). Each value becomes a version
merged on top of the trial's own version:

- a version string (``'~mnist'``, ``'_imagenet_'``) is applied as that version; ``name`` only labels it;
- anything else sets the key: ``{'learning_rate': 0.1}``; a dict value merges into the mapping under the key.

Stacked decorators give the cartesian product, in the order they are written (top first). Each combination adds
one bracket part to the node id, ``optimization[lr=0.1-data=~mnist]``, and ``name=value`` keywords for ``-k``.
``ids`` replaces the generated parts: a list of strings (one per value) or a function of the value (returning
``None`` keeps the generated part).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from machinable.config.strict import Declared
from machinable.errors import UsageError
from machinable.ids import scalar_text

__all__ = ["parametrize", "Parametrization", "Combination", "combinations"]

T = TypeVar("T")
ATTRIBUTE = "__machinable_parametrize__"
_MIXIN = re.compile(r"_[^\s_].*_")


def is_version_string(value: Any) -> bool:
    """``~name`` or ``_mixin_``: applied as a version rather than set as a value."""
    return isinstance(value, str) and (value.startswith("~") or _MIXIN.fullmatch(value) is not None)


def _flat(prefix: str, value: Any) -> Iterable[str]:
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            yield from _flat(f"{prefix}.{key}", item)
    else:
        yield f"{prefix}={scalar_text(value)}"


def _nest(path: str, value: Any) -> dict[str, Any]:
    result: Any = value
    for key in reversed(path.split(".")):
        result = {key: result}
    return result


@dataclass(frozen=True)
class Parametrization:
    """One ``@parametrize``: a key, its values and their id parts."""

    name: str
    values: tuple[Any, ...]
    ids: tuple[str, ...]

    def element(self, index: int) -> Any:
        """The version element for value ``index``: the version string itself, or ``{name: value}``."""
        value = self.values[index]
        # Declared: the component's own parametrization may add keys, like its named versions.
        return value if is_version_string(value) else Declared(_nest(self.name, value))

    def keywords(self, index: int) -> tuple[str, ...]:
        value = self.values[index]
        flat = (f"{self.name}={value}",) if is_version_string(value) else tuple(_flat(self.name, value))
        return flat if self.ids[index] in flat else (*flat, self.ids[index])


@dataclass(frozen=True)
class Combination:
    """One point of the cartesian product: its id part, version elements and keywords."""

    id: str
    elements: tuple[Any, ...]
    keywords: tuple[str, ...]


def _make_ids(name: str, values: Sequence[Any], ids: Any) -> tuple[str, ...]:
    generated = [
        f"{name}={v}" if is_version_string(v) else "-".join(_flat(name, v)) or f"{name}={{}}" for v in values
    ]
    if ids is None:
        return tuple(generated)
    if callable(ids):
        return tuple(
            g if (made := ids(v)) is None else str(made) for g, v in zip(generated, values, strict=True)
        )
    if isinstance(ids, str) or not isinstance(ids, Sequence):
        raise UsageError(f"parametrize('{name}'): ids must be a list of strings or a function, not {ids!r}")
    if len(ids) != len(values):
        raise UsageError(f"parametrize('{name}'): {len(ids)} ids for {len(values)} values")
    return tuple(g if i is None else str(i) for g, i in zip(generated, ids, strict=True))


def parametrize(
    name: str, values: Iterable[Any], ids: Sequence[str] | Callable[[Any], Any] | None = None
) -> Any:
    """Run a component once per value of configuration key ``name`` (see the module docstring)."""
    if not isinstance(name, str) or not name or any(not part for part in name.split(".")):
        raise UsageError(f"parametrize() takes a configuration key such as 'learning_rate', not {name!r}")
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Iterable):
        raise UsageError(f"parametrize('{name}') takes a list of values, not {values!r}")
    listed = tuple(values)
    if not listed:
        raise UsageError(f"parametrize('{name}') got no values")
    entry = Parametrization(name, listed, _make_ids(name, listed, ids))

    def mark(target: T) -> T:
        from machinable.components.component import is_component

        if not is_component(target):
            raise UsageError(
                f"@parametrize goes on a component (a machinable.Component class or an @component function), "
                f"not {target!r}; put it above @component"
            )
        # vars(): a subclass does not inherit its base's parametrizations (and cannot change them).
        current: tuple[Parametrization, ...] = vars(target).get(ATTRIBUTE, ())
        if any(p.name == name for p in current):
            raise UsageError(
                f"parametrize('{name}') is applied twice to {getattr(target, '__name__', target)}"
            )
        # Decorators apply bottom-up; prepending keeps the list in the order they are written.
        setattr(target, ATTRIBUTE, (entry, *current))
        return target

    return mark


def parametrizations(target: Any) -> tuple[Parametrization, ...]:
    try:
        return vars(target).get(ATTRIBUTE, ())
    except TypeError:  # objects without __dict__ carry no parametrization
        return ()


def combinations(target: Any) -> list[Combination]:
    """The cartesian product of ``target``'s parametrizations; ``[]`` when it has none."""
    params = parametrizations(target)
    if not params:
        return []
    result = []
    for indices in itertools.product(*(range(len(p.values)) for p in params)):
        result.append(
            Combination(
                id="-".join(p.ids[i] for p, i in zip(params, indices, strict=True)),
                elements=tuple(p.element(i) for p, i in zip(params, indices, strict=True)),
                keywords=tuple(k for p, i in zip(params, indices, strict=True) for k in p.keywords(i)),
            )
        )
    return result
