"""Crafting adversarial examples for a cell, with the reuse the matrix allows.

- Sample sets: ``n`` test images drawn by the seed; targets for targeted attacks are drawn once for
  the whole test split from the seed (one random class other than the true one per image), so every
  model and every sample size sees the same target for the same image.
- Craft groups (bench.matrix.groups): the crafts of a sweep, crafted together where the attack takes the swept
  value per image. FGSM: the sign of one input gradient serves every eps of a sweep
  (x' = clip(x +/- eps * sign(g))), which is what ART's FastGradientMethod computes for each eps.
- A cache on disk keyed by the cell's craft key: a transfer cell reads the examples crafted on its
  source, a rerun reads what an interrupted run crafted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bench.attacks import ATTACKS
from bench.data.datasets import Split
from bench.matrix.groups import crafted_together
from bench.matrix.passes import PassCount, Throughput, count_passes
from bench.matrix.plan import Cell

Clock = Callable[[], Throughput]  # times the model's best batch now (bench.matrix.passes.Prices.now)


@dataclass(frozen=True)
class SampleSet:
    x: torch.Tensor
    y: torch.Tensor
    targets: torch.Tensor
    indices: torch.Tensor | None = None  # their indices in the test split, stored with each record

    def part(self, first: int, end: int) -> SampleSet:
        """Images [first, end): one shard (bench.matrix.shards)."""
        indices = None if self.indices is None else self.indices[first:end]
        return SampleSet(self.x[first:end], self.y[first:end], self.targets[first:end], indices)


def sample_set(test: Split, n: int, seed: int, n_classes: int = 10) -> SampleSet:
    rng = np.random.Generator(np.random.PCG64(seed + 1))
    offsets = torch.from_numpy(rng.integers(1, n_classes, size=len(test)))
    all_targets = (test.y + offsets) % n_classes
    idx = test.subset_indices(n, seed)
    return SampleSet(test.x[idx], test.y[idx], all_targets[idx], idx)


@dataclass
class Crafted:
    x_adv: torch.Tensor
    seconds: float  # its share of the call that crafted it (a call over k crafts: a k-th of the call)
    passes: PassCount  # likewise its share of the call's passes
    batch: int  # images per batch in that call, which prices its passes (bench.matrix.passes)
    reused: bool = False
    price: Throughput | None = None  # the best batch's throughput timed around the call (Prices.now); None: untimed


class Crafter:
    """Crafts a group's examples (``craft_group``), caching each craft on disk under its craft key."""

    def __init__(self, cache_dir: Path, batch_size: int = 128) -> None:
        self.cache_dir = cache_dir
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.batch_size = batch_size

    def craft_group(
        self, crafts: Sequence[Cell], estimator, samples: SampleSet, first: int = 0, clock: Clock | None = None
    ) -> dict[str, Crafted]:
        """Every craft of a group (cells differing only in the swept value; ``bench.matrix.groups``), by craft key:
        read from the cache where an earlier (or interrupted) run left it, the rest crafted and cached, each with
        the mean of ``clock``'s timings before and after its call as its price. For sharded cells, ``samples`` is
        the shard whose first image is image ``first`` of the cell: its seed and its cache entry are the shard's."""
        shard = f".s{first}" if crafts[0].shard else ""  # unsharded crafts keep their seeds and cache names
        out = {c.craft_key: self._load(c.craft_key + shard, len(samples.y)) for c in crafts}
        missing = [c for c in crafts if out[c.craft_key] is None]
        if not missing:
            return out
        tick = clock or (lambda: None)  # untimed: every timing None, every craft unpriced
        before = tick()
        if missing[0].attack == "fgsm":
            fresh = self._fgsm(missing, estimator, samples)
        elif crafted_together(missing):
            fresh = self._together(missing, estimator, samples, shard)
        else:
            for cell in missing:  # cached one by one: a run killed mid-group keeps the crafts it finished
                crafted = self._alone(cell, estimator, samples, shard)
                after = tick()
                out[cell.craft_key], before = _priced(crafted, before, after), after
                self._save(cell.craft_key + shard, out[cell.craft_key])
            return out
        after = tick()
        for key, crafted in fresh.items():
            out[key] = _priced(crafted, before, after)
            self._save(key + shard, out[key])
        return out

    def _alone(self, cell: Cell, estimator, samples: SampleSet, shard: str = "") -> Crafted:
        _seed_everything(f"{cell.craft_key}:{cell.seed}" + shard)
        start = time.perf_counter()
        with count_passes(estimator.network) as passes:
            attack = ATTACKS.get(cell.attack).make(estimator, dict(cell.params), cell.targeted, self.batch_size)
            x_adv = _generate(attack, estimator, samples.x, labels_for(cell, samples))
        return Crafted(x_adv, time.perf_counter() - start, passes, min(self.batch_size, len(samples.y)))

    def _together(self, crafts: Sequence[Cell], estimator, samples: SampleSet, shard: str = "") -> dict[str, Crafted]:
        """One call over k copies of the images, copy i with the i-th craft's value (and targeted or not, where the
        group holds both), each image its own value."""
        k, n, first = len(crafts), len(samples.y), crafts[0]
        values = np.repeat([c.value for c in crafts], n)
        aims = {c.targeted for c in crafts}
        targeted = np.repeat([c.targeted for c in crafts], n) if len(aims) > 1 else first.targeted
        x = samples.x.repeat(k, *([1] * (samples.x.dim() - 1)))
        _seed_everything(":".join(sorted(c.craft_key for c in crafts)) + f":{first.seed}" + shard)
        start = time.perf_counter()
        with count_passes(estimator.network) as passes:
            family = ATTACKS.get(first.attack)
            attack = family.make(estimator, dict(first.params), targeted, self.batch_size, {first.param: values})
            x_adv = _generate(attack, estimator, x, torch.cat([labels_for(c, samples) for c in crafts]))
        return _shares(crafts, x_adv.split(n), time.perf_counter() - start, passes, min(self.batch_size, k * n))

    def _fgsm(self, crafts: Sequence[Cell], estimator, samples: SampleSet) -> dict[str, Crafted]:
        """The sign of one input gradient serves every eps (x' = clip(x +/- eps * sign(g))), as ART's FGSM has it."""
        labels, start = labels_for(crafts[0], samples), time.perf_counter()
        with count_passes(estimator.network) as passes:
            grads = [
                estimator.loss_gradient(samples.x[i : i + self.batch_size], labels[i : i + self.batch_size])
                for i in range(0, len(labels), self.batch_size)
            ]
        sign = torch.cat(grads).sign().cpu()  # on CUDA: the images stay on the CPU; .cpu() also waits for the device
        direction = -1.0 if crafts[0].targeted else 1.0  # a targeted attack descends the loss to the target
        x_adv = [(samples.x + direction * c.value * sign).clamp(0.0, 1.0) for c in crafts]
        return _shares(crafts, x_adv, time.perf_counter() - start, passes, min(self.batch_size, len(labels)))

    def _path(self, key: str) -> Path:
        return self.cache_dir / f"{key}.npz"

    def _load(self, key: str, n: int) -> Crafted | None:
        path = self._path(key)
        if not path.is_file():
            return None
        with np.load(path) as data:
            meta = json.loads(str(data["meta"]))
            x_adv = torch.from_numpy(data["x_adv"])
        passes = PassCount(meta["forward"], meta["backward"])
        batch = meta.get("batch", min(self.batch_size, n))  # caches written before groups: one call per craft
        price = Throughput(*meta["price"]) if "price" in meta else None  # caches from before crafts were timed
        return Crafted(x_adv, meta["seconds"], passes, batch, reused=True, price=price)

    def _save(self, key: str, crafted: Crafted) -> None:
        meta = {
            "seconds": crafted.seconds,
            "forward": crafted.passes.forward,
            "backward": crafted.passes.backward,
            "batch": crafted.batch,
        }
        if crafted.price is not None:
            meta["price"] = [crafted.price.forward_s, crafted.price.backward_s, crafted.price.batch_size]
        tmp = self.cache_dir / f".{key}.{os.getpid()}.npz"
        np.savez(tmp, x_adv=crafted.x_adv.numpy(), meta=json.dumps(meta))
        os.replace(tmp, self._path(key))


def labels_for(cell: Cell, samples: SampleSet) -> torch.Tensor:
    """The classes a cell's attack aims at (targeted) or away from: its images' targets or true labels."""
    return samples.targets if cell.targeted else samples.y


def _generate(attack, estimator, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    one_hot = F.one_hot(labels, estimator.nb_classes).float().numpy()
    return torch.from_numpy(attack.generate(x.numpy(), y=one_hot)).float()


def _shares(crafts: Sequence[Cell], x_adv, seconds: float, passes: PassCount, batch: int) -> dict[str, Crafted]:
    """One call's crafts, each charged an equal share of its time and passes (they have as many images each)."""
    k = len(crafts)
    shares = zip(*(_split(total, k) for total in (passes.forward, passes.backward, passes.calls)), strict=True)
    return {  # whole passes (and calls) that add up to the call's
        c.craft_key: Crafted(x, seconds / k, PassCount(*share), batch)
        for c, x, share in zip(crafts, x_adv, shares, strict=True)
    }


def _priced(crafted: Crafted, before: Throughput | None, after: Throughput | None) -> Crafted:
    """The craft priced by the mean of the best batch's timings before and after its call (unpriced untimed)."""
    return crafted if before is None or after is None else dataclasses.replace(crafted, price=before.mean(after))


def _split(total: int, k: int) -> list[int]:
    return [total // k + (i < total % k) for i in range(k)]


def _seed_everything(text: str) -> None:
    """ART draws random starts from NumPy's global generator; seed it and torch from what is crafted."""
    seed = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
    np.random.seed(seed)
    torch.manual_seed(seed)
