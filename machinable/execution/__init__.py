"""Running trials: the ``Session`` pipeline, the run loop, the trial protocol, ``ml.execute`` and the engines.

``session.py`` drives every entry point through the hooks; ``loop.py`` (plugin ``runtrials``) and
``protocol.py`` (plugin ``protocol``) are the built-in stages; ``engines/`` run trial specs here, in worker
processes or on Ray.
"""
