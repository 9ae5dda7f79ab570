"""Running stored trials again through the same pipeline: ``resume`` (into the stored execution), ``reproduce``
and the determinism check (into a scratch storage, then compared with :mod:`machinable.replay.compare`)."""
