"""What "Fast is better than free" (Wong, Rice and Kolter 2020) adds to FGSM training besides the random start
(models/pgd.py ``fgsm_rs``): the one-cycle learning rate and the guard against catastrophic overfitting.

Catastrophic overfitting: within a few steps an FGSM-trained model's accuracy on PGD examples collapses to about 0
while its accuracy on FGSM examples climbs towards 1. Wong et al. check, after every epoch, the PGD accuracy on a
training minibatch (CIFAR-10: PGD-5 on the epoch's first batch), stop the training when it falls by more than 0.2
below the previous check, and keep the weights of the last check that passed (their ``--early-stop``).

Here, since an MNIST epoch on a small CPU takes many minutes and a collapse takes a few hundred steps: the check
runs at every point of the training curve (models.training.CURVE_EVERY steps, and the last step), with the
training's own PGD settings (``eps``, ``eps_step``, ``max_iter``: vu2018's PGD-40 by default, so the curve's PGD
accuracy is the "PGD-train accuracy" of the PGD-trained models) on one fixed training batch (the split's first
``batch_size`` images, the same at every check so the curve is not sampling noise), and its accuracy goes into
the curve point as ``pgd_accuracy``. A fall of more than ``guard_drop`` (0.2) below the last check that passed,
at ``guard_checks`` checks in a row (and at the last step, where no check follows), stops the training, puts back
the weights of the last check that passed, and marks the point with ``restored_step``. Wong et al. stop at one
fall (``guard_checks = 1``, the default); checked every 100 steps, one batch's PGD accuracy can swing by 0.2 while
it climbs (measured here: 0.45, 0.69, 0.48 at steps 2800-3000, in the curve that `bench train --dataset mnist
--model O:SOFTMAX:CE --fgsm-rs-at --epochs 10 --batch-size 100 --lr 5e-3` stores, key 6a3ba4ae83b779b5), so a
preset may ask the fall to hold at the next check: a collapse to about 0 does, a swing does not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from models.losses import ModelLoss
from models.pgd import pgd_linf
from models.spec import AdversarialTraining

CYCLE_PEAK = 0.4  # Wong et al.'s MNIST schedule peaks at epoch 2/5 of the training (4 of 10)


def cyclic(total_steps: int) -> Callable[[int], float]:
    """The one-cycle (triangular) factor of the learning rate: 0 up to 1 at 2/5 of the steps, down to 0 at the
    last, linearly, as Wong et al.'s ``np.interp([t], [0, 2/5, 1] x epochs, [0, lr_max, 0])``. Step k (from 0)
    gets the value at (k + 1) / total_steps, as their loop sets the rate after each step's share of an epoch."""

    def factor(step: int) -> float:
        t = min(1.0, (step + 1) / total_steps)
        return t / CYCLE_PEAK if t <= CYCLE_PEAK else (1.0 - t) / (1.0 - CYCLE_PEAK)

    return factor


def pgd_accuracy(
    network: nn.Module,
    loss: ModelLoss,
    x: torch.Tensor,
    y: torch.Tensor,
    adversarial: AdversarialTraining,
    generator: torch.Generator,
) -> float:
    """Accuracy of ``network`` (in eval mode) on random-start PGD examples of (x, y) with the training's settings."""
    network.eval()
    a = adversarial
    x_adv = pgd_linf(network, loss, x, y, a.eps, a.eps_step, a.max_iter, generator=generator)
    with torch.no_grad():
        return float((network(x_adv).argmax(1) == y).float().mean())


@dataclass
class OverfitGuard:
    """The check against catastrophic overfitting on one fixed training batch; see the module's docstring."""

    x: torch.Tensor
    y: torch.Tensor
    adversarial: AdversarialTraining
    previous: float | None = None  # PGD accuracy of the last check that passed
    good_step: int = 0  # the step of that check
    good: dict[str, torch.Tensor] = field(default_factory=dict)  # the weights at that check
    falls: int = 0  # checks in a row since then that fell more than guard_drop below it

    @classmethod
    def start(
        cls, adversarial: AdversarialTraining, x: torch.Tensor, y: torch.Tensor, network: nn.Module, curve: list
    ) -> OverfitGuard:
        """A guard on the batch (x, y). A resumed training's last curve point is its last passed check, and its
        weights are the network's as restored: the trainer writes checkpoints only just after a passed check."""
        guard = cls(x, y, adversarial)
        checked = [p for p in curve if "pgd_accuracy" in p]
        if checked:
            guard.previous, guard.good_step = checked[-1]["pgd_accuracy"], checked[-1]["step"]
            guard.good = _copy(network)
        return guard

    def check(
        self, network: nn.Module, loss: ModelLoss, generator: torch.Generator, step: int, last: bool = False
    ) -> tuple[float, bool]:
        """(the PGD accuracy now, whether it collapsed: it fell at ``guard_checks`` checks in a row, or at the
        ``last`` one); a check that does not fall becomes the last good one."""
        device = next(network.parameters()).device
        acc = pgd_accuracy(network, loss, self.x.to(device), self.y.to(device), self.adversarial, generator)
        fell = self.previous is not None and acc < self.previous - self.adversarial.guard_drop
        if not fell:
            self.previous, self.good_step, self.good, self.falls = acc, step, _copy(network), 0
            return acc, False
        self.falls += 1
        return acc, last or self.falls >= self.adversarial.guard_checks

    @property
    def passed(self) -> bool:
        """Whether the last check passed (the trainer writes checkpoints only then)."""
        return self.falls == 0

    def restore(self, network: nn.Module) -> None:
        """Put back the weights of the last check that passed."""
        network.load_state_dict(self.good)


def _copy(network: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in network.state_dict().items()}
