"""Training, plain or PGD-adversarial, deterministic for a seed on the CPU."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from bench.data.datasets import Split
from models import checkpoint
from models.checkpoint import EMPTY_TALLY, Progress
from models.inference import accuracy
from models.network import Network, build_loss, build_network
from models.pgd import pgd_linf
from models.spec import ModelSpec

log = logging.getLogger(__name__)

CURVE_EVERY = 100  # steps per point of the training curve: a short adversarial training is judged by its slope
CHECKPOINT_SECONDS = 300.0  # how often a training writes its state to resume from


@dataclass
class TrainedModel:
    network: Network
    clean_accuracy: float
    n_test: int
    train_seconds: float
    history: list[dict[str, float]]  # per epoch
    curve: list[dict[str, float]]  # every CURVE_EVERY steps: loss and accuracy on the batches of that window


def train_model(
    spec: ModelSpec,
    train_split: Split,
    test_split: Split,
    *,
    device: str = "cpu",
    codebook_key: str | None = None,
    progress: bool = True,
    checkpoint_dir: Path | None = None,
    checkpoint_every: float = CHECKPOINT_SECONDS,
) -> TrainedModel:
    """Train ``spec`` on ``train_split`` and measure its accuracy on ``test_split``.

    With ``checkpoint_dir`` the whole training state is written there every ``checkpoint_every`` seconds,
    and a checkpoint found there is resumed (models/checkpoint.py): the weights come out the same.
    """
    cfg = spec.train
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    n_classes = int(train_split.y.max()) + 1
    network = build_network(spec, tuple(train_split.x.shape[1:]), n_classes, codebook_key)
    network, optimizer = for_training(network, device, cfg.lr)
    loss_fn = build_loss(spec)
    n = len(train_split)
    batches = math.ceil(n / cfg.batch_size)
    total_steps = cfg.epochs * batches
    scheduler = _schedule(optimizer, cfg.schedule, total_steps)
    order, state = _resume(checkpoint_dir, spec, network, optimizer, generator, scheduler, batches)
    start = last_checkpoint = time.perf_counter()
    while state.epoch < cfg.epochs:
        epoch = state.epoch
        if state.batch == 0:
            order = torch.randperm(n, generator=generator)
        bar = tqdm(
            range(state.batch, batches),
            initial=state.batch,
            total=batches,
            desc=f"{spec.name} {epoch + 1}/{cfg.epochs}",
            disable=not progress,
            leave=False,
        )
        for b in bar:
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            x, y = train_split.x[idx].to(device), train_split.y[idx].to(device)
            loss, correct = _train_step(network, loss_fn, optimizer, scheduler, x, y, cfg.adversarial, generator)
            step = epoch * batches + b + 1
            _tally(state, loss, correct, len(y), step, total_steps)
            running = _mean(state.epoch_tally)
            bar.set_postfix(loss=f"{running['loss']:.4f}", acc=f"{running['train_accuracy']:.4f}")
            state.batch = b + 1
            if checkpoint_dir and time.perf_counter() - last_checkpoint >= checkpoint_every and step < total_steps:
                so_far = replace(state, seconds=state.seconds + time.perf_counter() - start)
                checkpoint.save(checkpoint_dir, spec.key(), network, optimizer, generator, order, so_far)
                last_checkpoint = time.perf_counter()
        _end_epoch(state, spec.name)
    seconds = state.seconds + time.perf_counter() - start
    network = network.to(memory_format=torch.contiguous_format)  # evaluated and stored as every later use sees it
    acc = accuracy(network, test_split.x, test_split.y, device=device)
    log.info("%s: clean test accuracy %.4f on %d images, %.0f s", spec.name, acc, len(test_split), seconds)
    return TrainedModel(network.cpu(), acc, len(test_split), seconds, state.history, state.curve)


def for_training(network: Network, device: str, lr: float) -> tuple[Network, torch.optim.Adam]:
    """The network on ``device`` and its Adam optimiser. On the CPU the network trains in channels-last memory
    format (oneDNN's convolutions and max-pool without reorders) and Adam runs fused: about 14% less time per
    step, deterministic for a seed but not bit-identical to the contiguous, per-tensor Adam used elsewhere."""
    network = network.to(device)
    if torch.device(device).type != "cpu":
        return network, torch.optim.Adam(network.parameters(), lr=lr)
    network = network.to(memory_format=torch.channels_last)
    return network, torch.optim.Adam(network.parameters(), lr=lr, fused=True)


def _end_epoch(state: Progress, name: str) -> None:
    """Close the epoch: its mean loss and accuracy into the history, the counters to the next epoch's start."""
    done = _take(state.epoch_tally)
    state.history.append({"epoch": state.epoch + 1, **done})
    log.info("%s epoch %d: loss %.4f, train accuracy %.4f", name, state.epoch + 1, *done.values())
    state.epoch, state.batch = state.epoch + 1, 0


def _tally(state: Progress, loss: float, correct: int, seen: int, step: int, total_steps: int) -> None:
    """Count a step into the epoch's tally and the curve's window; close a curve point every CURVE_EVERY steps."""
    for tally in (state.epoch_tally, state.window):
        _add(tally, loss, correct, seen)
    if step % CURVE_EVERY == 0 or step == total_steps:
        state.curve.append({"step": step, **_take(state.window)})


def _resume(checkpoint_dir, spec, network, optimizer, generator, scheduler, batches: int) -> tuple:
    """(epoch order, progress) from a checkpoint in ``checkpoint_dir``, restoring the trainer's state in place;
    (None, a fresh Progress) when there is none."""
    resumed = checkpoint_dir and checkpoint.load(checkpoint_dir, spec.key(), network, optimizer, generator)
    if not resumed:
        return None, Progress()
    order, state = resumed
    _match_layouts(optimizer)
    scheduler.last_epoch = state.epoch * batches + state.batch  # the optimizer's lr came with the checkpoint
    log.info("%s: resuming at epoch %d, batch %d of %d", spec.name, state.epoch + 1, state.batch, batches)
    return order, state


def _match_layouts(optimizer: torch.optim.Optimizer) -> None:
    """Give Adam's restored moments their parameter's memory layout. A checkpoint stores them contiguous, and
    fused Adam on the CPU pairs elements by position in memory: a channels-last weight with contiguous moments
    would be updated with other elements' moments."""
    for param, state in optimizer.state.items():
        for name, value in state.items():
            if value.shape == param.shape and value.stride() != param.stride():
                state[name] = torch.empty_like(param).copy_(value)


def _schedule(optimizer: torch.optim.Optimizer, schedule: str, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Cosine annealing to 0 over every step, or a constant learning rate."""
    if schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / total_steps))
        )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


def _train_step(network, loss_fn, optimizer, scheduler, x, y, adversarial, generator) -> tuple[float, int]:
    """One optimiser step on a batch (replaced by PGD examples under adversarial training): (loss, correct)."""
    if adversarial:
        network.eval()  # attack the model as it is now; batch-norm statistics untouched
        a = adversarial
        x = pgd_linf(network, loss_fn, x, y, a.eps, a.eps_step, a.max_iter, generator=generator)
    network.train()
    optimizer.zero_grad(set_to_none=True)
    scores = network(x)
    loss = loss_fn(scores, y)
    loss.backward()
    optimizer.step()
    scheduler.step()
    return loss.item(), int((scores.argmax(1) == y).sum())


def _add(tally: dict[str, float], loss: float, correct: int, seen: int) -> None:
    tally["loss"] += loss * seen
    tally["correct"] += correct
    tally["seen"] += seen


def _mean(tally: dict[str, float]) -> dict[str, float]:
    return {"loss": tally["loss"] / tally["seen"], "train_accuracy": tally["correct"] / tally["seen"]}


def _take(tally: dict[str, float]) -> dict[str, float]:
    """The tally's mean loss and accuracy, and the tally emptied."""
    out = _mean(tally)
    tally.update(EMPTY_TALLY)
    return out
