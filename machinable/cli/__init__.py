"""The ``machinable`` command line (docs/cli.md): argument parsing only.

``main`` parses the command line, builds the plugin manager and dispatches; ``run`` turns a normal run's options
into a :class:`~machinable.execution.session.Session`; ``commands`` parses the ``reproduce``, ``resume`` and
``show`` sub-commands and prints their results. Nothing else in machinable imports this package.
"""
