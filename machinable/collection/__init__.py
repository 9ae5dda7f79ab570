"""Collection and selection: trials from a source (a Task, the project, a stored plan), then ``-k`` and ``--lf``.

The built-in plugin ``collection`` (``stage.py``) implements ``machinable_collection``; ``plan.py`` turns a Task
into trial specs, ``collect.py`` collects the project's components and task files, ``guard.py`` keeps imports
from running executions, ``select.py`` / ``expression.py`` are targets and ``-k``, ``cacheprovider.py`` is
``--lf`` / ``--ff`` over ``cache.py``.
"""
