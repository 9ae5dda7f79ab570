"""``machinable [TARGETS]``: parse the command line, set up plugins, run a session; or dispatch a sub-command.

Start-up order (pytest's): ``-p`` and ``--project`` are read first, the plugin manager is built (built-ins,
entry points, ``-p NAME``, minus ``-p no:NAME``), the project's ``machinable_conf.py`` is registered as a plugin,
every plugin adds its options (``machinable_addoption``), the whole command line is parsed, plugins are
configured and the session runs. Exit codes: 0 all passed, 1 some failed, 2 interrupted (or collection errors),
3 internal error, 4 usage error, 5 nothing collected or selected.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from machinable import __version__
from machinable.errors import MachinableError, UsageError, did_you_mean
from machinable.execution.options import Config, ExitCode

if TYPE_CHECKING:
    import pluggy

__all__ = ["Config", "ExitCode", "console_main", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a mistake as a UsageError (one line, exit 4) instead of exiting with 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def _repeat(text: str) -> int:
    from machinable.collection.task import MAX_REPEAT

    value = _positive_int(text)
    if value > MAX_REPEAT:
        raise argparse.ArgumentTypeError(f"at most {MAX_REPEAT:,} repeats, got {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value > 0 and math.isfinite(value)):  # 'inf' would arm no alarm, 'nan' an invalid one
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _add_common(parser: argparse.ArgumentParser) -> None:
    """Options every invocation understands, read before the plugins exist."""
    parser.add_argument(
        "-p",
        dest="plugins",
        action="append",
        default=[],
        metavar="NAME",
        help="load plugin module NAME; '-p no:NAME' disables the plugin NAME (e.g. -p no:junitxml)",
    )
    parser.add_argument(
        "--project",
        metavar="DIR",
        help="the project folder (default: found upward from the working directory)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The parser of a normal run, before plugins add their options."""
    parser = _Parser(
        prog="machinable",
        usage="machinable [options] [TARGETS ...] [KEY=VALUE ...]\n       machinable SUBCOMMAND ...",
        description="Collect a project's components and task files into trials and run them.",
        epilog="TARGETS: a component name, a node id (optimization[~mnist]), a module path or a task file "
        "(tasks/example.py, tasks/example.py::optimization). See docs/cli.md.",
        allow_abbrev=False,
    )
    parser.add_argument(
        "targets",
        nargs="*",
        metavar="TARGETS|OVERRIDES",
        help="what to run (default: the whole project), and overrides: key=value, +key=value, ~key, "
        "key=a,b (a sweep), key=range(0,1,0.25)",
    )
    parser.add_argument("--version", action="version", version=f"machinable {__version__}")
    _add_common(parser)
    _add_run_options(parser)
    _add_engine_options(parser)
    return parser


def _add_engine_options(parser: argparse.ArgumentParser) -> None:
    """Options for the engine beyond its name (``--engine``)."""
    run = parser.add_argument_group("engine")
    run.add_argument(
        "-E",
        "--engine-option",
        dest="engine_options",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option of the engine (YAML value), e.g. -E partition=gpu -E max_parallel=8",
    )
    run.add_argument(
        "--detach",
        action="store_true",
        help="submit and exit: the trials run on without this process (slurm); follow with show --follow",
    )
    run.add_argument(
        "--requeue",
        type=_positive_int,
        metavar="N",
        help="resubmit a preempted trial up to N times, from its checkpoint (slurm)",
    )


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """What a normal run collects, how it runs the trials and where it keeps results."""
    run = parser.add_argument_group("collection and running")
    run.add_argument(
        "--collect-only",
        "--co",
        dest="collect_only",
        action="store_true",
        help="list the trials that would run, run nothing",
    )
    run.add_argument(
        "--cfg",
        action="store_true",
        help="print each selected trial's resolved configuration as YAML (--json: JSON), run nothing",
    )
    run.add_argument(
        "--json",
        action="store_true",
        help="with --collect-only: print the trials as JSON (config, seed, ...); with --cfg: the configurations",
    )
    run.add_argument(
        "-x",
        "--exitfirst",
        dest="maxfail",
        action="store_const",
        const=1,
        help="stop after the first failed trial",
    )
    run.add_argument("--maxfail", type=_positive_int, metavar="N", help="stop after N failed trials")
    run.add_argument(
        "--seed",
        metavar="N|ID|last",
        help="global seed: an integer, an execution id (e.g. OY1p1o) or 'last' (the last run's); default: random",
    )
    run.add_argument(
        "--storage", metavar="URL", help="where results are kept: a path or fsspec URL (default: memory)"
    )
    run.add_argument("--repeat", type=_repeat, default=1, metavar="N", help="run every trial N times")
    run.add_argument(
        "--engine", metavar="NAME", help="local (default), process[:N], ray, or an engine a plugin provides"
    )
    run.add_argument(
        "--timeout", type=_positive_float, metavar="S", help="default per-trial timeout in seconds"
    )
    run.add_argument(
        "-s",
        dest="echo",
        action="store_true",
        help="show trial output live (by default it is stored and shown for failed trials only)",
    )
    run.add_argument(
        "--continue-on-collection-errors",
        action="store_true",
        help="run the trials that were collected even if some modules or components had errors",
    )


def _preparse(args: list[str]) -> argparse.Namespace:
    pre = _Parser(add_help=False, allow_abbrev=False)
    _add_common(pre)
    known, _ = pre.parse_known_args(args)
    return known


def _split_plugins(names: list[str]) -> tuple[list[str], list[str]]:
    enabled, disabled = [], []
    for name in names:
        if name.startswith("no:"):
            disabled.append(name[3:])
        else:
            enabled.append(name)
    return enabled, disabled


def _find_root(project: str | None) -> tuple[Path | None, MachinableError | None]:
    from machinable.config.project import find_root

    try:
        return find_root(project), None
    except MachinableError as exc:
        return None, exc


def _first_word(args: list[str]) -> str | None:
    """The first argument that is not a common option (``-p NAME``, ``--project DIR``) or its value."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("-p", "--project"):
            skip = True
        elif not (arg.startswith("-p") or arg.startswith("--project=")):
            return None if arg.startswith("-") else arg
    return None


def _descending_sort(args: list[str]) -> list[str]:
    """``--sort -loss`` as ``--sort=-loss``: argparse would read ``-loss`` as an option of its own."""
    joined: list[str] = []
    for arg in args:
        if joined and joined[-1] == "--sort" and arg.startswith("-") and arg[1:2].isalpha():
            joined[-1] = f"--sort={arg}"
        else:
            joined.append(arg)
    return joined


def _misspelled_subcommand(error: UsageError, word: str | None, subcommands: Any) -> UsageError:
    """``machinable shwo``: a first word that is no target (collection found no component, module or task file
    of that name) and is close to a sub-command's name is a typo of the sub-command."""
    hint = did_you_mean(word, subcommands) if word is not None and subcommands else ""
    if not hint or not str(error).startswith(f"unknown target '{word}'"):
        return error
    return UsageError(f"unknown sub-command '{word}'{hint}; it is no component, module or task file either")


def _subcommand_parser(pm: pluggy.PluginManager) -> tuple[argparse.ArgumentParser, Any]:
    parser = _Parser(prog="machinable", allow_abbrev=False)
    _add_common(parser)
    subparsers = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", parser_class=_Parser)
    pm.hook.machinable_subcommands(subparsers=subparsers)
    return parser, subparsers


def _main(args: list[str]) -> int:
    from machinable.cli.run import run_session
    from machinable.plugins import create_plugin_manager

    early = _preparse(args)
    enabled, disabled = _split_plugins(early.plugins)
    root, root_error = _find_root(early.project)
    if enabled and root is not None and str(root) not in sys.path:
        # Collection imports the project's modules from its root; '-p NAME' finds a plugin module there too,
        # whether the command runs as the console script or as 'python -m machinable' (which adds the cwd).
        sys.path.insert(0, str(root))
    pm = create_plugin_manager(plugins=enabled, disabled=disabled)
    if root is not None and "machinable_conf" not in disabled:
        from machinable.collection.guard import import_conf

        conf = import_conf(root)
        if conf is not None and not pm.is_registered(conf):
            pm.register(conf, name="machinable_conf")

    sub_parser, subparsers = _subcommand_parser(pm)
    if _first_word(args) in subparsers.choices:
        option, extra = sub_parser.parse_known_args(_descending_sort(args))
        if extra and not getattr(option, "run_arguments", False):
            raise UsageError(f"unrecognized arguments: {' '.join(extra)}")
        run = getattr(option, "run", None)
        if not callable(run):
            raise UsageError(
                f"sub-command '{option.subcommand}' did not set a run function (set_defaults(run=...))"
            )
        config = Config(option, pm, root, args)
        if getattr(option, "run_arguments", False):
            return int(run(config))  # it parses and configures the run's arguments itself (run_parser)
        return _configured(config, lambda: int(run(config)))

    parser = build_parser()
    if subparsers.choices:
        parser.epilog = (parser.epilog or "") + f" Sub-commands: {', '.join(sorted(subparsers.choices))}."
    pm.hook.machinable_addoption(parser=parser)
    option = parser.parse_args(args[1:] if args[:1] == ["--"] else args)
    if root is None:
        assert root_error is not None
        raise root_error
    config = Config(option, pm, root, args)
    try:
        return _configured(config, lambda: run_session(config))
    except UsageError as exc:
        better = _misspelled_subcommand(exc, _first_word(args), subparsers.choices)
        if better is exc:
            raise
        raise better from None


def run_parser(pm: pluggy.PluginManager, prog: str) -> argparse.ArgumentParser:
    """The parser of a run with every plugin's options, for a sub-command that takes what a run takes
    (``set_defaults(run_arguments=True)``: ``machinable plan``)."""
    parser = build_parser()
    parser.prog = prog
    pm.hook.machinable_addoption(parser=parser)
    return parser


def _configured(config: Config, body: Any) -> int:
    config.pm.hook.machinable_configure(config=config)
    try:
        return body()
    finally:
        config.pm.hook.machinable_unconfigure(config=config)


def main(args: list[str] | None = None) -> int:
    """Run the command in this process and return its exit code (tests call this)."""
    argv = list(sys.argv[1:] if args is None else args)
    try:
        return _main(argv)
    except MachinableError as exc:
        # Bad input: one line, no traceback of our internals.
        _flush()
        print(f"ERROR: {exc}", file=sys.stderr)
        return ExitCode.USAGE_ERROR
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else ExitCode.USAGE_ERROR)
    except KeyboardInterrupt:
        _flush()
        print("\n!!! interrupted !!!", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # `machinable | head`: the reader went away; stop writing, do not report a crash.
        _silence_stdout()
        return ExitCode.INTERRUPTED
    except Exception:
        _flush()
        print(
            "INTERNAL ERROR: machinable crashed; please report this with the traceback below.",
            file=sys.stderr,
        )
        traceback.print_exc()
        return ExitCode.INTERNAL_ERROR


def _flush() -> None:
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass


def _silence_stdout() -> None:
    # Python flushes stdout at exit; a closed pipe would make that flush print a second error.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def console_main() -> None:
    """The ``machinable`` console script."""
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    sys.exit(code)
