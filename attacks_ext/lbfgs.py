"""Szegedy et al.'s box-constrained L-BFGS attack, with the model's own training loss: one box-constrained problem
per image, solved for all images at once (``attacks_ext._projected_lbfgs``) or one by one with SciPy's L-BFGS-B,
their network evaluations batched either way."""

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
from attacks_ext._projected_lbfgs import Limits, ProjectedLBFGS

log = logging.getLogger(__name__)
SOLVERS = ("scipy", "torch")  # the first is the default


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

    def left(self, images: list[int], steps: int, max_iter: int) -> np.ndarray:
        """The evaluations expected left of each image listed."""
        return work_left(self.ended, self.spent, self.current, steps, max_iter)[images]

    def next_images(self, waiting: list[int], k: int, steps: int, max_iter: int) -> list[int]:
        """The ``k`` waiting images expected to have the most evaluations left (ties: first waiting first), taken out
        of ``waiting``."""
        if k == 0:  # most calls: no row has ended its solve, and ranking every image would be wasted
            return []
        order = np.argsort(-self.left(waiting, steps, max_iter), kind="stable")[:k]
        chosen, taken = [waiting[i] for i in order], set(order.tolist())
        waiting[:] = [n for i, n in enumerate(waiting) if i not in taken]
        return chosen


class _SearchOnC:
    """One image's binary search on c. A success keeps x' if its L2 is the smallest so far and raises c (less
    distortion allowed next time); a failure lowers c. Until a bound is known on that side, c moves by a factor of 10
    (as Cleverhans moves its constant on the loss), then bisects."""

    def __init__(self, const: float) -> None:
        self.const, self.lower, self.upper, self.best_l2 = const, 0.0, math.inf, math.inf

    def ended(self, success: bool, l2: float) -> bool:
        """Takes a solve's outcome at the current c and moves c; True when this x' is the image's best so far."""
        best = success and l2 < self.best_l2
        if best:
            self.best_l2 = l2
        if success:
            self.lower = max(self.lower, self.const)
            self.const = (self.lower + self.upper) / 2 if self.upper < math.inf else self.const * 10
        else:
            self.upper = min(self.upper, self.const)
            self.const = (self.lower + self.upper) / 2 if self.lower > 0 else self.const / 10
        return best


class LBFGSAttack(EvasionAttack):
    """Szegedy et al. (2014), "Intriguing properties of neural networks", the box-constrained L-BFGS attack.

    Targeted only. Minimises, for each image n, c_n * ||x'_n - x_n||_2^2 + L(x'_n, t_n) over
    x'_n in [0, 1]^(C x H x W) with a box-constrained L-BFGS from x'_n = x_n, where L is the model's own training
    loss (``estimator.loss_fn.per_example`` on the forward's scores: cross-entropy, MSE to one-hot or to
    the codeword, ...). Then a binary search on c per image: an image whose x' is classified as its
    target keeps x' if its L2 is the smallest so far and its c is raised (less distortion allowed next
    time); one that failed has its c lowered. Images that never succeed are returned unchanged.

    Each image is its own problem, as in Szegedy et al. (Cleverhans solves a batch as one problem, whose
    shared line search and curvature pairs make an image's result depend on its batch). Two solvers:

    - ``solver="scipy"`` (the default): SciPy's L-BFGS-B routine stepped by ``attacks_ext._lbfgsb``, taking each
      image's iterates exactly as ``fmin_l_bfgs_b`` would (the optimiser of Cleverhans, which saito2019 ran); its
      arithmetic runs on the CPU one image at a time (about 80 us per image and evaluation on a 2-core CPU, 13% of
      the attack's time there; beside a GPU's faster network, more).
    - ``solver="torch"``: ``attacks_ext._projected_lbfgs``, an L-BFGS with projection onto the box, whose arithmetic
      for every image of a network call is a few tensor operations on the network's device. A different method:
      on the paper preset it made 12% more evaluations in the same wall time on this CPU, and reached other
      targets on some models (README, "Bigger runs").

    The points of up to ``batch_size`` images go to the network in one call, the next solve starting when one
    ends, the images expected to have the most evaluations left going first. ``batch_sizes`` holds the images per
    network call of the last ``generate``.

    Cleverhans writes the trade-off the other way round (its constant multiplies the loss, not the
    distance), so its ``initial_const`` corresponds to 1 / c here.

    :param classifier: a ``BenchClassifier`` (a ``PyTorchClassifier`` with ``loss_fn.per_example``) on
        inputs in [0, 1]. Its network is called directly, so the estimator's preprocessing (identity
        for ``BenchClassifier``) is not applied.
    :param targeted: must be True; the attack has no untargeted form.
    :param initial_const: the first c of every image (> 0), or one per image (a 1-D array as long as x):
        a whole sweep over c, each value on its own copy of the images, runs in one call. A larger c gives
        smaller perturbations.
    :param binary_search_steps: solves per image, one per value of c (>= 1).
    :param max_iter: iterations per solve (>= 1).
    :param batch_size: images solved at once, whose evaluations share a network call (>= 1).
    :param solver: ``"torch"`` or ``"scipy"`` (above).
    :param verbose: show a progress bar over images.
    """

    attack_params = EvasionAttack.attack_params + [
        "targeted",
        "initial_const",
        "binary_search_steps",
        "max_iter",
        "batch_size",
        "solver",
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
        solver: str = SOLVERS[0],
        verbose: bool = False,
    ) -> None:
        super().__init__(estimator=classifier)
        self._targeted = targeted
        self.initial_const = initial_const
        self.binary_search_steps = binary_search_steps
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.solver = solver
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
        with tqdm(total=len(x_all), desc="L-BFGS", disable=not self.verbose) as bar:
            # SciPy's OpenBLAS threads spin while torch's threads run the network and the other way round; on
            # 2 cores that tripled the time per call (measured: 4.7x the network's passes, 1.2x with one BLAS thread).
            with threadpool_limits(limits=1, user_api="blas"):
                solve = self._solve_with_torch if self.solver == "torch" else self._solve_with_scipy
                out = solve(x_all, targets, consts, bar)
        return out.astype(np.float32)

    def _solve_with_torch(self, x_all: torch.Tensor, targets: torch.Tensor, consts: np.ndarray, bar) -> np.ndarray:
        """Every image's search, its solves in rows of one ``ProjectedLBFGS``: a row that ends its solve takes the
        next solve of the waiting image expected to have the most evaluations left, so that the short solves, not
        the long ones, are what is left to run at the end."""
        flat = x_all.flatten(1)  # solved in the network's dtype: its gradients carry no more precision than that
        out = x_all.cpu().numpy().copy()  # an image that never reaches its target is returned unchanged
        width = min(self.batch_size, len(x_all))
        pool = ProjectedLBFGS(width, flat.shape[1], Limits(self.max_iter), 0.0, 1.0, flat.dtype, x_all.device)
        searches = [_SearchOnC(float(c)) for c in consts]
        progress, steps = _Progress(len(x_all)), self.binary_search_steps
        waiting, image_in = list(range(len(x_all))), torch.full((width,), -1, dtype=torch.long, device=x_all.device)
        self.batch_sizes = []
        while waiting or pool.busy.any():
            free = pool.free_rows()[: len(waiting)]
            image_in[free] = torch.as_tensor(
                progress.next_images(waiting, len(free), steps, self.max_iter), dtype=torch.long, device=x_all.device
            )
            pool.start(free, flat[image_in[free]])
            rows = pool.busy_rows()
            images = image_in[rows].tolist()
            progress.evaluated(images)
            const = torch.as_tensor([searches[n].const for n in images], dtype=torch.float64, device=x_all.device)
            f, g, reached = self._objective(x_all, targets, images, pool.trial[rows], const)
            self.batch_sizes.append(len(rows))
            for row in pool.tell(rows, f, g, reached).tolist():
                n, x_adv = int(image_in[row]), pool.x[row].to(x_all).view(x_all.shape[1:])
                l2 = float((x_adv.double() - x_all[n].double()).pow(2).sum())
                if searches[n].ended(bool(pool.note[row]), l2):
                    out[n] = x_adv.cpu().numpy()
                progress.ended_solve(n)
                if progress.ended[n] < steps:
                    waiting.append(n)
                else:
                    bar.update(1)
        return out

    def _solve_with_scipy(self, x_all: torch.Tensor, targets: torch.Tensor, consts: np.ndarray, bar) -> np.ndarray:
        """Every image's search, each solve SciPy's L-BFGS-B stepped as a generator, their evaluations batched."""
        images = x_all.cpu().numpy()
        out = images.copy()  # an image that never reaches its target is returned unchanged
        self._progress = _Progress(len(images))
        searches = (self._search(images, out, n, float(consts[n]), bar) for n in range(len(images)))
        evaluate = partial(self._evaluate, x_all, targets)
        rank = lambda items: self._progress.left([n for n, _, _ in items], self.binary_search_steps, self.max_iter)  # noqa: E731
        self.batch_sizes = run_batched(searches, evaluate, min(self.batch_size, len(images)), rank)
        return out

    def _search(self, images, out, n: int, const: float, bar) -> Solve:
        """Image ``n``'s binary search on c: one L-BFGS-B solve per step, from x' = x; writes its best x' to out[n].

        A generator: it yields each (n, x' flat, c) it needs evaluated and is sent (value, gradient, reached)."""
        x = images[n].astype(np.float64)
        search = _SearchOnC(const)
        for _ in range(self.binary_search_steps):
            solution, info = yield from self._solve(n, x, search.const)
            x_adv = np.clip(solution, 0.0, 1.0).astype(images.dtype).reshape(x.shape)
            as_float64 = x_adv.astype(np.float64)  # the point as the network sees it, in the solver's dtype
            success = (yield (n, as_float64.ravel(), search.const))[2]
            self._progress.ended_solve(n)
            if search.ended(success, float(np.square(as_float64 - x).sum())):
                out[n] = x_adv
            log.debug("L-BFGS image %d: %s after %d iterations", n, success, info["nit"])
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
        images = [n for n, _, _ in items]
        self._progress.evaluated(images)
        points = torch.from_numpy(np.stack([point for _, point, _ in items]))
        const = torch.as_tensor([c for _, _, c in items], dtype=torch.float64, device=x.device)
        values, gradients, reached = (t.cpu().numpy() for t in self._objective(x, targets, images, points, const))
        return [(float(values[i]), gradients[i], bool(reached[i])) for i in range(len(items))]

    def _objective(self, x: torch.Tensor, targets: torch.Tensor, images: list[int], points: torch.Tensor, const):
        """At each point (flat, one per image listed): c * ||x' - x_n||^2 + L(x', t_n) (float64), its gradient in x'
        (float64, flat) and whether x' is classified as t_n; all in one forward and backward pass."""
        model, loss_fn = self.estimator.model, self.estimator.loss_fn
        rows = torch.as_tensor(images, device=x.device)
        x_adv = points.view(len(images), *x.shape[1:]).to(x).requires_grad_(True)
        scores = model(x_adv)
        distance = (x_adv - x[rows]).pow(2).flatten(1).sum(1)
        objective = const * distance.double() + loss_fn.per_example(scores, targets[rows]).double()
        (gradient,) = torch.autograd.grad(objective.sum(), x_adv)  # each row's gradient is its own objective's
        reached = scores.argmax(dim=1) == targets[rows]
        return objective.detach(), gradient.double().flatten(1), reached

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
        if self.solver not in SOLVERS:
            raise ValueError(f"solver={self.solver!r} is not one of {', '.join(map(repr, SOLVERS))}.")
        if not hasattr(getattr(self.estimator, "loss_fn", None), "per_example"):
            raise ValueError(
                f"the L-BFGS attack needs the model's own per-example loss (estimator.loss_fn.per_example); "
                f"{type(self.estimator).__name__} has none, so wrap the model in a BenchClassifier."
            )
