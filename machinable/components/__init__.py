"""What users write: ``Component`` and ``@component``, ``@fixture`` and ``@parametrize``."""
