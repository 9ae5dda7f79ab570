"""The ``slurm`` engine: pull workers in Slurm job arrays that take trials from shared storage.

``options`` validates what the user wrote, ``script`` renders the ``sbatch`` script of one array, ``commands``
runs ``sbatch`` / ``squeue`` / ``scancel``, ``batches`` keeps what a submission's workers need in storage,
``engine`` is the controller (submit, follow, cancel, detach), ``follow`` turns storage into results, and
``worker`` is what each array task runs (``python -m machinable worker``).
"""
