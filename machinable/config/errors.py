"""Errors of the configuration engine.

All of them derive from :class:`machinable.errors.ConfigError`, so callers can catch one class; the subclasses
exist where callers (or Python protocols) need to tell them apart.
"""

from __future__ import annotations

from machinable.errors import CollectionError, ConfigError, UnknownVersionError


class ConfigKeyError(ConfigError, KeyError, AttributeError):
    """A missing configuration key.

    It is also a ``KeyError`` and an ``AttributeError`` so that ``hasattr``, ``getattr(view, key, default)`` and
    ``except KeyError`` keep working on a :class:`~machinable.config.view.ConfigView`.
    """

    def __init__(self, message: str, key: object = None) -> None:
        super().__init__(message)
        self.key = key

    def __str__(self) -> str:
        # KeyError.__str__ would show the message in quotes.
        return str(self.args[0]) if self.args else ""


class YamlSyntaxError(ConfigError):
    """A YAML file that cannot be parsed; the message starts with ``path:line:column``; ``problem`` is the
    message without that place."""

    def __init__(
        self, message: str, path: str, line: int | None = None, column: int | None = None, problem: str = ""
    ) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.column = column
        self.problem = problem or message


class UnknownMixinError(UnknownVersionError):
    """A mixin name (in ``_mixins_`` or a ``_name_`` version) that is not declared under ``mixins:``."""


class InheritanceCycleError(ConfigError):
    """``a^b`` and ``b^a`` (or a longer loop, or a mixin including itself)."""


class ConfigReferenceError(ConfigError):
    """A ``$.`` / ``$self.`` reference to a key that does not exist, or a loop of references."""


class IncludeError(ConfigError):
    """A ``$/path.yaml`` include whose file does not exist or cannot be read."""


class ConfigMethodError(ConfigError):
    """A config method call (``key: double(21)``) that is malformed, missing or fails."""


class ComponentImportError(ConfigError, CollectionError):
    """A component module that cannot be imported, or that holds no component."""


class UnknownKeyError(ConfigError):
    """A version or override names a configuration key the component does not have (``+key`` adds one)."""


class ConfigTypeError(ConfigError):
    """A version or override value that cannot stand for the type of the key's default."""
