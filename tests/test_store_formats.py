"""Stored objects in torch and numpy formats: ``.pt`` / ``.pth`` through torch.save / torch.load, ``.npz`` as a dict
of numpy arrays, and arrays or tensors refused (naming the store key) where JSON would turn them into lists."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import REPO, clean_env, write_project

import machinable as ml
from machinable.errors import StorageError
from machinable.storage import ExecutionWriter, Storage, open_storage
from machinable.storage.url import MissingDependencyError


def _torch():
    return pytest.importorskip("torch", reason="torch is not importable here")


@pytest.fixture(params=["local", "memory"])
def target(request, tmp_path) -> str:
    return str(tmp_path / "results") if request.param == "local" else f"memory://formats-{tmp_path.name}"


def _trial(target: str):
    return ExecutionWriter(open_storage(target), "3K45al").trial("t1")


def _read_back(tw):
    """The trial's ``store`` as read back by a new ``Storage`` of the same URL."""
    tw.write_trial({"node_id": "n"})
    tw.execution.write_execution({"started": 1.0})
    return Storage(tw.execution.location.url).get("3K45al").trial("t1").store


# -- torch ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["model.pt", "nested/model.pth"])
def test_a_state_dict_goes_through_torch_save_and_comes_back_with_its_dtypes(target, name):
    torch = _torch()
    torch.manual_seed(0)
    state = torch.nn.Linear(3, 2).state_dict()
    state["half"] = torch.ones(2, dtype=torch.bfloat16)  # a dtype numpy and JSON do not have
    tw = _trial(target)
    assert tw.store(name, state) == f"store/{name}"
    store = _read_back(tw)
    assert name in store
    loaded = store[name]
    assert list(loaded) == ["weight", "bias", "half"]
    assert loaded["weight"].dtype == torch.float32 and loaded["half"].dtype == torch.bfloat16
    assert all(torch.equal(loaded[key], state[key]) for key in state)


def test_a_component_stores_its_model_and_the_trial_reads_it_back(tmp_path, monkeypatch):
    torch = _torch()
    root = write_project(
        tmp_path / "project",
        "components:\n  - fit\n",
        {
            "fit.py": """
            import torch

            import machinable as ml


            class Fit(ml.Component):
                def on_execute(self):
                    model = torch.nn.Linear(4, 1)
                    self.store("model.pt", model.state_dict())
                    self.store("weight_sum", float(model.weight.detach().sum()))
            """
        },
    )
    monkeypatch.chdir(root)
    execution = ml.execute("fit", storage=str(tmp_path / "results"), echo=False, seed=5)
    [trial] = execution.trials
    assert trial.status == "passed", trial.error
    stored = ml.Storage(str(tmp_path / "results")).get(execution.id).trial(trial.uid).store
    weight = stored["model.pt"]["weight"]
    assert weight.dtype == torch.float32 and weight.shape == (1, 4)
    assert float(weight.sum()) == pytest.approx(stored["weight_sum"])
    assert sorted(stored) == ["model.pt", "weight_sum"]


def test_a_whole_module_stored_as_pt_is_refused_when_read_with_a_hint_to_store_its_state_dict(target):
    torch = _torch()
    tw = _trial(target)
    tw.store("net.pt", torch.nn.Linear(2, 2))
    with pytest.raises(StorageError, match=r"'net\.pt'.*weights_only=True.*Linear.*state_dict"):
        _read_back(tw)["net.pt"]


def test_what_torch_save_cannot_pickle_is_an_error_naming_the_key(target):
    _torch()
    with pytest.raises(StorageError, match=r"cannot store 'f\.pt' with torch\.save"):
        _trial(target).store("f.pt", {"step": lambda: 1})


def test_without_torch_a_pt_name_is_a_one_line_error_naming_the_package(target, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError, as if not installed
    with pytest.raises(MissingDependencyError, match=r"^storing 'model\.pt' needs torch: pip install torch$"):
        _trial(target).store("model.pt", {"w": [1.0]})


def test_a_trial_that_stores_no_torch_file_never_imports_torch(tmp_path):
    _torch()
    root = write_project(
        tmp_path / "project",
        "components:\n  - plain\n",
        {
            "plain.py": """
            import numpy as np

            import machinable as ml


            class Plain(ml.Component):
                def on_execute(self):
                    self.store("arrays.npz", {"a": np.arange(3)})
                    self.store("result.json", {"loss": np.float32(0.5)})
            """
        },
    )
    code = (
        "import sys, machinable as ml\n"
        f"trial = ml.execute('plain', storage={str(tmp_path / 'results')!r}, echo=False).trials[0]\n"
        "assert trial.status == 'passed', trial.error\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env=clean_env(PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


# -- numpy ----------------------------------------------------------------------------------------------------------


def test_npz_keeps_a_dict_of_arrays_and_reads_back_a_plain_dict(target):
    arrays = {"a": np.arange(4, dtype=np.int16), "file": np.ones((2, 2), dtype=np.float32), "b": [1.5, 2.5]}
    tw = _trial(target)
    tw.store("arrays.npz", arrays)  # 'file' is savez's own parameter name: a name here all the same
    loaded = _read_back(tw)["arrays.npz"]
    assert type(loaded) is dict and list(loaded) == ["a", "file", "b"]
    assert loaded["a"].dtype == np.int16 and loaded["file"].dtype == np.float32
    assert np.array_equal(loaded["file"], arrays["file"]) and loaded["b"].tolist() == [1.5, 2.5]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.ones(3), r"'x\.npz'.*takes a dict of names to arrays, not a ndarray.*'\.npy'"),
        ({"ok": np.ones(2), "bad": [{}, 1]}, r"'x\.npz': its entry 'bad' holds Python objects.*'\.pkl'"),
        ({"ragged": [[1], [1, 2]]}, r"'x\.npz': its entry 'ragged' is no numpy array"),
    ],
)
def test_npz_refuses_what_it_cannot_hold_naming_the_key(target, value, message):
    tw = _trial(target)
    with pytest.raises(StorageError, match=message):
        tw.store("x.npz", value)
    assert "x.npz" not in _read_back(tw)


# -- JSON refuses arrays and tensors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "where", "fitting"),
    [
        ("weights", np.ones(3, dtype=np.float32), "the value is a numpy.ndarray", "'weights.npy'"),
        ("arrays", {"a": np.ones(2), "b": np.zeros(2)}, r"value\['a'\] is a numpy.ndarray", "'arrays.npz'"),
        ("result.json", {"run": [1, {"w": np.ones(2)}]}, r"value\['run'\]\[1\]\['w'\]", "'result.pkl'"),
    ],
)
def test_json_refuses_numpy_arrays_naming_the_key_and_the_path(target, name, value, where, fitting):
    tw = _trial(target)
    with pytest.raises(StorageError) as raised:
        tw.store(name, value)
    message = str(raised.value)
    assert f"cannot store '{name}' as JSON: " in message
    assert re.search(where, message), message
    assert fitting in message and "lose its dtype" in message
    assert name not in _read_back(tw)


@pytest.mark.parametrize("name", ["state", "state.json"])
def test_json_refuses_a_state_dict_and_suggests_pt(target, name):
    torch = _torch()
    tw = _trial(target)
    with pytest.raises(
        StorageError, match=r"value\['weight'\] is a torch\.Tensor \(shape \(2, 3\).*'state\.pt'"
    ):
        tw.store(name, torch.nn.Linear(3, 2).state_dict())
    assert name not in _read_back(tw)


def test_json_keeps_numpy_scalars_and_0_d_values_as_numbers(target):
    tw = _trial(target)
    tw.store("best", np.float32(0.25))
    tw.store("summary.json", {"steps": np.int64(3), "loss": np.array(0.5), "flags": [np.bool_(True)]})
    store = _read_back(tw)
    assert store["best"] == 0.25
    assert store["summary.json"] == {"steps": 3, "loss": 0.5, "flags": [True]}


def test_a_0_d_tensor_is_a_number_too(target):
    torch = _torch()
    tw = _trial(target)
    tw.store("loss", torch.tensor(0.5))
    assert _read_back(tw)["loss"] == 0.5


def test_records_still_turn_arrays_into_lists(tmp_path):
    # Record rows hold numbers: converting there is documented and unchanged.
    tw = _trial(str(tmp_path / "results"))
    tw.record_writer().write({"curve": np.arange(3)})
    tw.close()
    assert json.loads(Path(tw.path, "records.jsonl").read_text())["curve"] == [0, 1, 2]


def test_a_pickle_error_names_the_key(target):
    with pytest.raises(StorageError, match=r"cannot store 'f\.pkl' with pickle"):
        _trial(target).store("f.pkl", lambda: 1)
