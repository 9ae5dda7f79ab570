"""Plugins: a plugin adds an option, changes collection and adds to the report; -p, -p no:, entry points."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from cli_helpers import FLAKY, run_inprocess, run_subprocess, write_project

import machinable as ml
from machinable.plugins import create_plugin_manager

YAML = """
components:
  - flaky:
      fail: false
  - slow_flaky:
      fail: false
"""

# The test plugin: --fast-only drops trials whose node id says "slow", a header line and a summary section.
FAST_PLUGIN = """
import machinable as ml


@ml.hookimpl
def machinable_addoption(parser):
    parser.add_argument("--fast-only", action="store_true", help="skip trials named slow")


@ml.hookimpl
def machinable_collect_modifyitems(config, items):
    if config.option.fast_only:
        slow = [item for item in items if "slow" in item.node_id]
        items[:] = [item for item in items if item not in slow]
        config.pm.hook.machinable_deselected(items=slow)


@ml.hookimpl
def machinable_report_header(config):
    return "fast plugin: " + ("on" if config.option.fast_only else "off")


@ml.hookimpl
def machinable_terminal_summary(reporter, exitstatus):
    reporter.section("fast plugin")
    reporter.line(f"exit status {exitstatus}")
"""

SUBCOMMAND_PLUGIN = """
def run(config):
    print(f"hello {config.option.name} from {config.root.name}")
    return 7


def machinable_subcommands(subparsers):
    hello = subparsers.add_parser("hello", help="say hello")
    hello.add_argument("--name", default="world")
    hello.set_defaults(run=run)
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_project(
        tmp_path / "project",
        YAML,
        {"flaky.py": FLAKY, "slow_flaky.py": FLAKY.replace("class Flaky", "class SlowFlaky")},
    )


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch) -> Path:
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "fast_plugin.py").write_text(FAST_PLUGIN)
    (folder / "hello_plugin.py").write_text(SUBCOMMAND_PLUGIN)
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    for name in ("fast_plugin", "hello_plugin"):
        sys.modules.pop(name, None)


@pytest.fixture
def cli(capsys, root):
    return lambda *args: run_inprocess(capsys, root, *args)


def test_a_plugin_adds_an_option_changes_collection_and_adds_to_the_report(cli, plugin_dir):
    result = cli("-p", "fast_plugin", "--fast-only")
    assert result.ret == 0
    assert "fast plugin: on" in result.out
    assert "collected 2 trials / 1 deselected / 1 selected" in result.out
    assert "=== fast plugin ===" in result.out
    assert "exit status 0" in result.out
    assert "1 passed, 1 deselected" in result.lines[-1]


def test_the_plugins_option_appears_in_help(cli, plugin_dir):
    assert "--fast-only" in cli("-p", "fast_plugin", "--help").out


def test_without_the_plugin_its_option_is_unknown(cli):
    result = cli("--fast-only")
    assert result.ret == 4
    assert "unrecognized arguments: --fast-only" in result.err


def test_machinable_conf_is_a_plugin_and_needs_no_markers(cli, root):
    (root / "machinable_conf.py").write_text(FAST_PLUGIN.replace("@ml.hookimpl\n", ""))
    result = cli("--fast-only", "-q")
    assert result.ret == 0
    assert "1 passed, 1 deselected" in result.lines[-1]


def test_plugins_from_entry_points_are_loaded(cli, plugin_dir):
    dist = plugin_dir / "fast_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fast-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[machinable]\nfast = fast_plugin\n")
    assert "fast plugin: off" in cli().out
    assert "fast plugin" not in cli("-p", "no:fast").out  # an entry point is disabled by its name


def test_p_no_disables_a_builtin_plugin(cli, tmp_path):
    assert cli("-p", "no:terminal").out == ""
    assert cli("-p", "no:terminal", "--co", "--json").out == ""  # the listing is the terminal's too
    result = cli("-p", "no:junitxml", "--junitxml", str(tmp_path / "x.xml"))
    assert result.ret == 4
    assert "unrecognized arguments: --junitxml" in result.err


def test_without_the_terminal_a_failing_run_is_silent_but_keeps_its_exit_code(capsys, tmp_path):
    root = write_project(
        tmp_path / "project", "components:\n  - flaky:\n      fail: true\n", {"flaky.py": FLAKY}
    )
    result = run_inprocess(capsys, root, "-p", "no:terminal")
    assert (result.ret, result.out) == (1, "")


def test_p_loads_a_plugin_module_from_the_project_root_in_the_console_script(root):
    # The console script's sys.path does not hold the working directory (python -m does); the root counts.
    (root / "header_plugin.py").write_text(
        "def machinable_report_header(config):\n    return 'hello header'\n"
    )
    result = run_subprocess(root, "-p", "header_plugin", "--co", script=True)
    assert result.ret == 0, result.err
    assert "hello header" in result.out


@pytest.mark.parametrize(
    "source, message",
    [
        ("def (\n", "SyntaxError: invalid syntax (broken_plugin.py, line 1)"),
        ("x = 1\nraise RuntimeError('no')\n", "RuntimeError: no (broken_plugin.py, line 2)"),
    ],
)
def test_a_plugin_that_fails_to_import_is_a_usage_error_naming_where(cli, root, source, message):
    (root / "broken_plugin.py").write_text(source)
    try:
        result = cli("-p", "broken_plugin")
    finally:
        sys.modules.pop("broken_plugin", None)
    assert result.ret == 4
    assert result.err == f"ERROR: plugin 'broken_plugin' cannot be imported: {message}\n"


def test_a_plugin_adds_a_subcommand(cli, plugin_dir):
    result = cli("-p", "hello_plugin", "hello", "--name", "ada")
    assert result.ret == 7
    assert result.out == "hello ada from project\n"


def test_a_normal_run_is_unaffected_by_subcommands(cli, plugin_dir):
    assert cli("-p", "hello_plugin", "-q").ret == 0
    result = cli("-p", "hello_plugin", "--", "hello")  # after --, 'hello' is a target again
    assert result.ret == 4
    assert "unknown target 'hello'" in result.err


def test_ml_execute_stays_silent_although_the_report_plugins_are_installed(capsys, root):
    pm = create_plugin_manager()
    assert pm.has_plugin("terminal") and pm.has_plugin("junitxml")
    execution = ml.execute("flaky", project=root, echo=False, plugins=pm)
    assert execution.trials[0].status == "passed"
    assert capsys.readouterr().out == ""


def test_every_hook_is_documented():
    from machinable import hookspec

    docs = (Path(__file__).parent.parent / "docs" / "plugins.md").read_text()
    for name in dir(hookspec):
        if name.startswith("machinable_"):
            assert textwrap.dedent(getattr(hookspec, name).__doc__ or "").strip(), name
            assert f"`{name}(" in docs, f"{name} is missing from docs/plugins.md"


def test_every_option_of_the_command_and_every_subcommand_is_documented():
    from machinable.cli.main import _subcommand_parser, build_parser

    pm = create_plugin_manager()
    parser = build_parser()
    pm.hook.machinable_addoption(parser=parser)
    docs = (Path(__file__).parent.parent / "docs" / "cli.md").read_text()
    for action in parser._actions:
        for flag in action.option_strings:
            assert f"`{flag}" in docs, f"{flag} is missing from docs/cli.md"
    for name in _subcommand_parser(pm)[1].choices:
        assert f"`machinable {name}" in docs, f"sub-command {name} is missing from docs/cli.md"
