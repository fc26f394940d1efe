"""L-inf projected gradient descent on a model's own loss (Madry et al. 2018), and its one-step FGSM-RS form
(Wong et al. 2020), used for adversarial training.

Only input gradients are taken (``torch.autograd.grad`` with respect to the input), so the weight
gradients that a full ``backward()`` would compute are never spent.
"""

from __future__ import annotations

import torch
from torch import nn

from models.losses import ModelLoss


def pgd_linf(
    network: nn.Module,
    loss: ModelLoss,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    eps_step: float,
    max_iter: int,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    clip_start: bool = True,
) -> torch.Tensor:
    """Untargeted PGD: ascend the per-example loss by ``eps_step * sign(grad)`` within the eps ball and [0, 1].
    ``clip_start=False`` takes the first gradient at the random start as drawn, which may leave [0, 1]."""
    lower, upper = (x - eps).clamp_min(0.0), (x + eps).clamp_max(1.0)
    x_adv = x.clone()
    if random_start:
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        x_adv = x + (2 * noise - 1) * eps
        x_adv = torch.minimum(torch.maximum(x_adv, lower), upper) if clip_start else x_adv
    for _ in range(max_iter):
        x_adv.requires_grad_(True)
        with torch.enable_grad():
            total = loss.per_example(network(x_adv), y).sum()
            (grad,) = torch.autograd.grad(total, x_adv)
        x_adv = torch.minimum(torch.maximum(x_adv.detach() + eps_step * grad.sign(), lower), upper)
    return x_adv.detach()


def fgsm_rs(
    network: nn.Module,
    loss: ModelLoss,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    alpha: float,
    generator: torch.Generator | None = None,
    clip_start: bool = False,
) -> torch.Tensor:
    """FGSM with a random start (Wong, Rice and Kolter 2020): a start drawn uniformly from the eps ball, one step
    of ``alpha * sign(grad)`` on the model's own loss, projected back into the ball and [0, 1]. It is one PGD step
    from a random start, with the step ``alpha`` (their 1.25 x eps) larger than a PGD step: the start is what keeps
    it from the catastrophic overfitting of plain FGSM training.

    As Wong et al. (their Algorithm 3 and code), the start is not clipped to [0, 1] before the gradient is taken.
    It matters on MNIST, whose pixels sit mostly at 0 or 1: clipped there, half the start is 0 and the step of
    alpha > eps lands every pixel whose gradient points inward on the ball's edge, as plain FGSM does.
    ``clip_start=True`` is the start that the FGSM-RS models stored before this option were trained with."""
    return pgd_linf(network, loss, x, y, eps, alpha, 1, random_start=True, generator=generator, clip_start=clip_start)
