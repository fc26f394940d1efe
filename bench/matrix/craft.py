"""Crafting adversarial examples for a cell, with the reuse the matrix allows.

- Sample sets: ``n`` test images drawn by the seed; targets for targeted attacks are drawn once for
  the whole test split from the seed (one random class other than the true one per image), so every
  model and every sample size sees the same target for the same image.
- FGSM: the sign of one input gradient serves every eps of a sweep (x' = clip(x +/- eps * sign(g))),
  which is what ART's FastGradientMethod computes for each eps.
- A cache on disk keyed by the cell's craft key: a transfer cell reads the examples crafted on its
  source, a rerun reads what an interrupted run crafted.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bench.attacks import ATTACKS
from bench.data.datasets import Split
from bench.matrix.passes import PassCount, count_passes
from bench.matrix.plan import Cell


@dataclass(frozen=True)
class SampleSet:
    x: torch.Tensor
    y: torch.Tensor
    targets: torch.Tensor
    indices: torch.Tensor | None = None  # their indices in the test split, stored with each record


def sample_set(test: Split, n: int, seed: int, n_classes: int = 10) -> SampleSet:
    rng = np.random.Generator(np.random.PCG64(seed + 1))
    offsets = torch.from_numpy(rng.integers(1, n_classes, size=len(test)))
    all_targets = (test.y + offsets) % n_classes
    idx = test.subset_indices(n, seed)
    return SampleSet(test.x[idx], test.y[idx], all_targets[idx], idx)


@dataclass
class Crafted:
    x_adv: torch.Tensor
    seconds: float
    passes: PassCount
    reused: bool = False


class Crafter:
    def __init__(self, cache_dir: Path, batch_size: int = 128) -> None:
        self.cache_dir = cache_dir
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.batch_size = batch_size
        self._fgsm_signs: dict[tuple, torch.Tensor] = {}

    def craft(self, cell: Cell, estimator, samples: SampleSet) -> Crafted:
        cached = self._load(cell.craft_key)
        if cached is not None:
            return cached
        _seed_everything(cell)
        start = time.perf_counter()
        with count_passes(estimator.network) as passes:
            if cell.attack == "fgsm":
                x_adv = self._fgsm(cell, estimator, samples)
            else:
                labels = samples.targets if cell.targeted else samples.y
                attack = ATTACKS.get(cell.attack).make(estimator, dict(cell.params), cell.targeted, self.batch_size)
                one_hot = F.one_hot(labels, estimator.nb_classes).float().numpy()
                x_adv = torch.from_numpy(attack.generate(samples.x.numpy(), y=one_hot)).float()
        crafted = Crafted(x_adv, time.perf_counter() - start, passes)
        self._save(cell.craft_key, crafted)
        return crafted

    def _fgsm(self, cell: Cell, estimator, samples: SampleSet) -> torch.Tensor:
        key = (cell.craft_model_key, cell.n_samples, cell.seed, cell.targeted)
        if key not in self._fgsm_signs:
            labels = samples.targets if cell.targeted else samples.y
            grads = [
                estimator.loss_gradient(samples.x[i : i + self.batch_size], labels[i : i + self.batch_size])
                for i in range(0, len(labels), self.batch_size)
            ]
            self._fgsm_signs[key] = torch.cat(grads).sign()
        direction = -1.0 if cell.targeted else 1.0  # a targeted attack descends the loss to the target
        return (samples.x + direction * cell.value * self._fgsm_signs[key]).clamp(0.0, 1.0)

    def _path(self, key: str) -> Path:
        return self.cache_dir / f"{key}.npz"

    def _load(self, key: str) -> Crafted | None:
        path = self._path(key)
        if not path.is_file():
            return None
        with np.load(path) as data:
            meta = json.loads(str(data["meta"]))
            x_adv = torch.from_numpy(data["x_adv"])
        return Crafted(x_adv, meta["seconds"], PassCount(meta["forward"], meta["backward"]), reused=True)

    def _save(self, key: str, crafted: Crafted) -> None:
        meta = {"seconds": crafted.seconds, "forward": crafted.passes.forward, "backward": crafted.passes.backward}
        tmp = self.cache_dir / f".{key}.{os.getpid()}.npz"
        np.savez(tmp, x_adv=crafted.x_adv.numpy(), meta=json.dumps(meta))
        os.replace(tmp, self._path(key))


def _seed_everything(cell: Cell) -> None:
    """ART draws random starts from NumPy's global generator; seed it and torch from the craft key."""
    seed = int(hashlib.sha256(f"{cell.craft_key}:{cell.seed}".encode()).hexdigest()[:8], 16)
    np.random.seed(seed)
    torch.manual_seed(seed)
