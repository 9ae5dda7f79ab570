"""``machinable report`` and ``ml.report`` (docs/results.md, "The report"): one self-contained HTML file with the
executions' facts, the grouped table, a curve per metric with bands over the seeds, final values against the
swept keys and the failures grouped by error; downsampling; bad input; ``--open``. No browser here: the page is
read as text and its figures as the JSON the page hands to plotly.js (tests/test_report_browser.py opens it)."""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import statistics
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from cli_helpers import clean_env, run_inprocess, write_project
from plotly.offline import get_plotlyjs

import machinable as ml
from machinable.errors import MachinableError, UsageError
from machinable.reporting.report import MissingPlotly
from machinable.reporting.report_page import code_version
from machinable.reporting.report_plots import (
    MAX_POINTS,
    downsample,
    downsample_indices,
    trial_cap,
    trial_traces,
)
from machinable.reporting.results import table
from machinable.reporting.show import cell, when
from machinable.storage import select_entries

ROOT = Path(__file__).resolve().parent.parent

YAML = """\
settings:
  storage: ./results
components:
  - fit:
      lr: 0.1
      fail: ''
      fail_from: 0
      rows: 4
      data: {name: mnist}
"""

# The metrics depend on the seed, so the repeats of a configuration differ; with ``fail`` set, the repeats from
# ``fail_from`` on fail with ValueError(fail) after recording their rows.
FIT = """\
import random

import machinable as ml


class Fit(ml.Component):
    def on_execute(self):
        noise = random.Random(self.seed).random()
        for step in range(self.config.rows):
            self.record["loss"] = self.config.lr / (step + 1) + noise
            self.record["acc"] = 1 - noise / (step + 1)
            self.record["_hidden"] = step
            self.record.save()
        if self.config.fail and self.flags.get("REPEAT_NUMBER") >= self.config.fail_from:
            raise ValueError(self.config.fail)
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = write_project(tmp_path / "project", YAML, {"fit.py": FIT})
    monkeypatch.chdir(root)
    return root


def sweep(*extra: dict) -> ml.Task:
    """3 seeds x 2 learning rates (and ``extra`` versions, 3 seeds each)."""
    task = ml.Task().component("fit", "lr=0.1,0.5")
    for version in extra:
        task.component("fit", version)
    return task.repeat(3)


@pytest.fixture
def runs(project):
    """On local disk: the sweep (seed 1), and the sweep plus two configurations that fail, two trials with one
    error and one with another (seed 2)."""
    results = project / "results"
    a = ml.execute(sweep(), storage=str(results), seed=1, echo=False)
    failing = (
        {"lr": 0.9, "fail": "diverged", "fail_from": 1},
        {"lr": 0.7, "fail": "exploded", "fail_from": 2},
    )
    b = ml.execute(sweep(*failing), storage=str(results), seed=2, echo=False)
    return results, a.folder, b.folder


def figures(html: str) -> dict[str, dict]:
    """The figures the page hands to plotly.js, by plot div id."""
    found = re.search(r"^var FIGURES = (.*);?$", html, re.MULTILINE)
    assert found, "no figures in the page"
    return json.loads(found.group(1).rstrip(";"))


class _Tables(HTMLParser):
    """Every table's rows of cells: (text, data-value), by table id (or class)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[tuple[str, str | None]]]] = {}
        self.current: list | None = None
        self.cell: list[str] | None = None
        self.value: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.current = self.tables.setdefault(attrs.get("id") or attrs.get("class") or "", [])
        elif tag == "tr" and self.current is not None:
            self.current.append([])
        elif tag in ("td", "th") and self.current is not None:
            self.cell, self.value = [], attrs.get("data-value")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.current[-1].append(("".join(self.cell).strip(), self.value))
            self.cell = None
        elif tag == "table":
            self.current = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def tables(html: str) -> dict[str, list[list[tuple[str, str | None]]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def write(execution, tmp_path: Path, name: str = "report.html", **options) -> str:
    path = ml.report(execution, tmp_path / name, **options)
    assert path == tmp_path / name and path.is_file()
    return path.read_text(encoding="utf-8")


# -- the page ------------------------------------------------------------------------------------------------


def test_the_report_is_one_file_that_needs_no_network(runs, tmp_path):
    results, a, _ = runs
    html = write(a, tmp_path, storage=str(results))
    assert re.search(r"<script\b[^>]*\bsrc\s*=", html, re.IGNORECASE) is None
    assert re.search(r"<link\b", html, re.IGNORECASE) is None
    assert re.search(r"<(img|iframe|object|embed|audio|video|source)\b", html, re.IGNORECASE) is None
    # plotly.js inline, once; nothing else in the page names a network address.
    plotlyjs = get_plotlyjs()
    assert html.count(plotlyjs) == 1
    rest = html.replace(plotlyjs, "")
    assert "http://" not in rest and "https://" not in rest and "url(" not in rest
    assert re.search(r"<title>machinable report [^<]*</title>", html)


def test_the_header_names_the_execution_and_its_code_version(runs, tmp_path):
    results, a, _ = runs
    html = write(a, tmp_path, storage=str(results))
    stored = ml.Storage(str(results)).get(a)
    [head, row] = tables(html)["facts"]
    facts = dict(zip([h for h, _ in head], [c for c, _ in row], strict=True))
    assert facts["execution"] == a and facts["seed"] == str(stored.seed)
    assert facts["project"] == stored.info["project"] and facts["code version"] == "not a git work tree"
    assert facts["started"] == when(stored.started) and facts["finished"].startswith(when(stored.finished))
    assert facts["engine"] == "local" and facts["host"] == stored.info["host"]
    assert f"storage {results}" in html
    assert "6 trials: <span class='status passed'>6 passed</span>" in html


def test_the_code_version_is_the_git_commit_and_whether_the_tree_was_dirty(project, tmp_path):
    env = {**clean_env(), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@t"
    for command in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "first"]):
        subprocess.run(["git", *command], cwd=project, env=env, check=True, capture_output=True)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True, check=True
    ).stdout.strip()
    clean = write(ml.execute(sweep(), seed=1, echo=False), tmp_path, "clean.html")
    assert f"<td>{commit[:12]} (" in clean and "), clean</td>" in clean
    (project / "fit.py").write_text(FIT + "\n# changed\n")
    dirty = write(ml.execute(sweep(), seed=1, echo=False), tmp_path, "dirty.html")
    assert f"<td>{commit[:12]} (" in dirty and "), dirty</td>" in dirty
    assert (
        code_version({"code_version": {"commit": "a" * 40, "branch": None, "dirty": True}})
        == "a" * 12 + ", dirty"
    )
    assert code_version({}) == "not a git work tree"


def test_the_table_has_a_row_per_configuration_with_sortable_values(runs, tmp_path):
    results, _, b = runs
    html = write(b, tmp_path, storage=str(results))
    assert "<table id='results' class='sortable'>" in html
    head, *rows = tables(html)["results"]
    expected = table(ml.Storage(str(results)).get(b).results())
    assert [title for title, _ in head] == expected.headers
    assert len(rows) == len(expected.rows) == 4
    for shown, row in zip(rows, expected.rows, strict=True):
        assert [text for text, _ in shown] == [cell(row.values[c.name], None) for c in expected.columns]
        loss = row.values["loss"]
        assert dict(zip(expected.headers, shown, strict=True))["loss"][1] == repr(loss.mean)
    # The failed trials count, their values do not (the mean is over the passed trials).
    by_lr = {r[0][0]: dict(zip([h for h, _ in head], [t for t, _ in r], strict=True)) for r in rows}
    assert (by_lr["0.9"]["N"], by_lr["0.9"]["FAILED"]) == ("3", "2")
    assert "common: <code>component=fit</code>" in html


def test_a_curve_per_metric_with_a_band_over_the_seeds_and_each_trial_on_a_click(runs, tmp_path):
    results, a, _ = runs
    html = write(a, tmp_path, storage=str(results))
    found = figures(html)
    assert html.count("<div class='plot'") == len(found) == 4  # 2 curves, 2 metrics x 1 swept key
    curves = [f for f in found.values() if f["layout"]["title"]["text"] in ("loss", "acc")]
    assert [f["layout"]["title"]["text"] for f in curves] == ["loss", "acc"]
    trials = {t.uid: t for t in ml.Storage(str(results)).get(a).trials}
    loss = curves[0]
    means = [t for t in loss["data"] if t.get("fill") is None]
    bands = [t for t in loss["data"] if t.get("fill") in ("toself", "tonexty")]
    assert [t["name"] for t in means] == ["lr=0.1", "lr=0.5"] and len(bands) == 2
    for mean, band in zip(means, bands, strict=True):
        lr = float(mean["name"].split("=")[1])
        column = [[r["loss"] for r in t.records] for t in trials.values() if t.config["lr"] == lr]
        assert mean["x"] == [0, 1, 2, 3]
        for step in range(4):
            values = [c[step] for c in column]
            assert mean["y"][step] == pytest.approx(statistics.mean(values), rel=1e-5)
            upper, lower = band["y"][step], band["y"][-1 - step]
            assert upper - lower == pytest.approx(2 * statistics.stdev(values), rel=1e-4)
    # Each trial's own line: hidden until its configuration's one legend entry is clicked.
    lines = trial_traces(loss)
    assert len(lines) == 6 and all(t["visible"] == "legendonly" for t in lines)
    assert [t["name"] for t in lines if t["showlegend"]] == ["lr=0.1 · trials (3)", "lr=0.5 · trials (3)"]
    node_ids = {t.node_id for t in trials.values()}
    assert {re.search(r"<extra>(.*) \(seed", t["hovertemplate"]).group(1) for t in lines} == node_ids
    # The linear / log toggle.
    [menu] = loss["layout"]["updatemenus"]
    assert [b["args"][0]["yaxis.type"] for b in menu["buttons"]] == ["linear", "log"]


def test_final_and_best_values_against_the_swept_key(runs, tmp_path):
    results, a, _ = runs
    html = write(a, tmp_path, storage=str(results), metrics="loss:min,acc")
    found = list(figures(html).values())
    scatters = {
        f["layout"]["title"]["text"]: f for f in found if f["layout"]["title"]["text"].endswith(" by lr")
    }
    assert list(scatters) == ["loss:min by lr", "acc by lr"]
    trials = ml.Storage(str(results)).get(a).trials
    points = scatters["loss:min by lr"]["data"]
    shown = sorted((x, y) for trace in points[:-1] for x, y in zip(trace["x"], trace["y"], strict=True))
    best = sorted((t.config["lr"], min(r["loss"] for r in t.records)) for t in trials)
    assert [x for x, _ in shown] == [x for x, _ in best]
    assert [y for _, y in shown] == pytest.approx([y for _, y in best], rel=1e-5)
    means = points[-1]
    assert means["name"] == "mean ± std" and len(means["error_y"]["array"]) == 2
    final = scatters["acc by lr"]["data"][-1]
    expected = statistics.mean(t.records[-1]["acc"] for t in trials if t.config["lr"] == final["x"][0])
    assert final["y"][0] == pytest.approx(expected, rel=1e-5)


def test_parallel_coordinates_when_more_than_two_keys_vary(runs, tmp_path):
    results, _, b = runs  # lr, fail and fail_from vary
    found = list(figures(write(b, tmp_path, storage=str(results))).values())
    parcoords = [f for f in found if f["data"][0]["type"] == "parcoords"]
    assert len(found) == 4 and len(parcoords) == 2
    dimensions = parcoords[0]["data"][0]["dimensions"]
    assert [d["label"] for d in dimensions] == ["lr", "fail", "fail_from", "loss"]
    assert dimensions[1]["ticktext"] == ["", "diverged", "exploded"]
    assert len(dimensions[0]["values"]) == 12 - 3  # the passed trials


def test_failures_are_grouped_by_their_error_with_a_reproduce_command_each(runs, project, tmp_path, capsys):
    results, _, b = runs
    html = write(b, tmp_path, storage=str(results))
    section = html[html.index("<section id='failures'>") :]
    assert section.index("ValueError: diverged <span class='muted'>2 trials</span>") < section.index(
        "ValueError: exploded <span class='muted'>1 trial</span>"
    )
    assert "Traceback (most recent call last)" in section and "raise ValueError(self.config.fail)" in section
    stored = ml.Storage(str(results)).get(b)
    entries = stored.results()
    failed = [e for e in entries if e["status"] == "failed"]
    commands = re.findall(r"<pre class='command'>(.*?)</pre>", section)
    assert len(commands) == len(failed) == 3
    for command in commands:
        words = shlex.split(command.replace("&#x27;", "'"))
        assert words[:3] == ["machinable", "reproduce", b] and words[5:] == ["--storage", str(results)]
        [selected] = select_entries(entries, words[4], None)  # -k NODE selects that trial alone
        assert selected["status"] == "failed"
    # The command runs: the stored trial failed, so there is nothing to compare (exit 1), one trial selected.
    words = shlex.split(commands[0].replace("&#x27;", "'"))
    result = run_inprocess(capsys, project, *words[1:])
    assert result.ret == 1 and f"{len(entries) - 1} trials deselected by -k" in result.out


# -- large executions ----------------------------------------------------------------------------------------


def test_downsampling_keeps_the_minimum_and_maximum_and_caps_the_points():
    ys = [math.sin(i / 40) + (0.001 * (i % 7)) for i in range(5000)]
    ys[1234], ys[4321] = 9.5, -8.25  # a spike and a dip between ordinary points
    xs = list(range(5000))
    dx, dy = downsample(xs, ys)
    assert len(dy) <= MAX_POINTS and len(dy) >= MAX_POINTS - 2
    assert max(dy) == 9.5 and min(dy) == -8.25
    assert dx == sorted(dx) and all(ys[x] == y for x, y in zip(dx, dy, strict=True))
    assert downsample(xs[:800], ys[:800]) == (xs[:800], ys[:800])  # short lines are left as they are
    assert len(downsample_indices(ys, 100)) <= 100
    assert trial_cap(1) == MAX_POINTS and trial_cap(10_000) == 20 and trial_cap(2000) == 100


LONG = """\
import machinable as ml


class Long(ml.Component):
    def on_execute(self):
        for step in range(5000):
            self.record["step"] = step * 10
            self.record["loss"] = 50.0 if step == 2222 else (-3.0 if step == 4000 else (step % 17) / 17)
            self.record.save()
"""


def test_a_long_curve_is_decimated_and_keeps_its_extremes(project, tmp_path):
    (project / "machinable.yaml").write_text(YAML + "  - long:\n")
    (project / "long.py").write_text(LONG)
    execution = ml.execute(ml.Task().component("long").repeat(2), seed=3, echo=False)
    html = write(execution, tmp_path)
    [curve] = figures(html).values()  # `step` is the x axis, not a metric; nothing swept
    assert curve["layout"]["xaxis"]["title"]["text"] == "step"
    [mean] = [t for t in curve["data"] if t.get("fill") is None]
    assert len(mean["x"]) <= MAX_POINTS and max(mean["y"]) == 50.0 and min(mean["y"]) == -3.0
    assert 22220 in mean["x"] and 40000 in mean["x"]
    for line in trial_traces(curve):
        assert len(line["y"]) <= MAX_POINTS and max(line["y"]) == 50.0 and min(line["y"]) == -3.0
    assert "min-max decimated" in html
    assert "<th title='sort by step'>" not in html  # the step column is no metric of the table either


# -- bad input -----------------------------------------------------------------------------------------------


def _one_line_error(result) -> str:
    assert result.ret == 4, result.out + result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), result.err
    return lines[0]


def test_an_unknown_execution_or_metric_is_a_usage_error(runs, project, tmp_path, capsys):
    results, a, _ = runs
    with pytest.raises(UsageError, match="no execution 'nope' in storage"):
        ml.report("nope", tmp_path / "r.html", storage=str(results))
    with pytest.raises(UsageError, match="unknown metric 'accuracy'; the trials recorded: loss, acc"):
        ml.report(a, tmp_path / "r.html", storage=str(results), metrics="accuracy")
    with pytest.raises(UsageError, match="no trial of execution .* matches -k 'nothing'"):
        ml.report(a, tmp_path / "r.html", storage=str(results), k="nothing")
    with pytest.raises(UsageError, match="expected an Execution"):
        ml.report(42, tmp_path / "r.html")
    assert "no execution 'nope'" in _one_line_error(run_inprocess(capsys, project, "report", "nope"))
    result = run_inprocess(capsys, project, "report", a, "--metric", "accuracy")
    assert "unknown metric 'accuracy'" in _one_line_error(result)
    assert not (tmp_path / "r.html").exists() and not (project / "report.html").exists()


def test_an_output_path_that_cannot_be_written_is_an_error_before_anything_is_read(project, tmp_path, capsys):
    (tmp_path / "a-file").write_text("")
    cases = {
        str(tmp_path): "it is a folder",
        str(tmp_path / "missing" / "r.html"): "the folder .*missing does not exist",
        str(tmp_path / "a-file" / "r.html"): "the folder .*a-file is a file",
    }
    for path, message in cases.items():
        # The execution does not exist either: the path is checked first.
        with pytest.raises(UsageError, match=f"cannot write the report to {re.escape(path)}: {message}"):
            ml.report("nope", path, storage=str(tmp_path / "results"))
        line = _one_line_error(run_inprocess(capsys, project, "report", "nope", "-o", path))
        assert re.search(message, line)


def test_a_folder_no_file_can_be_created_in_is_an_error(project, capsys):
    # /proc takes no new files, not even from root (CI runs as root, where a chmod-ed folder would be writable).
    if not os.path.isdir("/proc/self"):
        pytest.skip("no /proc on this system: the folder that refuses new files is Linux's /proc")
    with pytest.raises(UsageError, match="cannot write the report to /proc/r.html: "):
        ml.report("nope", "/proc/r.html")
    line = _one_line_error(run_inprocess(capsys, project, "report", "nope", "-o", "/proc/r.html"))
    assert line.startswith("ERROR: cannot write the report to /proc/r.html: ")


SILENT = """\
import machinable as ml


class Silent(ml.Component):
    def on_execute(self):
        print("nothing recorded")
"""


def test_an_execution_without_records_is_an_error(project, tmp_path, capsys):
    (project / "machinable.yaml").write_text(YAML + "  - silent:\n")
    (project / "silent.py").write_text(SILENT)
    execution = ml.execute("silent", storage="./results", seed=5, echo=False)
    with pytest.raises(UsageError, match=f"execution {execution.folder} has no records"):
        ml.report(execution, tmp_path / "r.html")
    assert "has no records" in _one_line_error(run_inprocess(capsys, project, "report", execution.folder))


def test_without_plotly_the_error_says_how_to_install_it(runs, project, tmp_path, monkeypatch, capsys):
    results, a, _ = runs
    monkeypatch.setitem(sys.modules, "plotly", None)
    monkeypatch.setitem(sys.modules, "plotly.offline", None)
    with pytest.raises(MissingPlotly, match=re.escape('pip install "machinable[report]"')) as caught:
        ml.report(a, tmp_path / "r.html", storage=str(results))
    assert isinstance(caught.value, MachinableError)
    line = _one_line_error(run_inprocess(capsys, project, "report", a))
    assert line == 'ERROR: the report needs plotly: pip install "machinable[report]"'


# -- the API and the command ---------------------------------------------------------------------------------


def test_report_takes_an_execution_a_stored_one_an_id_or_several(runs, project, tmp_path):
    results, a, b = runs
    in_memory = ml.execute(sweep(), seed=4, echo=False)
    assert "6 passed" in write(in_memory, tmp_path, "memory.html")
    by_id = write(a, tmp_path, "id.html", storage=str(results))
    stored = ml.Storage(str(results)).get(a)
    assert write(stored, tmp_path, "stored.html").count("<tr>") == by_id.count("<tr>")
    both = write([a, b], tmp_path, "both.html", storage=ml.Storage(str(results)))
    assert f"machinable report {a}, {b}" in both and "18 trials" in both
    head, *rows = tables(both)["results"]
    n = {row[0][0]: row[[h for h, _ in head].index("N")][0] for row in rows}
    assert n == {"0.1": "6", "0.5": "6", "0.9": "3", "0.7": "3"}  # configurations of both share a row
    assert "report" in ml.__all__ and "report" in dir(ml)
    probe = "import sys, machinable; machinable.report; print('plotly' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=clean_env())
    assert done.stdout.strip() == "False", done.stderr  # plotly is imported when a report is written


def test_the_command_writes_prints_the_path_and_opens_it(project, tmp_path, capsys, monkeypatch):
    assert run_inprocess(capsys, project, "fit", "lr=0.1,0.5", "--repeat", "2", "-q").ret == 0
    opened = []
    monkeypatch.setattr("webbrowser.open", lambda url, *args, **kwargs: opened.append(url) or True)
    result = run_inprocess(capsys, project, "report")  # the last run's, into ./report.html
    assert result.ret == 0, result.err
    assert result.out == f"{project / 'report.html'}\n" and opened == []
    target = tmp_path / "out" / "page.html"
    target.parent.mkdir()
    result = run_inprocess(capsys, project, "report", "last", "-o", str(target), "--open", "-k", "lr=0.5")
    assert result.ret == 0 and result.out == f"{target}\n"
    assert opened == [target.as_uri()]
    assert "2 trials matching <code>-k lr=0.5</code>" in target.read_text()
    monkeypatch.setattr("webbrowser.open", lambda url, *args, **kwargs: False)
    result = run_inprocess(capsys, project, "report", "-o", str(target), "--open")
    assert result.ret == 0 and result.out == f"{target}\n" and "no web browser" in result.err
