"""ConfigView: attribute access to a configuration that is still a dict."""

from __future__ import annotations

import copy
import json
import pickle

import pytest

from machinable.config.errors import ConfigKeyError
from machinable.config.view import ConfigView
from machinable.errors import ConfigError

CONFIG = {"learning_rate": 0.1, "data": {"name": "mnist", "augmentation": False}, "layers": [{"width": 2}]}


def test_attribute_and_item_access_agree() -> None:
    view = ConfigView(CONFIG)
    assert view.data.name == view["data"]["name"] == "mnist"
    assert view.layers[0].width == 2


def test_a_view_is_a_dict_equal_to_its_data() -> None:
    view = ConfigView(CONFIG)
    assert isinstance(view, dict)
    assert view == CONFIG
    assert json.loads(json.dumps(view)) == CONFIG


def test_nested_mappings_are_views() -> None:
    assert isinstance(ConfigView(CONFIG).data, ConfigView)


def test_a_missing_key_names_the_key_and_lists_the_existing_ones() -> None:
    view = ConfigView(CONFIG)
    with pytest.raises(ConfigKeyError) as info:
        _ = view.data.nme
    message = str(info.value)
    assert "no key 'data.nme' (did you mean 'name'?)" in message
    assert "available keys: 'name', 'augmentation'" in message


def test_a_missing_key_error_is_a_config_key_and_attribute_error() -> None:
    view = ConfigView(CONFIG)
    for access in (lambda: view.missing, lambda: view["missing"]):
        with pytest.raises(ConfigError):
            access()
        with pytest.raises(KeyError):
            access()
        with pytest.raises(AttributeError):
            access()


def test_hasattr_getattr_default_and_get_work() -> None:
    view = ConfigView(CONFIG)
    assert not hasattr(view, "missing")
    assert getattr(view, "missing", 7) == 7
    assert view.get("missing", 7) == 7
    assert "data" in view


def test_to_dict_gives_plain_dicts_back() -> None:
    plain = ConfigView(CONFIG).to_dict()
    assert plain == CONFIG
    assert type(plain) is dict and type(plain["data"]) is dict and type(plain["layers"][0]) is dict


def test_setting_a_value_by_attribute_or_item() -> None:
    view = ConfigView({})
    view.data = {"name": "svhn"}
    view["lr"] = 0.5
    assert view.data.name == "svhn" and view.lr == 0.5


def test_the_view_does_not_change_the_data_it_was_built_from() -> None:
    data = {"data": {"name": "mnist"}}
    view = ConfigView(data)
    view.data.name = "changed"
    assert data == {"data": {"name": "mnist"}}


def test_views_pickle_and_copy() -> None:
    view = ConfigView(CONFIG)
    for clone in (pickle.loads(pickle.dumps(view)), copy.deepcopy(view), copy.copy(view)):
        assert clone == CONFIG
        assert clone.data.name == "mnist"


def test_dict_method_names_are_reachable_as_items() -> None:
    view = ConfigView({"items": 3})
    assert view["items"] == 3
    assert callable(view.items)
