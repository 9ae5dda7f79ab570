"""Bad input that used to end in a traceback or in silence (issue 17): storage that cannot be written, YAML that
PyYAML turns into Python exceptions, and output that cannot be written. Each ends in one line naming the
problem, exit code 4 (a MachinableError from ``ml.execute``), and nothing runs."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from cli_helpers import run_inprocess, run_subprocess, write_project

import machinable as ml
from machinable.config.errors import YamlSyntaxError
from machinable.config.loader import ALIAS_LIMIT, load_file, load_text
from machinable.errors import MachinableError, StorageError
from machinable.reporting.terminalwriter import TerminalWriter
from machinable.storage import open_storage

# The component leaves a file behind when it runs: "nothing ran" is then a fact, not an absent line.
RUNNER = """\
from pathlib import Path

import machinable as ml


class Runner(ml.Component):
    def on_execute(self):
        Path(__file__).with_name("ran").write_text("yes")
        print("ran")
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_project(tmp_path / "project", "components:\n  - runner\n", {"runner.py": RUNNER})


@pytest.fixture
def cli(capsys, root):
    return lambda *args: run_inprocess(capsys, root, *args)


def _one_line_error(result, *parts: str) -> str:
    """The command's error: exit 4, one ERROR line naming ``parts``, no traceback."""
    assert result.ret == 4, (result.out, result.err)
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), result.err
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


# Item 10: storage that cannot be written is refused before any trial runs.


def test_a_storage_path_that_is_a_file(cli, root: Path):
    (root / "results").write_text("keep me")
    line = _one_line_error(cli("--storage", str(root / "results")), "is a file, not a folder", "--storage")
    assert str(root / "results") in line
    assert (root / "results").read_text() == "keep me" and not (root / "ran").exists()


def test_a_storage_path_under_a_file_from_ml_execute(root: Path):
    (root / "afile").write_text("keep me")
    with pytest.raises(StorageError, match="afile' is a file, not a folder"):
        ml.execute("runner", storage=str(root / "afile" / "results"), project=root, echo=False)
    assert (root / "afile").read_text() == "keep me" and not (root / "ran").exists()


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc (Linux)")
def test_a_storage_folder_that_cannot_be_created(cli, root: Path):
    # chmod does not stop root; /proc refuses new folders to everyone.
    _one_line_error(cli("--storage", "/proc/machinable-x"), "cannot create the folder '/proc/machinable-x'")
    assert not (root / "ran").exists()


def test_http_storage_is_read_only(cli, root: Path):
    pytest.importorskip("aiohttp")
    _one_line_error(cli("--storage", "http://127.0.0.1:9/results"), "is read-only", "http")
    assert not (root / "ran").exists()


def test_the_check_leaves_nothing_behind(tmp_path: Path):
    location = open_storage(tmp_path / "results")
    location.check_writable()
    assert os.listdir(tmp_path / "results") == []
    open_storage(None).check_writable()  # memory: nothing to check


def test_collect_only_does_not_need_writable_storage(cli, root: Path):
    (root / "results").write_text("keep me")
    assert cli("--collect-only", "--storage", str(root / "results")).ret == 0


def test_an_s3_endpoint_that_is_down(cli, root: Path, monkeypatch):
    pytest.importorskip("s3fs")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    _one_line_error(
        cli("--storage", "s3://bucket/prefix"), "cannot connect to the S3 endpoint http://127.0.0.1:9"
    )
    assert not (root / "ran").exists()


@pytest.mark.slow
def test_an_s3_bucket_that_does_not_exist(s3_server, root: Path):
    target = {**s3_server.target(), "url": "s3://no-such-bucket-here/prefix"}
    with pytest.raises(StorageError, match="the bucket 'no-such-bucket-here' does not exist"):
        ml.execute("runner", storage=target, project=root, echo=False)
    assert not (root / "ran").exists()


@pytest.mark.slow
def test_s3_without_credentials(s3_server, cli, root: Path, monkeypatch, request):
    import s3fs

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(root / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(root / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    # fsspec reuses instances by their options, not the environment: neither test may see the other's.
    s3fs.S3FileSystem.clear_instance_cache()
    request.addfinalizer(s3fs.S3FileSystem.clear_instance_cache)
    _one_line_error(cli("--storage", s3_server.url()), "no credentials found", "AWS_ACCESS_KEY_ID")
    assert not (root / "ran").exists()


# Item 11: YAML that PyYAML turns into Python exceptions (or endless values) is a YamlSyntaxError.


def test_a_yaml_file_that_is_not_utf8(tmp_path: Path):
    path = tmp_path / "machinable.yaml"
    path.write_bytes("components:\n  - läufer\n".encode("latin-1"))
    with pytest.raises(YamlSyntaxError, match=r"machinable.yaml:2:6: byte 0xe4 is not UTF-8 text") as info:
        load_file(path)
    assert info.value.line == 2


def test_a_project_file_that_is_not_utf8_on_the_command_line(cli, root: Path):
    (root / "machinable.yaml").write_bytes("components:\n  - runner:\n      name: läufer\n".encode("latin-1"))
    _one_line_error(cli(), "machinable.yaml:3:", "not UTF-8")
    assert not (root / "ran").exists()


@pytest.mark.parametrize("text", ["a: &a [*a]\n", "a: &a {b: *a}\n", "x: 1\na: &a\n  - b: [1, *a]\n"])
def test_an_alias_inside_its_own_anchor(text: str):
    with pytest.raises(YamlSyntaxError, match=r"^m.yaml:\d+:\d+: an alias inside its own anchor"):
        load_text(text, "m.yaml")


def test_a_billion_laughs_is_refused_with_its_line():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    with pytest.raises(YamlSyntaxError, match=f"more than {ALIAS_LIMIT:,} values") as info:
        load_text("\n".join(lines) + "\n", "m.yaml")
    assert info.value.line == 6  # 9**5 values: the first line past the limit


def test_aliases_within_the_limit_still_work():
    data = load_text("base: &b {lr: 0.1}\nx: *b\ny: {<<: *b, n: 2}\n").data
    assert data == {"base": {"lr": 0.1}, "x": {"lr": 0.1}, "y": {"lr": 0.1, "n": 2}}


def test_nesting_too_deep_is_an_error_not_a_recursion_error():
    # PyYAML 6.0.4's own depth limit names the line and column first; machinable's catches it before that
    with pytest.raises(
        YamlSyntaxError,
        match=r"^m.yaml(:\d+:\d+)?: invalid YAML: (nested too deeply|exceeded maximum nesting depth)",
    ):
        load_text("a: " + "[" * 5000 + "]" * 5000 + "\n", "m.yaml")


@pytest.mark.parametrize("value", ["2001-02-30", "!!int abc", "!!float abc"])
def test_values_python_cannot_read_name_their_line(value: str):
    with pytest.raises(YamlSyntaxError, match=r"^m.yaml:2:4: invalid YAML: cannot read the value"):
        load_text(f"x: 1\na: {value}\n", "m.yaml")


# Item 12: output that cannot be written.


def test_junitxml_pointing_at_a_folder_is_a_usage_error_before_running(cli, root: Path):
    (root / "reports").mkdir()
    _one_line_error(cli("--junitxml", str(root / "reports")), "--junitxml", "is a folder")
    assert not (root / "ran").exists() and os.listdir(root / "reports") == []


def test_junitxml_under_a_file_is_a_usage_error(cli, root: Path):
    (root / "afile").write_text("keep me")
    _one_line_error(cli("--junitxml", str(root / "afile" / "junit.xml")), "afile' is a file, not a folder")
    assert (root / "afile").read_text() == "keep me" and not (root / "ran").exists()


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc (Linux)")
def test_junitxml_in_a_folder_that_cannot_be_created(cli, root: Path):
    _one_line_error(cli("--junitxml", "/proc/machinable-x/junit.xml"), "cannot create the folder")
    assert not (root / "ran").exists()


def test_the_terminal_writer_escapes_what_the_encoding_cannot_show():
    stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    writer = TerminalWriter(stream, color=False)
    writer.line("läufer passed")
    stream.flush()
    assert stream.buffer.getvalue() == b"l\\xe4ufer passed\n"


def test_a_report_on_an_ascii_terminal_does_not_crash(tmp_path: Path):
    root = write_project(
        tmp_path / "project",
        "components:\n  - runner:\n      name: läufer\n",
        {
            "runner.py": RUNNER,
            "tasks/läufer.py": 'import machinable as ml\n\ntask = ml.Task().component("runner")\n',
        },
    )
    result = run_subprocess(root, "-v", PYTHONIOENCODING="ascii")
    assert result.ret == 0, result.err
    assert "tasks/l\\xe4ufer.py::runner PASSED" in result.out and "Traceback" not in result.err


def test_errors_are_machinable_errors():
    # ml.execute callers catch one base class for all of the above.
    assert issubclass(StorageError, MachinableError) and issubclass(YamlSyntaxError, MachinableError)
