"""The configuration engine (DESIGN.md §3), one job per module.

- :mod:`~machinable.config.loader`: safe YAML loading with line numbers for messages;
- :mod:`~machinable.config.registry`: the ``components:`` / ``mixins:`` sections, names, aliases, groups;
- :mod:`~machinable.config.merge`: deep merge;
- :mod:`~machinable.config.versions`: the version algebra (dicts, ``~name``, ``_mixin_``, tuples, lists);
- :mod:`~machinable.config.references`: ``$self.`` / ``$.`` references and the final copy of a configuration;
- :mod:`~machinable.config.includes`: ``$/file.yaml`` includes;
- :mod:`~machinable.config.methods`: config methods (``key: double(21)``);
- :mod:`~machinable.config.importing`: importing component modules;
- :mod:`~machinable.config.view`: :class:`ConfigView`, attribute access for components.

:class:`machinable.config.project.Project` ties them together.
"""

from __future__ import annotations

from machinable.config.merge import deep_merge
from machinable.config.view import ConfigView

__all__ = ["ConfigView", "deep_merge"]
