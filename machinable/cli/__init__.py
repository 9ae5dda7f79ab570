"""The ``machinable`` command line: argument parsing, ``-k`` selection and the ``.machinable_cache`` folder."""
