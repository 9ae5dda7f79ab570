"""What users read: the terminal report, JUnit XML and ``show``; plugins over the hooks, reading storage only
through its public read-back API."""
