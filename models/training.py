"""Training, plain or PGD-adversarial, deterministic for a seed on the CPU."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from bench.datasets import Split
from models.inference import accuracy
from models.network import Network, build_loss, build_network
from models.pgd import pgd_linf
from models.spec import ModelSpec

log = logging.getLogger(__name__)


@dataclass
class TrainedModel:
    network: Network
    clean_accuracy: float
    n_test: int
    train_seconds: float
    history: list[dict[str, float]]


def train_model(
    spec: ModelSpec,
    train_split: Split,
    test_split: Split,
    *,
    device: str = "cpu",
    codebook_key: str | None = None,
    progress: bool = True,
) -> TrainedModel:
    """Train ``spec`` on ``train_split`` and measure its accuracy on ``test_split``."""
    cfg = spec.train
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    n_classes = int(train_split.y.max()) + 1
    network = build_network(spec, tuple(train_split.x.shape[1:]), n_classes, codebook_key).to(device)
    loss_fn = build_loss(spec)
    optimizer = torch.optim.Adam(network.parameters(), lr=cfg.lr)
    n = len(train_split)
    batches = math.ceil(n / cfg.batch_size)
    total_steps = cfg.epochs * batches
    if cfg.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / total_steps))
        )
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)

    history: list[dict[str, float]] = []
    start = time.perf_counter()
    for epoch in range(cfg.epochs):
        order = torch.randperm(n, generator=generator)
        seen = correct = 0
        loss_sum = 0.0
        bar = tqdm(range(batches), desc=f"{spec.name} {epoch + 1}/{cfg.epochs}", disable=not progress, leave=False)
        for b in bar:
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            x, y = train_split.x[idx].to(device), train_split.y[idx].to(device)
            if cfg.adversarial:
                network.eval()  # attack the model as it is now; batch-norm statistics untouched
                a = cfg.adversarial
                x = pgd_linf(network, loss_fn, x, y, a.eps, a.eps_step, a.max_iter, generator=generator)
            network.train()
            optimizer.zero_grad(set_to_none=True)
            scores = network(x)
            loss = loss_fn(scores, y)
            loss.backward()
            optimizer.step()
            scheduler.step()
            seen += len(y)
            correct += (scores.argmax(1) == y).sum().item()
            loss_sum += loss.item() * len(y)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}")
        history.append({"epoch": epoch + 1, "loss": loss_sum / seen, "train_accuracy": correct / seen})
        log.info("%s epoch %d: loss %.4f, train accuracy %.4f", spec.name, epoch + 1, loss_sum / seen, correct / seen)
    seconds = time.perf_counter() - start
    acc = accuracy(network, test_split.x, test_split.y, device=device)
    log.info("%s: clean test accuracy %.4f on %d images, %.0f s", spec.name, acc, len(test_split), seconds)
    return TrainedModel(network.cpu(), acc, len(test_split), seconds, history)
