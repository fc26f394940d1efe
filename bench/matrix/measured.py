"""Passes per image as a results store measured them, per craft: what prices a craft by what it did rather than by
its family's bound (``AttackFamily.cost``), in the cost model and in the dry run's estimate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from bench.attacks.family import plain_value


def craft_identity(craft_model: str, attack: str, params: dict[str, Any], targeted: bool) -> str:
    """What makes two crafts the same work whatever their image count: model crafted on, attack, parameters."""
    return json.dumps([craft_model, attack, sorted((k, plain_value(v)) for k, v in params.items()), bool(targeted)])


def measured_passes(records) -> dict[str, tuple[float, float]]:
    """Craft identity -> (forward, backward) passes per image, from a store's finished attack records. A craft
    whose records disagree (several runs) keeps the largest count."""
    found: dict[str, tuple[float, float]] = {}
    for r in records:
        config = r.config
        if r.status != "ok" or not r.n or r.forward_passes is None or "params" not in config:
            continue
        key = craft_identity(config.get("source") or r.model, r.attack, config["params"], config["targeted"])
        per_image = (r.forward_passes / r.n, (r.backward_passes or 0) / r.n)
        found[key] = max(found.get(key, per_image), per_image)
    return found


def craft_passes(group, measured: dict[str, tuple[float, float]]) -> Iterator[tuple[float, float, bool]]:
    """For each craft of a ``bench.matrix.groups.CraftGroup``: its (forward, backward) passes per image as a store
    measured them, else its family's bound (``CraftGroup.bound``) for both, and whether they were measured."""
    for craft in group.crafts:
        seen = measured.get(craft_identity(craft.craft_model, craft.attack, dict(craft.params), craft.targeted))
        yield (*seen, True) if seen else (group.bound(craft), group.bound(craft), False)
