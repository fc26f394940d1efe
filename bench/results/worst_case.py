"""The worst case per example: an image counts as robust only if every attack at the same eps failed on it.

Accuracy under each attack is an upper bound on robust accuracy; the per-example minimum over attacks is a
tighter one, and it is never above any single attack's (AutoAttack reports this quantity). It is computed
from stored records alone: each untargeted cell (white-box or transfer) keeps its per-example outcome
(``per_example``: packed bits, 1 = still classified correctly, in the order of its images' indices in the
test split), and sample sets with one seed are nested as sets (``bench.data.datasets.draw_indices``), so cells of
different sizes are compared on the images of the smallest, each outcome looked up by its image's index.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Callable

import numpy as np

from bench.attacks import ATTACKS
from bench.data.datasets import draw_indices, load
from bench.results.identity import WORST_CASE, digest, worst_case_config
from bench.results.metrics import wilson_interval
from bench.results.store import Record, ResultsStore, encode_indices

ATTACK = WORST_CASE
UNTARGETED = ("whitebox_untargeted", "transfer")
SETTING = UNTARGETED[0]  # the setting a worst-case row is stored under, whatever its members'


def per_example(record: Record) -> np.ndarray:
    """The record's per-example outcome as booleans (n,)."""
    if record.per_example is None or record.n is None:
        raise ValueError(f"cell {record.name} has no per-example outcome; rerun it with this bench.")
    return np.unpackbits(np.frombuffer(record.per_example, dtype=np.uint8))[: record.n].astype(bool)


Indices = Callable[[Record], np.ndarray]  # the test-split indices of a record's images, in its order


@functools.cache
def _test_size(dataset: str) -> int:
    return len(load(dataset, "test"))


def image_indices(record: Record) -> np.ndarray:
    """The images a cell ran on: as stored with it, or for rows written before bench stored them, drawn again as
    the runner drew them (``sample_set``: n images, the cell's seed)."""
    stored = record.indices()
    if stored is not None:
        return stored
    return draw_indices(_test_size(record.dataset), record.n, record.seed or 0)


def linf_ball(attack: str) -> bool:
    """The registered attack bounds its examples by an L-inf ball of radius eps, so its eps is comparable to the
    others'; an L2 radius is not, and an attack not registered here has no known norm."""
    return attack in ATTACKS and ATTACKS.get(attack).norm == math.inf


def worst_case_records(records: list[Record], indices: Indices = image_indices) -> list[Record]:
    """One ``worst_case`` record per (dataset, model, L-inf eps, seed) with at least two untargeted attacks."""
    groups: dict[tuple, list[Record]] = defaultdict(list)
    for r in records:
        if r.status == "ok" and r.setting in UNTARGETED and r.param == "eps" and r.attack != ATTACK:
            if linf_ball(r.attack) and r.per_example is not None:
                groups[(r.dataset, r.model_key, r.value, r.seed or 0)].append(r)
    out = []
    for (dataset, model_key, eps, _), members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        if len({(m.attack, m.source) for m in members}) < 2:
            continue
        out.append(_combine(dataset, model_key, eps, members, indices))
    return out


def _on_shared_images(members: list[Record], indices: Indices) -> dict[str, np.ndarray]:
    """Each member's outcome on the images of the smallest member, looked up by image index."""
    shared = indices(min(members, key=lambda m: m.n))
    out = {}
    for m in members:
        own = indices(m)
        at = np.searchsorted(own, shared).clip(max=len(own) - 1)
        if not np.array_equal(own[at], shared):
            raise ValueError(f"cell {m.name} did not run on every image of the smallest cell; not comparable.")
        out[m.name] = per_example(m)[at]
    return out


def _combine(dataset: str, model_key: str, eps: float, members: list[Record], indices: Indices) -> Record:
    n = min(m.n for m in members)
    outcomes = _on_shared_images(members, indices)
    robust = np.logical_and.reduce(list(outcomes.values()))
    hits = int(robust.sum())
    low, high = wilson_interval(hits, n)
    members = sorted(members, key=lambda m: m.name)
    first = members[0]
    config = worst_case_config(dataset, first.model, model_key, SETTING, eps, [m.cell_hash for m in members])
    # the images are the smallest member's (sets with one seed are nested): its clean accuracy is theirs, while
    # a larger member's was measured on more images
    smallest = [m for m in members if m.n == n]
    clean = next((m.clean_accuracy for m in smallest if m.clean_accuracy is not None), None)
    # which attack is the strongest on its own, on the shared images: the report names it
    alone = {name: int(outcome.sum()) for name, outcome in outcomes.items()}
    return Record(
        cell_hash=digest(config),
        name=f"{dataset}/worst_case/{ATTACK}[eps={eps:g}]/{first.model}",
        dataset=dataset,
        model=first.model,
        model_key=model_key,
        setting=SETTING,
        source=None,
        attack=ATTACK,
        param="eps",
        value=eps,
        config={**config, "components": [m.name for m in members], "tables": ["worst_case"], "robust_alone": alone},
        metric="accuracy",
        rate=hits / n,
        ci_low=low,
        ci_high=high,
        n=n,
        hits=hits,
        clean_accuracy=clean,
        seconds=sum(m.seconds or 0.0 for m in members),
        per_example=np.packbits(robust).tobytes(),
        image_indices=encode_indices(indices(smallest[0])),
        seed=first.seed,
        device=first.device,
        commit_id=first.commit_id,
        versions=dict(first.versions),
        created=max((m.created or "") for m in members) or None,
    )


def strongest_single(worst: Record) -> tuple[str, float]:
    """(name, accuracy on the shared images) of the single attack that left the fewest images robust."""
    alone = worst.config["robust_alone"]
    name = min(alone, key=alone.get)
    return name, alone[name] / worst.n


def store_worst_cases(store: ResultsStore, dataset: str, indices: Indices = image_indices) -> list[Record]:
    """Recompute the worst-case cells of ``dataset`` from its stored cells and store them in place of the old."""
    fresh = worst_case_records(store.records(dataset=dataset), indices)
    store.replace_derived(dataset, ATTACK, fresh)
    return fresh
