"""``machinable --cfg``: each selected trial's fully resolved configuration, like Hydra's ``--cfg job``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from machinable.trials import TrialSpec


def render_configs(items: Iterable[TrialSpec], as_json: bool = False) -> str:
    """YAML documents, one per trial with its node id as a comment; or one JSON object ``{node_id: config}``."""
    configs = {item.node_id: _plain(item.config) for item in items}
    if as_json:
        return json.dumps(configs, indent=2)
    import yaml

    documents = [
        f"# {node_id}\n"
        + yaml.safe_dump(config, sort_keys=False, default_flow_style=False, allow_unicode=True)
        for node_id, config in configs.items()
    ]
    return "---\n".join(documents).rstrip("\n")


def _plain(config: Any) -> Any:
    """Only what YAML and JSON can hold: a value a config method returned may be any object (shown as text)."""
    return json.loads(json.dumps(config, default=str))
