"""Root test configuration: the shared server fixtures, and folders that hold projects rather than tests."""

# The S3 server (moto), the local Ray and a real single-node Slurm are started once per session by these
# fixture plugins.
pytest_plugins = ["tests.fixtures_s3", "tests.fixtures_ray", "tests.fixtures_slurm"]

# Example and benchmark projects are run by the tests, never collected as tests themselves.
collect_ignore = ["example_project", "benchmarks", "build"]
