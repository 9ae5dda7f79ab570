"""Stored arrays and tensors compared by reproduce and --check-determinism (docs/reproducibility.md): numerically,
inside mappings, pickles, .npy, .npz and .pt files, with the key path, the first differing index, both values and
how many elements differ; byte-identical files without loading them, equal pickles whatever their bytes."""

from __future__ import annotations

import math
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import machinable as ml
from machinable.cli.main import main
from machinable.replay.compare import Difference, first_mismatch
from machinable.replay.reproduce import DIFFERS, REPRODUCED

# -- the rule, value by value -------------------------------------------------------------------------------------


def _text(old, new, **tolerances) -> str | None:
    found = first_mismatch(old, new, **tolerances)
    return None if found is None else Difference.of("store", found, name="w").describe()


def test_the_first_differing_element_is_named_by_index_with_both_values_and_a_count():
    old = np.arange(80, dtype=np.float32).reshape(4, 20) / 80
    new = old.copy()
    new[3, 17] += np.float32(1e-3)
    new[3, 18] += np.float32(1e-3)
    found = first_mismatch({"layer.0.weight": old}, {"layer.0.weight": new})
    assert (found.path, found.index, found.differing, found.size) == (
        "['layer.0.weight'][3, 17]",
        (3, 17),
        2,
        80,
    )
    assert _text({"layer.0.weight": old}, {"layer.0.weight": new}) == (
        f"stored object 'w'['layer.0.weight'][3, 17]: stored {old[3, 17]!s}, re-run {new[3, 17]!s} "
        "(2 of 80 elements differ)"
    )


def test_shapes_and_dtypes_are_reported_as_such():
    old = np.zeros((4, 20), dtype=np.float32)
    assert _text(old, np.zeros((4, 21), dtype=np.float32)) == (
        "stored object 'w': stored shape (4, 20), re-run shape (4, 21)"
    )
    assert (
        _text(old, old.astype(np.float64)) == "stored object 'w': stored dtype float32, re-run dtype float64"
    )
    assert _text([old], [old.tolist()]).startswith(
        "stored object 'w'[0]: stored ndarray(float32, shape (4, 20)), re-run [[0.0, "
    )


def test_nan_equals_nan_at_the_same_place_only():
    old = np.array([1.0, math.nan, 3.0])
    assert first_mismatch(old, old.copy()) is None
    assert first_mismatch(old, old.copy(), rtol=0.1) is None
    assert _text(old, np.array([math.nan, 1.0, 3.0])) == (
        "stored object 'w'[0]: stored 1.0, re-run nan (2 of 3 elements differ)"
    )


def test_tolerances_apply_to_every_element_as_math_isclose_does():
    old = np.array([1.0, 100.0, 0.0, math.inf])
    new = np.array([1.0 + 1e-7, 100.0 + 1e-5, 1e-9, math.inf])
    assert first_mismatch(old, new) is not None
    assert first_mismatch(old, new, rtol=1e-6, atol=1e-8) is None
    for a, b, rtol, atol in [(1.0, 1.1, 1e-3, 1e-3), (0.0, 1e-12, 0.5, 0.0), (math.inf, 1e300, 0.5, 0.0)]:
        assert (first_mismatch(np.array([a]), np.array([b]), rtol=rtol, atol=atol) is None) == math.isclose(
            a, b, rel_tol=rtol, abs_tol=atol
        )
    # Unsigned integers do not wrap around: 1 - 2 is -1, not 255.
    assert first_mismatch(np.array([1], np.uint8), np.array([2], np.uint8), atol=1) is None
    assert first_mismatch(np.array([1], np.uint8), np.array([3], np.uint8), atol=1) is not None
    # Booleans are not numbers.
    assert first_mismatch(np.array([True]), np.array([False]), atol=1) is not None


def test_numpy_scalars_object_arrays_and_objects_holding_arrays():
    assert first_mismatch(np.float32(1.5), np.float32(1.5000001), rtol=1e-5) is None
    assert _text(np.float32(1.5), np.float32(2.5)) == "stored object 'w': stored 1.5, re-run 2.5"
    objects = np.array([{"a": 1}, {"a": 2}], dtype=object)
    changed = np.array([{"a": 1}, {"a": 3}], dtype=object)
    assert first_mismatch(objects, changed).path == "[1]['a']"

    class Fit:  # no __eq__: unpickled twice, two such objects are compared attribute by attribute
        def __init__(self, coef):
            self.coef_ = coef

    assert first_mismatch(Fit(np.arange(3.0)), Fit(np.arange(3.0))) is None
    assert first_mismatch(Fit(np.arange(3.0)), Fit(np.array([0.0, 1.0, 2.5]))).path == ".coef_[2]"


# -- reproduce and --check-determinism on stored files ------------------------------------------------------------

ARRAYS = """\
from pathlib import Path

import numpy as np

import machinable as ml
from helpers import NeverEqual

HERE = Path(__file__).parent


def weights():
    w = np.arange(80, dtype=np.float32).reshape(4, 20) / 80
    w[0, 0] = np.nan  # a NaN that comes back is reproduced
    noise = HERE / "noise.txt"
    if noise.exists():  # the nondeterminism a test injects; '+x' grows with every run
        text = noise.read_text()
        w[3, 17:19] += np.float32(float(text))
        if text.startswith("+"):
            noise.write_text(f"+{float(text) + 1e-3!r}")
    return w


@ml.parametrize("kind", ["npz", "pkl", "npy", "nested", "same"])
class Arrays(ml.Component):
    def on_execute(self):
        kind, w = self.config.kind, weights()
        if kind == "npz":
            self.store("weights.npz", {"layer.0.weight": w, "layer.0.bias": np.zeros(4, np.float32)})
        elif kind == "pkl":
            self.store("model.pkl", {"state": {"layer.0.weight": w}, "step": 3})
        elif kind == "npy":
            self.store("weights.npy", w)
        elif kind == "nested":
            self.store("history.pkl", [("epoch", 1), {"weights": [w, w]}])
        else:
            # Equal values whose pickles differ (the dict's order changes with every run), and an object whose
            # == says no: its pickle is byte-identical, so it is never unpickled.
            calls = HERE / "calls.txt"
            n = int(calls.read_text()) + 1 if calls.exists() else 1
            calls.write_text(str(n))
            pairs = [("a", np.ones(3)), ("b", 1)]
            self.store("ordered.pkl", dict(pairs if n % 2 else pairs[::-1]))
            self.store("opaque.pkl", NeverEqual())
"""

HELPERS = """\
class NeverEqual:
    def __eq__(self, other):
        return False

    __hash__ = object.__hash__
"""


def _project(tmp_path: Path, name: str = "arrays", source: str = ARRAYS) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "machinable.yaml").write_text(f"components:\n  - {name}\n")
    (root / f"{name}.py").write_text(textwrap.dedent(source))
    (root / "helpers.py").write_text(HELPERS)
    return root


def _run(root: Path, monkeypatch, name: str = "arrays") -> tuple[str, str]:
    monkeypatch.chdir(root)
    storage = str(root.parent / "results")
    execution = ml.execute(name, storage=storage, echo=False)
    assert all(t.passed for t in execution.trials), [t.error for t in execution.trials]
    return execution.id, storage


def _noisy(root: Path, noise: float) -> tuple[str, str]:
    """The stored and re-run values of the element [3, 17] with ``noise`` added, as the comparison shows them."""
    (root / "noise.txt").write_text(repr(noise))
    old = (np.arange(80, dtype=np.float32).reshape(4, 20) / 80)[3, 17]
    return str(old), str(old + np.float32(noise))


def test_reproduce_names_the_file_the_key_path_the_index_both_values_and_the_count(tmp_path, monkeypatch):
    root = _project(tmp_path)
    execution_id, storage = _run(root, monkeypatch)
    assert ml.reproduce(execution_id, storage=storage).ok  # NaN, equal pickles, identical bytes

    old, new = _noisy(root, 1e-3)
    result = ml.reproduce(execution_id, storage=storage)
    details = {t.node_id: (t.outcome, t.detail) for t in result.trials}
    tail = f"[3, 17]: stored {old}, re-run {new} (2 of 80 elements differ)"
    assert details == {
        "arrays[kind=npz]": (DIFFERS, f"stored object 'weights.npz'['layer.0.weight']{tail}"),
        "arrays[kind=pkl]": (DIFFERS, f"stored object 'model.pkl'['state']['layer.0.weight']{tail}"),
        "arrays[kind=npy]": (DIFFERS, f"stored object 'weights.npy'{tail}"),
        "arrays[kind=nested]": (DIFFERS, f"stored object 'history.pkl'[1]['weights'][0]{tail}"),
        "arrays[kind=same]": (REPRODUCED, ""),
    }
    difference = result.trials[0].difference
    assert (difference.index, difference.differing, difference.size) == ((3, 17), 2, 80)
    assert result.to_dict()["trials"][0]["difference"]["index"] == [3, 17]


def test_tolerances_accept_small_differences_in_arrays(tmp_path, monkeypatch, capsys):
    root = _project(tmp_path)
    execution_id, storage = _run(root, monkeypatch)
    _noisy(root, 1e-6)
    assert [t.outcome for t in ml.reproduce(execution_id, storage=storage).trials] == [DIFFERS] * 4 + [
        REPRODUCED
    ]
    assert ml.reproduce(execution_id, storage=storage, rtol=1e-5).ok
    assert ml.reproduce(execution_id, storage=storage, atol=1e-5).ok
    assert main(["reproduce", execution_id, "--storage", storage, "--atol", "1e-5", "--color", "no"]) == 0
    assert "5 reproduced, 0 differ, 0 failed" in capsys.readouterr().out


def test_the_determinism_check_shows_the_index_and_both_runs_values(tmp_path, capsys):
    root = _project(tmp_path)
    (root / "noise.txt").write_text("+0.0")  # the second run differs from the first
    code = main(["--project", str(root), "--color", "no", "--check-determinism", "-k", "npz"])
    out = capsys.readouterr().out
    assert code == 1, out
    line = next(line for line in out.splitlines() if line.startswith("DIFFERS"))
    assert line.startswith(
        "DIFFERS arrays[kind=npz] - stored object 'weights.npz'['layer.0.weight'][3, 17]: "
    )
    assert "first run 0.9625, second run " in line and line.endswith("(2 of 80 elements differ)")


def test_numpy_values_do_not_import_torch(tmp_path, monkeypatch):
    root = _project(tmp_path)
    execution_id, storage = _run(root, monkeypatch)
    _noisy(root, 1e-3)
    script = (
        "import sys, machinable as ml\n"
        f"result = ml.reproduce({execution_id!r}, storage={storage!r})\n"
        "print(result.summary().split(' in ')[0], 'torch' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MACHINABLE_MODE"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == "1 reproduced, 4 differ, 0 failed False", done.stdout + done.stderr


def test_pickles_of_equal_values_need_not_be_byte_identical():
    # What the 'same' trial relies on: the bytes differ, the values do not.
    a, b = {"a": np.ones(3), "b": 1}, {"b": 1, "a": np.ones(3)}
    assert pickle.dumps(a) != pickle.dumps(b)
    assert first_mismatch(pickle.loads(pickle.dumps(a)), pickle.loads(pickle.dumps(b))) is None


# -- torch --------------------------------------------------------------------------------------------------------


def _torch():
    return pytest.importorskip("torch", reason="torch is not installed: the tensor comparisons need it")


TENSORS = """\
from pathlib import Path

import torch

import machinable as ml

HERE = Path(__file__).parent


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Sequential(torch.nn.Linear(20, 4))


@ml.parametrize("kind", ["pt", "pkl"])
class Tensors(ml.Component):
    def on_execute(self):
        torch.manual_seed(0)
        net = Net()
        noise = HERE / "noise.txt"
        if noise.exists():
            with torch.no_grad():
                net.layer[0].weight[3, 17:19] += float(noise.read_text())
        if self.config.kind == "pt":
            self.store("model.pt", net.state_dict())
        else:
            self.store("model.pkl", {"weights": list(net.parameters()), "epoch": 1})
"""


def test_tensors_in_pt_files_and_pickles(tmp_path, monkeypatch):
    torch = _torch()
    root = _project(tmp_path, "tensors", TENSORS)
    execution_id, storage = _run(root, monkeypatch, "tensors")
    assert ml.reproduce(execution_id, storage=storage).ok

    (root / "noise.txt").write_text("1e-3")
    torch.manual_seed(0)
    weight = torch.nn.Linear(20, 4).weight.detach().numpy()
    old, new = str(weight[3, 17]), str(weight[3, 17] + np.float32(1e-3))
    result = ml.reproduce(execution_id, storage=storage)
    tail = f"[3, 17]: stored {old}, re-run {new} (2 of 80 elements differ)"
    assert [t.detail for t in result.trials] == [
        f"stored object 'model.pt'['layer.0.weight']{tail}",
        f"stored object 'model.pkl'['weights'][0]{tail}",
    ]
    assert ml.reproduce(execution_id, storage=storage, atol=1e-2).ok


def test_tensor_shapes_dtypes_and_special_dtypes():
    torch = _torch()
    old = torch.zeros(4, 20)
    assert _text(old, torch.zeros(4, 21)) == "stored object 'w': stored shape (4, 20), re-run shape (4, 21)"
    assert (
        _text(old, old.double())
        == "stored object 'w': stored dtype torch.float32, re-run dtype torch.float64"
    )
    assert _text(old, old.numpy()).startswith(
        "stored object 'w': stored Tensor(torch.float32, shape (4, 20)), "
    )
    half = torch.tensor([1.0, float("nan"), 3.0], dtype=torch.bfloat16)
    assert first_mismatch(half, half.clone()) is None
    assert _text(half, half + 1) == "stored object 'w'[0]: stored 1.0, re-run 2.0 (2 of 3 elements differ)"
    module, other = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    assert first_mismatch(module, other).path == ".state_dict()['weight'][0, 0]"
    other.load_state_dict(module.state_dict())
    assert first_mismatch(module, other) is None
