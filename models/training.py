"""Training, plain or adversarial (PGD, or FGSM-RS with its guard), deterministic for a seed on the CPU."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from bench.data.datasets import Split
from models import checkpoint
from models.checkpoint import EMPTY_TALLY, Progress
from models.fast_at import OverfitGuard, cyclic
from models.inference import accuracy
from models.losses import ModelLoss
from models.network import Network, build_loss, build_network
from models.pgd import fgsm_rs, pgd_linf
from models.spec import GUARD_EVERY, ModelSpec

log = logging.getLogger(__name__)

CURVE_EVERY = GUARD_EVERY  # steps per point of the training curve (and FGSM-RS guard checks): 100
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
    FGSM-RS training (``adversarial.method = "fgsm_rs"``) checks its PGD accuracy at every curve point and may
    stop early (models/fast_at.py); its checkpoints are written just after a check that passed.
    """
    cfg = spec.train
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    n_classes = int(train_split.y.max()) + 1
    network = build_network(spec, tuple(train_split.x.shape[1:]), n_classes, codebook_key)
    network, optimizer = for_training(network, device, cfg.lr)
    batches = math.ceil(len(train_split) / cfg.batch_size)
    scheduler = _schedule(optimizer, cfg.schedule, cfg.epochs * batches)
    order, state = _resume(checkpoint_dir, spec, network, optimizer, generator, scheduler, batches)
    run = _Run(spec, train_split, network, optimizer, scheduler, build_loss(spec), generator, device, batches)
    run.checkpoints, run.every, run.progress = checkpoint_dir, checkpoint_every, progress
    run.guard = _guard(cfg, train_split, network, state)
    while state.epoch < cfg.epochs and not run.stopped:
        if state.batch == 0:
            order = torch.randperm(len(train_split), generator=generator)
        run.epoch(order, state)
        _end_epoch(state, spec.name)
    seconds = state.seconds + time.perf_counter() - run.start
    network = network.to(memory_format=torch.contiguous_format)  # evaluated and stored as every later use sees it
    acc = accuracy(network, test_split.x, test_split.y, device=device)
    log.info("%s: clean test accuracy %.4f on %d images, %.0f s", spec.name, acc, len(test_split), seconds)
    return TrainedModel(network.cpu(), acc, len(test_split), seconds, state.history, state.curve)


def _guard(cfg, train_split: Split, network: Network, state: Progress) -> OverfitGuard | None:
    """FGSM-RS training's guard on the split's first batch; None for the other recipes."""
    adv = cfg.adversarial
    if not adv or adv.method != "fgsm_rs":
        return None
    x, y = train_split.x[: cfg.batch_size], train_split.y[: cfg.batch_size]
    return OverfitGuard.start(adv, x, y, network, state.curve)


@dataclass
class _Run:
    """One training's loop: its parts, and whether the guard stopped it."""

    spec: ModelSpec
    split: Split
    network: Network
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    loss_fn: ModelLoss
    generator: torch.Generator
    device: str
    batches: int
    checkpoints: Path | None = None
    every: float = CHECKPOINT_SECONDS
    progress: bool = True
    guard: OverfitGuard | None = None
    stopped: bool = False
    start: float = field(default_factory=time.perf_counter)
    last_checkpoint: float = field(default_factory=time.perf_counter)

    def epoch(self, order: torch.Tensor, state: Progress) -> None:
        """Run the rest of ``state``'s epoch, or up to the step at which the guard stops the training."""
        cfg, total = self.spec.train, self.spec.train.epochs * self.batches
        bar = tqdm(
            range(state.batch, self.batches),
            initial=state.batch,
            total=self.batches,
            desc=f"{self.spec.name} {state.epoch + 1}/{cfg.epochs}",
            disable=not self.progress,
            leave=False,
        )
        for b in bar:
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            x, y = self.split.x[idx].to(self.device), self.split.y[idx].to(self.device)
            parts = (self.network, self.loss_fn, self.optimizer, self.scheduler)
            loss, correct = _train_step(*parts, x, y, cfg.adversarial, self.generator)
            step = state.epoch * self.batches + b + 1
            closed = _tally(state, loss, correct, len(y), step, total)
            running = _mean(state.epoch_tally)
            bar.set_postfix(loss=f"{running['loss']:.4f}", acc=f"{running['train_accuracy']:.4f}")
            state.batch = b + 1
            if self.guard is None:
                self._maybe_save(order, state, step, total)
            elif closed:  # FGSM-RS: checked at every curve point, saved only just after a check that passed
                self._check(state.curve[-1], step, last=step >= total)
                if self.stopped:
                    return
                if self.guard.passed:
                    self._maybe_save(order, state, step, total)

    def _check(self, point: dict[str, float], step: int, last: bool) -> None:
        """The guard's check at a curve point; on a collapse the last good weights are put back and the run stops."""
        assert self.guard is not None
        point["pgd_accuracy"], collapsed = self.guard.check(self.network, self.loss_fn, self.generator, step, last)
        if collapsed:
            self.guard.restore(self.network)
            point["restored_step"] = self.guard.good_step
            self.stopped = True
            log.warning(
                "%s: PGD accuracy on the guard's batch fell to %.3f at step %d (catastrophic overfitting); "
                "stopped, keeping the weights of step %d",
                *(self.spec.name, point["pgd_accuracy"], step, self.guard.good_step),
            )

    def _maybe_save(self, order: torch.Tensor, state: Progress, step: int, total: int) -> None:
        if not self.checkpoints or time.perf_counter() - self.last_checkpoint < self.every or step >= total:
            return
        so_far = replace(state, seconds=state.seconds + time.perf_counter() - self.start)
        parts = (self.network, self.optimizer, self.generator, order, so_far)
        checkpoint.save(self.checkpoints, self.spec.key(), *parts)
        self.last_checkpoint = time.perf_counter()


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


def _tally(state: Progress, loss: float, correct: int, seen: int, step: int, total_steps: int) -> bool:
    """Count a step into the epoch's tally and the curve's window; close a curve point every CURVE_EVERY steps
    and at the last (True when this step closed one)."""
    for tally in (state.epoch_tally, state.window):
        _add(tally, loss, correct, seen)
    if step % CURVE_EVERY == 0 or step == total_steps:
        state.curve.append({"step": step, **_take(state.window)})
        return True
    return False


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
    """Cosine annealing to 0 over every step, Wong et al.'s one cycle (models/fast_at.py), or a constant rate."""
    if schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / total_steps))
        )
    if schedule == "cyclic":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, cyclic(total_steps))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


def _train_step(network, loss_fn, optimizer, scheduler, x, y, adversarial, generator) -> tuple[float, int]:
    """One optimiser step on a batch (replaced by PGD or FGSM-RS examples under adversarial training):
    (loss, correct)."""
    if adversarial:
        network.eval()  # attack the model as it is now; batch-norm statistics untouched
        a = adversarial
        if a.method == "fgsm_rs":
            x = fgsm_rs(network, loss_fn, x, y, a.eps, a.alpha, generator=generator, clip_start=a.clip_start)
        else:
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
