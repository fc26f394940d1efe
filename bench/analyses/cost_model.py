"""A cost model for the papers' full runs (issue 13): the MNIST and CIFAR-10 paper matrices on DenseNet-BC at
10,000 images per cell, and vu2018's 100,000-step PGD adversarial training, on 1, 8 and 64 GPUs.

- Passes per image, per craft: as a results store recorded them (forward and backward passes over n of a record
  with the craft's model, attack, parameters and targeting), else the family's bound (``AttackFamily.cost``).
  Attacks of a fixed number of steps make the same passes on any network; those that stop an image at its first
  success (CW, L-BFGS, margin PGD, Square) may make more or fewer on DenseNet-BC, and on CIFAR-10.
- GPU throughput (images/s of a forward and a backward pass) is an input: no GPU was measured. Its default divides
  an assumed sustained rate (``TFLOPS``) by the FLOPs counted on the repository's networks.
- Work goes to GPUs in whole tasks, as a Dask run hands it out: a craft group on one shard of its images, or one
  model's training (no data parallelism), longest first to the GPU free first. So 1 GPU takes the sum of the tasks,
  and no number of GPUs takes less than the longest one.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.errors import ConfigError
from bench.matrix.measured import craft_passes

DATASETS = {"mnist": ("MNIST", (1, 28, 28)), "cifar10": ("CIFAR-10", (3, 32, 32))}
TRAINING = "vu2018"  # the throughput key of vu2018's training (its Table I CNN at 28x28x1)
THROUGHPUT_KEYS = (*DATASETS, TRAINING)
TFLOPS = 5.0  # assumed sustained rate of one GPU on these small networks, in 10^12 FLOP/s
FLOPS_PER_PAIR = 6  # per multiply-add of the forward pass: 2 FLOPs, times 3 for a forward and a backward pass


@dataclass(frozen=True)
class Assumptions:
    images: int = 10_000  # images per cell
    shard_images: int = 1_000  # images per task (0: a cell in one task)
    gpus: tuple[int, ...] = (1, 8, 64)
    throughput: dict[str, float] = field(default_factory=dict)  # key of THROUGHPUT_KEYS -> images/s of pairs
    throughput_from: dict[str, str] = field(default_factory=dict)  # key -> where that number comes from
    forward_share: float = 1 / 3  # of a forward+backward pair, a forward pass alone
    training_steps: int = 100_000  # vu2018's
    densenet_depth: int = 40  # make_spec's default (saito2019 gives none; the densenet preset's 22 fits a CPU)


@dataclass(frozen=True)
class GroupWork:
    """One craft group of a matrix: its passes per image, all its crafts together, and where they come from."""

    name: str
    attack: str
    crafts: int
    cells: int
    forward: float  # forward passes per image: its crafts', and one per image for each cell scored on reused crafts
    backward: float
    measured: int  # crafts whose passes a store recorded (the others: the family's bound)


@dataclass(frozen=True)
class TrainingWork:
    models: tuple[str, ...]
    batch: int
    attack_passes: float  # forward+backward passes per image of the training attack (PGD's k) before the update


@dataclass(frozen=True)
class Row:
    work: str
    cells: int
    tasks: int
    pairs: float  # forward+backward pairs of all its tasks
    longest: float  # seconds of its longest task
    wall: dict[int, float]  # GPUs -> seconds


def check(a: Assumptions) -> None:
    """Every input in range, or a ConfigError naming the bad value and what was expected."""
    if not 1 <= a.images <= 10_000:
        raise ConfigError(f"--images {a.images}: expected 1..10000 (a test split holds 10,000 images).")
    if a.shard_images < 0:
        raise ConfigError(f"--shard-images {a.shard_images}: expected 0 (a cell in one task) or more.")
    if not a.gpus or any(g < 1 for g in a.gpus):
        raise ConfigError(f"--gpus {','.join(map(str, a.gpus))}: expected GPU counts of 1 or more, e.g. 1,8,64.")
    if not 0 <= a.forward_share <= 1:
        raise ConfigError(f"--forward-share {a.forward_share:g}: expected a share of a pair's time in 0..1.")
    if a.training_steps < 1:
        raise ConfigError(f"--training-steps {a.training_steps}: expected 1 or more.")
    _check_depth(a.densenet_depth)
    for key in THROUGHPUT_KEYS:
        value = a.throughput.get(key)
        if value is None or not value > 0 or value == float("inf"):
            shown = "(none)" if value is None else f"{value:g}"
            raise ConfigError(f"--throughput {key}={shown}: expected images per second above 0.")


def _check_depth(depth: int) -> None:
    if depth < 10 or (depth - 4) % 6:
        raise ConfigError(f"--densenet-depth {depth}: expected 6n + 4 with n >= 1 (e.g. 22, 40, 100).")


def makespan(tasks: Sequence[float], gpus: int) -> float:
    """Seconds until the last of ``tasks`` ends on ``gpus`` GPUs, each task placed, longest first, on the GPU
    free first (as a Dask scheduler hands out work ordered longest first)."""
    free = [0.0] * min(gpus, max(len(tasks), 1))
    for seconds in sorted(tasks, reverse=True):
        heapq.heappush(free, heapq.heappop(free) + seconds)
    return max(free)


def shard_sizes(images: int, shard: int) -> list[int]:
    """Images of each task of a cell: the sizes of bench.matrix.shards.shard_ranges' pieces."""
    from bench.matrix.shards import shard_ranges

    return [end - first for first, end in shard_ranges(images, shard)]


def pairs_per_image(group: GroupWork, forward_share: float) -> float:
    """A group's passes per image in forward+backward pairs: a forward alone is ``forward_share`` of a pair."""
    return forward_share * group.forward + (1 - forward_share) * group.backward


def matrix_tasks(groups: Iterable[GroupWork], a: Assumptions, key: str) -> list[float]:
    """Seconds of every task of a matrix: each group on each shard of its images."""
    per_image = 1 / a.throughput[key]
    sizes = shard_sizes(a.images, a.shard_images)
    return [pairs_per_image(g, a.forward_share) * n * per_image for g in groups for n in sizes]


def training_tasks(training: TrainingWork, a: Assumptions) -> list[float]:
    """Seconds of each model's training: steps x batch x (the attack's passes + the update's one pair)."""
    pairs = a.training_steps * training.batch * (training.attack_passes + 1)
    return [pairs / a.throughput[TRAINING]] * len(training.models)


def _row(work: str, cells: int, tasks: list[float], pairs: float, a: Assumptions) -> Row:
    return Row(work, cells, len(tasks), pairs, max(tasks), {g: makespan(tasks, g) for g in a.gpus})


def cost_table(matrices: dict[str, list[GroupWork]], training: TrainingWork, a: Assumptions) -> list[Row]:
    """The table: a row per matrix (dataset -> its groups), one for vu2018's training, one for all together."""
    check(a)
    rows, everything = [], []
    for dataset, groups in matrices.items():
        tasks = matrix_tasks(groups, a, dataset)
        pairs = sum(pairs_per_image(g, a.forward_share) for g in groups) * a.images
        name, shape = DATASETS[dataset]
        work = f"{name} paper matrix, DenseNet-BC-{a.densenet_depth} at {'x'.join(map(str, shape[1:] + shape[:1]))}"
        rows.append(_row(work, sum(g.cells for g in groups), tasks, pairs, a))
        everything += tasks
    tasks = training_tasks(training, a)
    pairs = sum(tasks) * a.throughput[TRAINING]
    work = f"vu2018 training: {len(training.models)} models x {a.training_steps:,} steps"
    rows.append(_row(work, 0, tasks, pairs, a))
    everything += tasks
    rows.append(
        _row("all of the above together", sum(r.cells for r in rows), everything, sum(r.pairs for r in rows), a)
    )
    return rows


def group_work(group, measured: dict[str, tuple[float, float]]) -> GroupWork:
    """A craft group's passes per image: each craft's as measured, else its family's bound; plus one forward
    pass per image for each cell scored on crafts made for another (transfer, tailored)."""
    passes = list(craft_passes(group, measured))
    forward = sum(f for f, _, _ in passes) + len(group.cells) - len(group.crafts)
    backward = sum(b for _, b, _ in passes)
    found = sum(seen for _, _, seen in passes)
    return GroupWork(group.describe(), group.attack, len(group.crafts), len(group.cells), forward, backward, found)


def paper_groups(dataset: str, measured: dict[str, tuple[float, float]], preset: str = "paper") -> list[GroupWork]:
    """The craft groups of ``preset`` on ``dataset`` (every attack at one image count: passes per image do not
    depend on it), each with its passes per image."""
    from bench.matrix.groups import craft_groups
    from bench.matrix.plan import MatrixOptions, make_plan
    from bench.matrix.preset import load_preset

    attacks = {g.attack for g in load_preset(preset).groups}
    options = MatrixOptions(dataset=dataset, preset=preset, n_samples=dict.fromkeys(attacks, 1000), shard_images=0)
    return [group_work(g, measured) for g in craft_groups(make_plan(options).cells)]


def vu2018_training(preset: str = "vu2018") -> TrainingWork:
    """vu2018's training from its preset: its models, batch (Madry et al.'s 50) and PGD steps (k = 40)."""
    from bench.matrix.preset import load_preset

    p = load_preset(preset)
    config = p.train_config()
    if config.adversarial is None:
        raise ConfigError(f"preset {preset!r} has no [training.adversarial]; vu2018's training needs PGD's steps.")
    return TrainingWork(tuple(p.models), config.batch_size, config.adversarial.passes)


def forward_macs(network, shape: tuple[int, int, int]) -> int:
    """Multiply-adds of one image's forward pass through ``network``'s convolutions and linear layers."""
    import torch
    from torch import nn

    total = 0

    def count(module, args, output) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kernel = module.kernel_size[0] * module.kernel_size[1]
            total += output.numel() * module.in_channels * kernel // module.groups
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    handles = [m.register_forward_hook(count) for m in network.modules()]
    try:
        with torch.no_grad():
            network.eval()(torch.zeros(1, *shape))
    finally:
        for h in handles:
            h.remove()
    return total


def networks(depth: int = 40) -> dict[str, tuple[Any, tuple[int, int, int]]]:
    """Throughput key -> (a freshly built backbone, its image shape): the repository's DenseNet-BC of ``depth``
    (growth 12, as models/spec.py builds it) per dataset, and vu2018's Table I CNN."""
    from models.architectures import DenseNetBC, TableICNN

    found = {key: (DenseNetBC(shape[0], depth=depth), shape) for key, (_, shape) in DATASETS.items()}
    found[TRAINING] = (TableICNN(1, 28), (1, 28, 28))
    return found


def default_throughput(tflops: float = TFLOPS, depth: int = 40) -> dict[str, tuple[float, str]]:
    """Throughput key -> (assumed images/s of forward+backward pairs, how it was derived)."""
    if not tflops > 0:
        raise ConfigError(f"--tflops {tflops:g}: expected a sustained rate above 0 (10^12 FLOP/s).")
    _check_depth(depth)
    found = {}
    for key, (network, shape) in networks(depth).items():
        macs = forward_macs(network, shape)
        rate = round(tflops * 1e12 / (FLOPS_PER_PAIR * macs), -2)
        found[key] = (rate, f"{tflops:g} TFLOP/s / ({FLOPS_PER_PAIR} x {macs / 1e6:.1f} M multiply-adds per image)")
    return found


def measure_here(depth: int = 40, images: int = 64) -> dict[str, tuple[float, float]]:
    """Throughput key -> (images/s of forward+backward pairs, forward share) measured on one CPU thread here at a
    batch of ``images`` (bench.matrix.passes.measure_throughput): a reference point beside the assumption."""
    import torch

    from bench.matrix.passes import measure_throughput

    found, threads = {}, torch.get_num_threads()
    torch.set_num_threads(1)  # one core: a number that does not depend on what else the machine runs
    try:
        for key, (network, shape) in networks(depth).items():
            t = measure_throughput(network, torch.rand(images, *shape), rounds=2)
            found[key] = (1 / t.per_image, t.forward_s / t.per_image)
    finally:
        torch.set_num_threads(threads)
    return found


def duration(seconds: float) -> str:
    """Seconds as s, min, h (under two days) or d."""
    for unit, size, limit in (("s", 1, 60), ("min", 60, 3600), ("h", 3600, 48 * 3600)):
        if seconds < limit:
            return f"{seconds / size:.{1 if unit == 'h' else 0}f} {unit}"
    return f"{seconds / 86400:.1f} d"


def table_lines(rows: list[Row], a: Assumptions) -> list[str]:
    gpus = [f"{g} GPU{'s' if g > 1 else ''}" for g in a.gpus]
    lines = [
        "| work | cells | tasks | forward+backward pairs | longest task | " + " | ".join(gpus) + " |",
        "| --- | ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in gpus) + " |",
    ]
    for r in rows:
        walls = " | ".join(duration(r.wall[g]) for g in a.gpus)
        cells = f"{r.cells:,}" if r.cells else "-"
        lines.append(f"| {r.work} | {cells} | {r.tasks:,} | {r.pairs:.3g} | {duration(r.longest)} | {walls} |")
    return lines


def attack_lines(groups: list[GroupWork], a: Assumptions) -> list[str]:
    """Per attack: its groups' passes per image and where they come from, and its share of the matrix's time."""
    total = sum(pairs_per_image(g, a.forward_share) for g in groups)
    lines = [
        "| attack | groups | crafts | cells | pairs per image, its crafts together | crafts measured | share |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    by_attack: dict[str, list[GroupWork]] = {}
    for g in groups:
        by_attack.setdefault(g.attack, []).append(g)
    ranked = sorted(by_attack.items(), key=lambda kv: -sum(pairs_per_image(g, a.forward_share) for g in kv[1]))
    for attack, gs in ranked:
        pairs = sum(pairs_per_image(g, a.forward_share) for g in gs)
        crafts, measured = sum(g.crafts for g in gs), sum(g.measured for g in gs)
        lines.append(
            f"| {attack} | {len(gs)} | {crafts} | {sum(g.cells for g in gs)} | {pairs:,.0f} | "
            f"{measured} of {crafts} | {pairs / total:.1%} |"
        )
    return lines


def assumption_lines(a: Assumptions, training: TrainingWork, store: str, here: dict | None) -> list[str]:
    net = f"DenseNet-BC-{a.densenet_depth} (growth 12)"
    what = {"mnist": f"{net} at 28x28x1", "cifar10": f"{net} at 32x32x3", TRAINING: "Table I CNN at 28x28x1"}
    rates = "; ".join(f"{what[k]}: {a.throughput[k]:,.0f} images/s ({a.throughput_from.get(k, 'given')})" for k in what)
    lines = [
        f"- **GPU throughput, assumed (no GPU was measured)**, in images per second of one forward and one backward "
        f"pass on one GPU: {rates}. `--throughput KEY=N` sets one ({', '.join(THROUGHPUT_KEYS)}), `--tflops` the "
        "rate the defaults divide, `--densenet-depth` the network (saito2019 gives no depth); a multiply-add is 2 "
        "FLOPs and a backward pass twice a forward. That rate is a guess, not a measurement: a fraction of a "
        "data-centre GPU's FP32 peak (tens of TFLOP/s), as layers this narrow (12 to a few hundred channels) keep "
        "a GPU far below it.",
    ]
    if here:
        measured = "; ".join(f"{what[k]}: {r:,.0f} images/s (forward share {s:.2f})" for k, (r, s) in here.items())
        lines.append(f"- For reference, measured here on one CPU thread (batch 64, `--measure-here`): {measured}.")
    shard = f"tasks of {a.shard_images:,} images" if a.shard_images else "one task per cell"
    lines += [
        f"- **Images per cell:** {a.images:,} (`--images`), crafted in {shard} (`--shard-images`): a craft group "
        "on one shard is one task, placed longest first on the GPU free first.",
        f"- **Passes per image:** as recorded in `{store}` (forward and backward passes over n, per craft), else "
        "the attack's bound (`AttackFamily.cost`); each cell scored on crafts made for another adds one forward "
        "pass per image. CIFAR-10 takes MNIST's counts: attacks that stop an image at its first success (CW, "
        "L-BFGS, margin PGD, Square) may need more there, and on DenseNet-BC than on the store's CNN.",
        f"- **A forward pass alone** costs {a.forward_share:.2f} of a forward+backward pair, a backward pass "
        "alone the rest (`--forward-share`).",
        f"- **vu2018's training:** {len(training.models)} models ({', '.join(training.models)}), "
        f"{a.training_steps:,} steps (`--training-steps`) of {training.batch} images (Madry et al.'s batch: "
        f"vu2018 gives none), each image {training.attack_passes:g} PGD passes and the update: "
        f"{training.attack_passes + 1:g} forward+backward pairs per image and step. Training one model is one "
        "task: data parallelism across GPUs is not modelled, so more GPUs than models do not help.",
        "- **Left out:** training the DenseNet-BC models the matrices attack, the gradient-health diagnostics, "
        "data loading and any time beyond the passes (a report's timing table gives a run's ratio to its "
        "pass-limited time), and the lower throughput of small batches (vu2018's 50).",
    ]
    return lines


def render(
    rows: list[Row],
    matrices: dict[str, list[GroupWork]],
    training: TrainingWork,
    a: Assumptions,
    *,
    store: str,
    command: str,
    here: dict | None = None,
) -> str:
    """The markdown page: the table, the assumptions beside it, and the passes per attack behind it."""
    lines = [
        "# Cost model: the papers' full runs on 1, 8 and 64 GPUs",
        "",
        f"Written by `{command}` from the passes per image a results store recorded and an assumed GPU throughput "
        "(below); do not edit by hand. Times are wall-clock time of the passes alone, on GPUs that start together.",
        "",
        *table_lines(rows, a),
        "",
        "## Assumptions",
        "",
        *assumption_lines(a, training, store, here),
    ]
    for dataset, groups in list(matrices.items())[:1]:
        lines += ["", f"## Passes per image by attack ({DATASETS[dataset][0]} paper matrix)", ""]
        lines += attack_lines(groups, a)
    return "\n".join(lines) + "\n"
