"""What a run will cost, before it runs (``bench matrix --dry-run``): training of the models not in the store, and
the crafts of the cells not in the results store, from throughput measured here on the run's own networks.

- Training: a training step (forward, loss, backward, Adam) timed on an untrained network of each architecture at
  its training batch size, times epochs x images; adversarial training adds its PGD passes per image.
- Attacks: per craft group (``bench.matrix.groups``), each craft's passes per image as a results store measured
  them (the run's own store, and any given with ``--passes-from``: ``bench.matrix.measured``), else its family's
  bound (``AttackFamily.cost``, in forward+backward pairs; an upper bound for attacks that stop an image at its
  first success, which CW, L-BFGS and margin PGD do), priced at the throughput of the batch the group will run
  with. The time of a pass does not depend on the weights, so an untrained network prices it.
"""

from __future__ import annotations

import copy
import time
from collections import defaultdict
from dataclasses import dataclass, field

import torch

from bench.data.datasets import dataset_info
from bench.matrix.groups import CraftGroup, craft_groups
from bench.matrix.measured import craft_passes
from bench.matrix.passes import BEST_BATCHES, Prices, Throughput
from bench.matrix.plan import Cell


@dataclass
class Estimate:
    training: dict[str, float] = field(default_factory=dict)  # model label -> seconds, for models to train
    attacks: dict[str, float] = field(default_factory=dict)  # attack -> seconds of crafting
    crafts: int = 0
    groups: int = 0
    crafts_measured: int = 0  # crafts priced by the passes a store measured, not by their family's bound
    measured_from: tuple[str, ...] = ()  # those stores
    took: float = 0.0  # seconds the estimate itself took

    @property
    def seconds(self) -> float:
        return sum(self.training.values()) + sum(self.attacks.values())

    def describe(self) -> str:
        lines = [
            f"estimated time: {self.seconds / 60:.0f} min (training {sum(self.training.values()) / 60:.0f} min for "
            f"{len(self.training)} models, attacks {sum(self.attacks.values()) / 60:.0f} min for {self.crafts} "
            f"crafts in {self.groups} groups; measured here in {self.took:.1f} s)"
        ]
        top = sorted(self.attacks.items(), key=lambda kv: -kv[1])
        lines.append("  by attack: " + ", ".join(f"{a} {_minutes(s)}" for a, s in top))
        if self.crafts_measured:
            lines.append(
                f"  passes per image: {self.crafts_measured} of {self.crafts} crafts as measured in "
                f"{', '.join(self.measured_from)}"
            )
        if self.crafts_measured < self.crafts:
            lines.append(
                f"  {self.crafts - self.crafts_measured} crafts at their family's bound on passes per image, an upper "
                "bound for attacks that stop an image at its first success (CW, L-BFGS, margin PGD): those run "
                "shorter; --passes-from STORE prices each craft as that store's run measured it"
            )
        return "\n".join(lines)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def estimate(
    plan,
    todo: list[Cell],
    missing_models: list[str],
    batch_size: int,
    codebook_key: str | None = None,
    measured: dict[str, tuple[float, float]] | None = None,
) -> Estimate:
    """The cost of crafting ``todo`` (cells not yet in the results store) and training ``missing_models``;
    ``measured``: passes per image by craft (``bench.matrix.measured.measured_passes``), where a store has them."""
    start = time.perf_counter()
    info = dataset_info(plan.dataset)
    result = Estimate()
    largest = max(batch_size, *(plan.specs[m].train.batch_size for m in missing_models), *BEST_BATCHES)
    prices = _Prices(plan, info, codebook_key, largest)
    for label in missing_models:
        result.training[label] = _training_seconds(label, plan.specs[label], info, prices)
    groups = craft_groups(todo)
    result.groups, result.attacks = len(groups), defaultdict(float)
    for group in groups:
        seconds, found = _group_seconds(group, batch_size, prices, measured or {})
        result.crafts += len(group.crafts)
        result.crafts_measured += found
        result.attacks[group.attack] += seconds
    result.attacks = dict(result.attacks)
    result.took = time.perf_counter() - start
    return result


def _group_seconds(group: CraftGroup, batch_size: int, prices: _Prices, measured: dict) -> tuple[float, int]:
    """Seconds of a group's crafts at the batch it will run with, and how many of them were priced by the passes
    a store measured (the others by their family's bound)."""
    n = group.crafts[0].n_samples
    batch = min(batch_size, n * len(group.crafts)) if group.batched else min(batch_size, n)
    price = prices.at(group.craft_model, batch)
    passes = list(craft_passes(group, measured))
    seconds = n * sum(forward * price.forward_s + backward * price.backward_s for forward, backward, _ in passes)
    return seconds, sum(seen for _, _, seen in passes)


def _training_seconds(label: str, spec, info, prices: _Prices) -> float:
    """Seconds to train the plan's model ``label`` (its name in the plan, O:SOFTMAX:CE@s1 with training seeds)."""
    cfg = spec.train
    images = cfg.epochs * min(cfg.n_train or info.n_train, info.n_train)
    per_image = prices.train_step(label, cfg.batch_size)
    if cfg.adversarial:  # the attack's passes on every batch before the step (PGD's k, or FGSM-RS's one and its guard)
        per_image += cfg.adversarial.passes * prices.per_image(label, cfg.batch_size)
    return images * per_image


class _Prices:
    """Throughput of an untrained network per architecture (the kinds of one architecture differ in their last
    layer only), measured once per (architecture, batch): the whole estimate takes seconds."""

    def __init__(self, plan, info, codebook_key: str | None, largest: int) -> None:
        self.plan, self.info, self.codebook_key, self.largest = plan, info, codebook_key, largest
        self._networks: dict[str, torch.nn.Module] = {}
        self._prices: dict[str, Prices] = {}  # per architecture: per-batch throughput, measured once
        self._train_step: dict[tuple, float] = {}

    def _family(self, label: str) -> str:
        spec = self.plan.specs[label]
        return f"arch:{spec.arch}" if hasattr(spec, "arch") else f"own:{label}"

    def network(self, label: str) -> torch.nn.Module:
        from models.external import ExternalModel
        from models.network import build_network

        family = self._family(label)
        if family not in self._networks:
            spec = self.plan.specs[label]
            if isinstance(spec, ExternalModel):  # your own network: its time is its own
                self._networks[family] = spec.module
            else:
                self._networks[family] = build_network(spec, self.info.shape, self.info.n_classes, self.codebook_key)
        return self._networks[family]

    def at(self, label: str, batch: int) -> Throughput:
        """Seconds per image of a forward pass, and of a backward pass to the input, at ``batch``."""
        family = self._family(label)
        if family not in self._prices:
            images = torch.rand(self.largest, *self.info.shape)  # the largest batch asked; only the time counts
            self._prices[family] = Prices(self.network(label), images, rounds=1)
        return self._prices[family].at(batch)

    def per_image(self, label: str, batch: int) -> float:
        """Seconds of one forward and one backward pass to the input, per image, at ``batch``."""
        return self.at(label, batch).per_image

    def train_step(self, label: str, batch: int) -> float:
        """Seconds per image of a training step (forward, loss, backward to the weights, Adam) at ``batch`` for the
        plan's model ``label``."""
        from models.network import build_loss
        from models.training import for_training

        key = ("train", self._family(label), batch)
        if key not in self._train_step:
            # a copy set up as training sets it up (channels-last, fused Adam on the CPU); attacks price the original
            network, optimizer = for_training(copy.deepcopy(self.network(label)), "cpu", 1e-6)
            loss_fn = build_loss(self.plan.specs[label])
            x, y = torch.rand(batch, *self.info.shape), torch.randint(0, self.info.n_classes, (batch,))
            network.train()
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                optimizer.zero_grad(set_to_none=True)
                loss_fn(network(x), y).backward()
                optimizer.step()
                times.append(time.perf_counter() - t0)
            self._train_step[key] = min(times[1:]) / batch  # after a warm-up step
        return self._train_step[key]
