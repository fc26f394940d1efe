"""Szegedy et al.'s box-constrained L-BFGS attack, with the model's own training loss: one L-BFGS-B problem per
image, their network evaluations batched."""

from __future__ import annotations

import logging
import math
from functools import partial

import numpy as np
import torch
from art.attacks.attack import EvasionAttack
from art.estimators.classification import PyTorchClassifier
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from attacks_ext._batched_solves import Solve, run_batched
from attacks_ext._common import (
    as_class_indices,
    as_input,
    check_bool,
    check_int,
    check_numbers,
    per_image,
    work_left,
)
from attacks_ext._lbfgsb import lbfgsb_steps

log = logging.getLogger(__name__)


class _Progress:
    """Per image: the solves it has ended, the evaluations they took, and those of the solve it is in; what ranks the
    images waiting on the network (``attacks_ext._common.work_left``), the most evaluations expected left first."""

    def __init__(self, n: int) -> None:
        self.ended, self.spent, self.current = (np.zeros(n, dtype=np.int64) for _ in range(3))

    def evaluated(self, images: list[int]) -> None:
        np.add.at(self.current, images, 1)

    def ended_solve(self, n: int) -> None:
        self.ended[n] += 1
        self.spent[n] += self.current[n]
        self.current[n] = 0

    def left(self, items, steps: int, max_iter: int) -> np.ndarray:
        """The evaluations expected left of each waiting item's image (items: (image, x', c))."""
        return work_left(self.ended, self.spent, self.current, steps, max_iter)[[n for n, _, _ in items]]


class LBFGSAttack(EvasionAttack):
    """Szegedy et al. (2014), "Intriguing properties of neural networks", the box-constrained L-BFGS attack.

    Targeted only. Minimises, for each image n, c_n * ||x'_n - x_n||_2^2 + L(x'_n, t_n) over
    x'_n in [0, 1]^(C x H x W) with SciPy's L-BFGS-B from x'_n = x_n, where L is the model's own training
    loss (``estimator.loss_fn.per_example`` on the forward's scores: cross-entropy, MSE to one-hot or to
    the codeword, ...). Then a binary search on c per image: an image whose x' is classified as its
    target keeps x' if its L2 is the smallest so far and its c is raised (less distortion allowed next
    time); one that failed has its c lowered. Images that never succeed are returned unchanged.

    Each image is its own problem, as in Szegedy et al. (Cleverhans solves a batch as one problem, whose
    shared line search and curvature pairs make an image's result depend on its batch): SciPy's L-BFGS-B
    routine, stepped by ``attacks_ext._lbfgsb``, takes each image's iterates exactly as ``fmin_l_bfgs_b``
    would, while the points of up to ``batch_size`` images go to the network in one call
    (``attacks_ext._batched_solves``), the next image starting when one ends its search, and the images expected
    to have the most evaluations left going first. ``batch_sizes`` holds the images per network call of the last
    ``generate``.

    Cleverhans writes the trade-off the other way round (its constant multiplies the loss, not the
    distance), so its ``initial_const`` corresponds to 1 / c here.

    :param classifier: a ``BenchClassifier`` (a ``PyTorchClassifier`` with ``loss_fn.per_example``) on
        inputs in [0, 1]. Its network is called directly, so the estimator's preprocessing (identity
        for ``BenchClassifier``) is not applied.
    :param targeted: must be True; the attack has no untargeted form.
    :param initial_const: the first c of every image (> 0), or one per image (a 1-D array as long as x):
        a whole sweep over c, each value on its own copy of the images, runs in one call. A larger c gives
        smaller perturbations.
    :param binary_search_steps: L-BFGS-B solves per image, one per value of c (>= 1).
    :param max_iter: L-BFGS-B iterations per solve (>= 1).
    :param batch_size: images solved at once, whose evaluations share a network call (>= 1).
    :param verbose: show a progress bar over images.
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
        initial_const: float | np.ndarray = 0.01,
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
        self.batch_sizes: list[int] = []
        self._check_params()

    def generate(self, x: np.ndarray, y: np.ndarray | None = None, **kwargs) -> np.ndarray:
        """Adversarial examples for ``x`` (N, C, H, W) in [0, 1], as float32 of the same shape.

        :param y: the target classes, as indices (N,) or one-hot rows (N, K); required.
        """
        if y is None:
            raise ValueError("The L-BFGS attack is targeted: pass the target classes as y to generate().")
        x_all = as_input(x, self.estimator)
        targets = as_class_indices(y, self.estimator)
        consts = per_image(self.initial_const, len(x_all), x_all, torch.float64).cpu().numpy()
        images = x_all.cpu().numpy()
        out = images.copy()  # an image that never reaches its target is returned unchanged
        self._progress = _Progress(len(images))
        with tqdm(total=len(images), desc="L-BFGS", disable=not self.verbose) as bar:
            searches = (self._search(images, out, n, float(consts[n]), bar) for n in range(len(images)))
            evaluate = partial(self._evaluate, x_all, targets)
            rank = lambda items: self._progress.left(items, self.binary_search_steps, self.max_iter)  # noqa: E731
            # SciPy's OpenBLAS threads spin while torch's threads run the network and the other way round; on
            # 2 cores that tripled the time per call (measured: 4.7x the network's passes, 1.2x with one BLAS thread).
            with threadpool_limits(limits=1, user_api="blas"):
                self.batch_sizes = run_batched(searches, evaluate, min(self.batch_size, len(images)), rank)
        return out.astype(np.float32)

    def _search(self, images, out, n: int, const: float, bar) -> Solve:
        """Image ``n``'s binary search on c: one L-BFGS-B solve per step, from x' = x; writes its best x' to out[n].

        A generator: it yields each (n, x' flat, c) it needs evaluated and is sent (value, gradient, reached)."""
        x = images[n].astype(np.float64)
        lower, upper, best_l2 = 0.0, math.inf, math.inf
        for step in range(self.binary_search_steps):
            solution, info = yield from self._solve(n, x, const)
            x_adv = np.clip(solution, 0.0, 1.0).astype(images.dtype).reshape(x.shape)
            as_float64 = x_adv.astype(np.float64)  # the point as the network sees it, in the solver's dtype
            success = (yield (n, as_float64.ravel(), const))[2]
            self._progress.ended_solve(n)
            l2 = float(np.square(as_float64 - x).sum())
            if success and l2 < best_l2:
                best_l2, out[n] = l2, x_adv
            # success: more weight on the distance next time; failure: less. Until a bound is known on that
            # side, move by a factor of 10 (as Cleverhans does with its constant on the loss), then bisect.
            if success:
                lower = max(lower, const)
                const = (lower + upper) / 2 if upper < math.inf else const * 10
            else:
                upper = min(upper, const)
                const = (lower + upper) / 2 if lower > 0 else const / 10
            log.debug("L-BFGS image %d step %d: %s after %d iterations", n, step, success, info["nit"])
        bar.update(1)

    def _solve(self, n: int, x: np.ndarray, const: float) -> Solve:
        """One L-BFGS-B solve of image ``n``'s problem at fixed c, from x' = x, inside [0, 1]: yields (n, x', c)
        for each point it needs, returns (x', info) as ``fmin_l_bfgs_b`` would."""
        steps = lbfgsb_steps(x.ravel(), 0.0, 1.0, self.max_iter)
        point = next(steps)
        while True:
            value, gradient, _ = yield (n, point, const)
            try:
                point = steps.send((value, gradient))
            except StopIteration as done:
                return done.value

    def _evaluate(self, x: torch.Tensor, targets: torch.Tensor, items) -> list[tuple[float, np.ndarray, bool]]:
        """For each posted (image n, x' flat, c): c * ||x' - x_n||^2 + L(x', t_n), its gradient in x' (float64,
        flat) and whether x' is classified as t_n; all in one forward and backward pass."""
        model, loss_fn = self.estimator.model, self.estimator.loss_fn
        images = [n for n, _, _ in items]
        self._progress.evaluated(images)
        rows = torch.as_tensor(images, device=x.device)
        flat = np.stack([point for _, point, _ in items])
        x_adv = torch.from_numpy(flat).view(len(items), *x.shape[1:]).to(x).requires_grad_(True)
        const = torch.as_tensor([c for _, _, c in items], dtype=torch.float64, device=x.device)
        scores = model(x_adv)
        distance = (x_adv - x[rows]).pow(2).flatten(1).sum(1)
        objective = const * distance.double() + loss_fn.per_example(scores, targets[rows]).double()
        (gradient,) = torch.autograd.grad(objective.sum(), x_adv)  # each row's gradient is its own objective's
        values = objective.detach().cpu().numpy()
        gradients = gradient.double().flatten(1).cpu().numpy()
        reached = (scores.argmax(dim=1) == targets[rows]).cpu().numpy()
        return [(float(values[i]), gradients[i], bool(reached[i])) for i in range(len(items))]

    def _check_params(self) -> None:
        super()._check_params()
        if self.targeted is not True:
            raise ValueError(
                f"targeted={self.targeted!r} is not supported; the L-BFGS attack of Szegedy et al. is targeted "
                "only, so pass targeted=True and target classes y."
            )
        check_numbers("initial_const", self.initial_const, 0.0, strict=True)
        check_int("binary_search_steps", self.binary_search_steps, 1)
        check_int("max_iter", self.max_iter, 1)
        check_int("batch_size", self.batch_size, 1)
        check_bool("verbose", self.verbose)
        if not hasattr(getattr(self.estimator, "loss_fn", None), "per_example"):
            raise ValueError(
                f"the L-BFGS attack needs the model's own per-example loss (estimator.loss_fn.per_example); "
                f"{type(self.estimator).__name__} has none, so wrap the model in a BenchClassifier."
            )
