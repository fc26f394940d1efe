"""Szegedy et al.'s box-constrained L-BFGS attack, with the model's own training loss, batched as Cleverhans does."""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
from art.attacks.attack import EvasionAttack
from art.estimators.classification import PyTorchClassifier
from scipy.optimize import fmin_l_bfgs_b
from threadpoolctl import threadpool_limits

from attacks_ext._common import as_class_indices, as_input, check_bool, check_int, check_number, in_batches

log = logging.getLogger(__name__)


class LBFGSAttack(EvasionAttack):
    """Szegedy et al. (2014), "Intriguing properties of neural networks", the box-constrained L-BFGS attack.

    Targeted only. Minimises, jointly over a batch, sum_n c_n * ||x'_n - x_n||_2^2 + L(x'_n, t_n) over
    x' in [0, 1]^(N x C x H x W) with scipy's L-BFGS-B from x' = x, where L is the model's own training
    loss (``estimator.loss_fn.per_example`` on the forward's scores: cross-entropy, MSE to one-hot or to
    the codeword, ...). Then a binary search on c per example: an example whose x' is classified as its
    target keeps x' if its L2 is the smallest so far and its c is raised (less distortion allowed next
    time); one that failed has its c lowered. Examples that never succeed are returned unchanged.

    Cleverhans writes the trade-off the other way round (its constant multiplies the loss, not the
    distance), so its ``initial_const`` corresponds to 1 / c here.

    :param classifier: a ``BenchClassifier`` (a ``PyTorchClassifier`` with ``loss_fn.per_example``) on
        inputs in [0, 1]. Its network is called directly, so the estimator's preprocessing (identity
        for ``BenchClassifier``) is not applied.
    :param targeted: must be True; the attack has no untargeted form.
    :param initial_const: the first c of every example (> 0); a larger c gives smaller perturbations.
    :param binary_search_steps: L-BFGS-B solves per batch, one per value of c (>= 1).
    :param max_iter: L-BFGS-B iterations per solve (>= 1).
    :param batch_size: images optimised jointly (>= 1).
    :param verbose: show a progress bar over batches.
    """

    attack_params = EvasionAttack.attack_params + [
        "targeted",
        "initial_const",
        "binary_search_steps",
        "max_iter",
        "batch_size",
        "verbose",
    ]
    _estimator_requirements = (PyTorchClassifier,)

    def __init__(
        self,
        classifier: PyTorchClassifier,
        targeted: bool = True,
        initial_const: float = 0.01,
        binary_search_steps: int = 5,
        max_iter: int = 1000,
        batch_size: int = 128,
        verbose: bool = False,
    ) -> None:
        super().__init__(estimator=classifier)
        self._targeted = targeted
        self.initial_const = initial_const
        self.binary_search_steps = binary_search_steps
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.verbose = verbose
        self._check_params()

    def generate(self, x: np.ndarray, y: np.ndarray | None = None, **kwargs) -> np.ndarray:
        """Adversarial examples for ``x`` (N, C, H, W) in [0, 1], as float32 of the same shape.

        :param y: the target classes, as indices (N,) or one-hot rows (N, K); required.
        """
        if y is None:
            raise ValueError("The L-BFGS attack is targeted: pass the target classes as y to generate().")
        x_all = as_input(x, self.estimator)
        targets = as_class_indices(y, self.estimator)
        return in_batches(self._attack_batch, x_all, targets, self.batch_size, "L-BFGS", self.verbose)

    def _attack_batch(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        const = torch.full((n,), float(self.initial_const), dtype=torch.float64, device=x.device)
        lower = torch.zeros_like(const)
        upper = torch.full_like(const, math.inf)
        best_l2 = torch.full((n,), math.inf, dtype=torch.float64, device=x.device)
        best_x = x.clone()
        for step in range(self.binary_search_steps):
            x_adv = self._solve(x, targets, const)
            with torch.no_grad():
                success = self.estimator.model(x_adv).argmax(dim=1) == targets
            l2 = (x_adv - x).double().pow(2).flatten(1).sum(1)
            better = success & (l2 < best_l2)
            best_l2[better], best_x[better] = l2[better], x_adv[better]
            # success: more weight on the distance next time; failure: less. Until a bound is known on that
            # side, move by a factor of 10 (as Cleverhans does with its constant on the loss), then bisect.
            lower = torch.where(success, torch.maximum(lower, const), lower)
            upper = torch.where(success, upper, torch.minimum(upper, const))
            bisect = (lower + upper) / 2
            raised = torch.where(upper < math.inf, bisect, const * 10)
            lowered = torch.where(lower > 0, bisect, const / 10)
            const = torch.where(success, raised, lowered)
            log.debug("L-BFGS step %d: %d of %d reached their target", step, int(success.sum()), n)
        return best_x

    def _solve(self, x: torch.Tensor, targets: torch.Tensor, const: torch.Tensor) -> torch.Tensor:
        """One L-BFGS-B solve of the whole batch from x' = x at fixed c; returns x' (N, C, H, W)."""
        model, loss_fn = self.estimator.model, self.estimator.loss_fn

        def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
            x_adv = torch.from_numpy(flat).view(x.shape).to(x).requires_grad_(True)
            distance = (x_adv - x).pow(2).flatten(1).sum(1)
            loss = loss_fn.per_example(model(x_adv), targets)
            total = (const * distance.double() + loss.double()).sum()  # summed in float64 for the line search
            (grad,) = torch.autograd.grad(total, x_adv)
            return float(total.detach()), grad.double().flatten().cpu().numpy()

        start = x.double().flatten().cpu().numpy()
        bounds = np.zeros((start.size, 2))
        bounds[:, 1] = 1.0
        # SciPy's OpenBLAS threads spin while torch's threads run the network and the other way round; on
        # 2 cores that tripled the time per call (measured: 4.7x the network's passes, 1.2x with one BLAS thread).
        with threadpool_limits(limits=1, user_api="blas"):
            solution, _, info = fmin_l_bfgs_b(objective, start, bounds=bounds, maxiter=self.max_iter)
        log.debug("L-BFGS-B: %d iterations, %d calls, %s", info["nit"], info["funcalls"], info["task"])
        return torch.from_numpy(solution).view(x.shape).to(x).clamp(0.0, 1.0)

    def _check_params(self) -> None:
        super()._check_params()
        if self.targeted is not True:
            raise ValueError(
                f"targeted={self.targeted!r} is not supported; the L-BFGS attack of Szegedy et al. is targeted "
                "only, so pass targeted=True and target classes y."
            )
        check_number("initial_const", self.initial_const, 0.0, strict=True)
        check_int("binary_search_steps", self.binary_search_steps, 1)
        check_int("max_iter", self.max_iter, 1)
        check_int("batch_size", self.batch_size, 1)
        check_bool("verbose", self.verbose)
        if not hasattr(getattr(self.estimator, "loss_fn", None), "per_example"):
            raise ValueError(
                f"the L-BFGS attack needs the model's own per-example loss (estimator.loss_fn.per_example); "
                f"{type(self.estimator).__name__} has none, so wrap the model in a BenchClassifier."
            )
