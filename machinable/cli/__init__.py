"""The ``machinable`` command line (docs/cli.md).

``main`` parses the command line and builds the plugin manager, ``session`` runs collection, selection and the
execution; the features are built-in plugins over the hooks of ``machinable.hookspec``: ``select`` (``-k``),
``terminal`` (the report), ``junitxml`` (``--junitxml``) and ``cacheprovider`` (``--lf``, ``--ff``, ``--seed
last``, over ``cache``). ``expression`` is the ``-k`` language; collection itself lives in ``machinable.collection.collect``.
"""
