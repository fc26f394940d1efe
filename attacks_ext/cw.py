"""Carlini & Wagner's L2 attack as published and as Cleverhans ran it for saito2019, batched in torch.

One engine, three views of the model (which per-class scores s the attack optimises and checks):

- ``"scores"``: the estimator's forward, the model's own per-class scores (logits; -distance to each
  codeword for R:TANH:MSE).
- ``"raw"``: ``estimator.raw_outputs``, the stock attacker against R:TANH:MSE, who takes the 128 tanh
  outputs for logits and output t for class t. Its success check (argmax over 128 outputs) is not the
  model's decision, which is why saito2019 section 3.3 finds the stock attack broken. On one-hot
  models the raw outputs are the logits.
- ``"codeword"``: saito2019 section 3.3, s_i = -D(z, c_i) with D euclidean and (z, C) from
  ``estimator.target_outputs`` (tanh outputs and codebook; softmax outputs and one-hot rows).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch
from art.attacks.attack import EvasionAttack
from art.estimators.classification import PyTorchClassifier
from tqdm.auto import tqdm

from attacks_ext._common import (
    as_input,
    check_bool,
    check_flags,
    check_int,
    check_number,
    check_numbers,
    class_labels,
    margin,
    per_image,
    work_left,
)

log = logging.getLogger(__name__)

VIEWS = ("scores", "raw", "codeword")
TANH_SHRINK = 0.999999  # C&W's code: shrink the box before atanh so that pixels at 0 or 1 can move
CONST_UNSET = 1e10  # the upper bound of c before any success, as in C&W's code
Flags = bool | torch.Tensor  # targeted for every example, or one flag per example


def class_scores(estimator, x: torch.Tensor, view: str) -> torch.Tensor:
    """Per-class scores (N, K) of ``x`` (N, C, H, W) in ``view``; K = 128 for "raw" on R:TANH:MSE."""
    if view == "scores":
        return estimator.model(x)
    if view == "raw":
        return estimator.raw_outputs(x)
    outputs, targets = estimator.target_outputs(x)
    return -torch.linalg.vector_norm(outputs[:, None, :] - targets[None], dim=-1)


def margin_loss(scores: torch.Tensor, labels: torch.Tensor, targeted: Flags, confidence: float) -> torch.Tensor:
    """f + confidence, per example: max(max_{i!=t} s_i - s_t + k, 0) targeted, max(s_y - max_{i!=y} s_i + k, 0) not.

    The shift by k (as C&W's code writes it) changes no gradient and keeps the loss >= 0 for the abort test.
    """
    return (confidence - margin(scores, labels, targeted)).clamp_min(0.0)


def reached(scores: torch.Tensor, labels: torch.Tensor, targeted: Flags, confidence: float) -> torch.Tensor:
    """C&W's success test on the view's scores: argmax is t with margin k (targeted), or not y with margin k."""
    targeted = torch.as_tensor(targeted, device=scores.device).expand(len(scores))
    shift = torch.where(targeted, -confidence, confidence).to(scores.dtype)
    top = scores.scatter_add(1, labels[:, None], shift[:, None]).argmax(dim=1)
    return torch.where(targeted, top == labels, top != labels)


class _Adam:
    """Adam as TensorFlow 1 writes it (what Cleverhans ran), stepping only the rows given; each row counts its own
    steps, since rows start their search steps at different iterations."""

    def __init__(self, param: torch.Tensor, lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> None:
        self.param, self.lr, self.b1, self.b2, self.eps = param, lr, b1, b2, eps
        self.m, self.v = torch.zeros_like(param), torch.zeros_like(param)
        self.t = torch.zeros(len(param), dtype=torch.float64, device=param.device)

    def step(self, rows: torch.Tensor, grad: torch.Tensor) -> None:
        self.t[rows] += 1
        t = self.t[rows]
        lr_t = self.lr * torch.sqrt(1 - self.b2**t) / (1 - self.b1**t)
        m = self.m[rows] * self.b1 + (1 - self.b1) * grad
        v = self.v[rows] * self.b2 + (1 - self.b2) * grad * grad
        self.m[rows], self.v[rows] = m, v
        self.param[rows] -= lr_t.to(grad.dtype).view(-1, *([1] * (grad.dim() - 1))) * m / (v.sqrt() + self.eps)

    def reset(self, rows: torch.Tensor) -> None:
        self.param[rows], self.m[rows], self.v[rows], self.t[rows] = 0.0, 0.0, 0.0, 0.0


class _Searches:
    """Per image: its binary search over c (the current c, the bounds found, which search step it is in) and,
    within the step, its Adam state, iteration count, last checked loss and whether it has succeeded."""

    def __init__(self, x: torch.Tensor, initial_const: torch.Tensor, learning_rate: float) -> None:
        n = len(x)
        self.const = initial_const.clone()
        self.lower = torch.zeros_like(self.const)
        self.upper = torch.full_like(self.const, CONST_UNSET)
        self.step = torch.zeros(n, dtype=torch.long, device=x.device)
        self.modifier = torch.zeros_like(x)
        self.adam = _Adam(self.modifier, learning_rate)
        self.iteration = torch.zeros(n, dtype=torch.long, device=x.device)
        self.spent = torch.zeros(n, dtype=torch.long, device=x.device)  # iterations of the steps it has ended
        self.prev = torch.full((n,), math.inf, device=x.device, dtype=x.dtype)
        self.found = torch.zeros(n, dtype=torch.bool, device=x.device)

    def end_step(self, rows: torch.Tensor) -> None:
        """``rows`` ended a search step: c x10 until a success, then bisection between the largest failure and the
        smallest success (C&W's code); the next step starts from x with a fresh Adam."""
        found, const = self.found[rows], self.const[rows]
        upper = torch.where(found, torch.minimum(self.upper[rows], const), self.upper[rows])
        lower = torch.where(found, self.lower[rows], torch.maximum(self.lower[rows], const))
        self.const[rows] = torch.where(upper < CONST_UNSET, (lower + upper) / 2, const * 10)
        self.lower[rows], self.upper[rows] = lower, upper
        self.step[rows] += 1
        self.spent[rows] += self.iteration[rows]
        self.adam.reset(rows)
        self.iteration[rows], self.prev[rows], self.found[rows] = 0, math.inf, False


class CarliniWagnerL2(EvasionAttack):
    """Carlini & Wagner (2017), "Towards Evaluating the Robustness of Neural Networks", L2 attack.

    Minimises ||x' - x||_2^2 + c * f(x') over w, with x' = (tanh(w) + 1) / 2 and
    f(x') = max(max_{i != t} s_i - s_t, -k) (targeted) or max(s_y - max_{i != y} s_i, -k) (untargeted),
    s the per-class scores of ``view`` (see the module docstring). Adam on w, from x every
    binary-search step; c per example by binary search; per example the successful x' with the
    smallest L2 is kept, and x itself where none succeeded.

    Deviation: the early abort is tested per example (Cleverhans tests the batch's total loss), so that
    an example's result does not depend on the batch it is in; for a batch of one they are the same.

    :param classifier: a ``PyTorchClassifier`` on inputs in [0, 1]; views "raw" and "codeword" need a
        ``BenchClassifier`` (``raw_outputs``, ``target_outputs``). Its network is called directly, so the
        estimator's preprocessing (identity for ``BenchClassifier``) is not applied.
    :param confidence: k >= 0, the margin the target (or another class) must win by.
    :param targeted: aim at the classes y given to ``generate`` instead of away from them; or one flag per image
        (a 1-D bool array as long as x), so that a model's untargeted and targeted crafts run in one call.
    :param learning_rate: Adam's step size (> 0).
    :param binary_search_steps: searches over c per example (>= 1).
    :param max_iter: Adam iterations per binary-search step (>= 1).
    :param initial_const: the first c of every example (> 0), or one per image (a 1-D array as long as x):
        a sweep over c crafted in one call, each value on its own copy of the images.
    :param abort_early: stop an example's search step when its loss has not fallen by 0.01 % over
        max_iter / 10 iterations.
    :param batch_size: images optimised together (>= 1): of those with search steps left, the ones expected to have
        the most iterations left, so an image that ends its last makes room for the next.
    :param verbose: show a progress bar over the images that have ended their searches.
    :param view: "scores", "raw" or "codeword".

    Memory: every image of a call keeps its search state (about six tensors of its size) until the call ends.
    """

    attack_params = EvasionAttack.attack_params + [
        "confidence",
        "targeted",
        "learning_rate",
        "binary_search_steps",
        "max_iter",
        "initial_const",
        "abort_early",
        "batch_size",
        "verbose",
        "view",
    ]
    _estimator_requirements = (PyTorchClassifier,)

    def __init__(
        self,
        classifier: PyTorchClassifier,
        confidence: float = 0.0,
        targeted: bool = False,
        learning_rate: float = 0.01,
        binary_search_steps: int = 5,
        max_iter: int = 1000,
        initial_const: float | np.ndarray = 0.01,
        abort_early: bool = True,
        batch_size: int = 128,
        verbose: bool = False,
        view: str = "raw",
    ) -> None:
        super().__init__(estimator=classifier)
        self.confidence = confidence
        self._targeted = targeted
        self.learning_rate = learning_rate
        self.binary_search_steps = binary_search_steps
        self.max_iter = max_iter
        self.initial_const = initial_const
        self.abort_early = abort_early
        self.batch_size = batch_size
        self.verbose = verbose
        self.view = view
        self.batch_sizes: list[int] = []  # images per network call of the last generate: what the network saw
        self._check_params()

    def generate(self, x: np.ndarray, y: np.ndarray | None = None, **kwargs) -> np.ndarray:
        """Adversarial examples for ``x`` (N, C, H, W) in [0, 1], as float32 of the same shape.

        :param y: target classes (targeted, required) or true classes (untargeted; the model's
            predictions when None), as indices (N,) or one-hot rows (N, K).
        """
        if np.any(self.targeted) and y is None:
            raise ValueError("A targeted attack needs the target classes: pass y to generate().")
        x_all = as_input(x, self.estimator)
        labels = class_labels(self.estimator, x_all, y, self.batch_size)
        consts = per_image(self.initial_const, len(x_all), x_all, torch.float64)
        targeted = per_image(self.targeted, len(x_all), x_all, torch.bool)
        return self._attack(x_all, labels, consts, targeted).cpu().numpy().astype(np.float32)

    def _attack(
        self, x: torch.Tensor, labels: torch.Tensor, initial_const: torch.Tensor, targeted: torch.Tensor
    ) -> torch.Tensor:
        """Each image runs its own binary search over c, and the network sees ``batch_size`` images that have search
        steps left: one that ends a step (its loss stalled, or max_iter) starts its next at once, and one that ends
        its last makes room for another, so the batch stays full while there is work instead of draining to its
        slowest image at the end of every step of every batch. Those expected to have the most iterations left go
        first (``_next_rows``). An image's steps are those it takes alone, whenever it takes them."""
        w0 = torch.atanh((2 * x - 1) * TANH_SHRINK)
        searches = _Searches(x, initial_const, self.learning_rate)
        best_l2 = torch.full((len(x),), math.inf, device=x.device, dtype=x.dtype)
        best_x = x.clone()
        self.batch_sizes = []
        with tqdm(total=len(x), desc="C&W L2", disable=not self.verbose) as bar:
            while True:
                rows = self._next_rows(searches, (searches.step < self.binary_search_steps).nonzero().squeeze(1))
                if len(rows) == 0:
                    break
                self.batch_sizes.append(len(rows))
                ended = self._iterate(x, w0, (labels, targeted), searches, rows, best_l2, best_x)
                searches.end_step(ended)
                bar.update(int((searches.step[ended] == self.binary_search_steps).sum()))
        log.debug("C&W: %d of %d images succeeded", int(best_l2.isfinite().sum()), len(x))
        return best_x

    def _next_rows(self, searches: _Searches, pending: torch.Tensor) -> torch.Tensor:
        """The ``batch_size`` images of ``pending`` with the most iterations expected left (all when they fit), in
        index order. First in, first served left the images queued last running alone at the end (the README gives
        the calls of both orders, counted by scripts/pool_fill.py)."""
        if len(pending) <= self.batch_size:
            return pending
        left = work_left(searches.step, searches.spent, searches.iteration, self.binary_search_steps, self.max_iter)
        first = torch.argsort(left[pending], descending=True, stable=True)[: self.batch_size]
        return pending[first].sort().values

    def _iterate(
        self,
        x: torch.Tensor,
        w0: torch.Tensor,
        aims: tuple[torch.Tensor, torch.Tensor],
        searches: _Searches,
        rows: torch.Tensor,
        best_l2: torch.Tensor,
        best_x: torch.Tensor,
    ) -> torch.Tensor:
        """One Adam iteration of ``rows``, each at its own c and iteration; books successes into ``best_l2`` and
        ``best_x``; returns the rows whose search step ended. ``aims``: every image's label and targeted flag."""
        labels, targeted = (aim[rows] for aim in aims)
        w = (w0[rows] + searches.modifier[rows]).requires_grad_(True)
        x_adv = (torch.tanh(w) + 1) / 2
        scores = class_scores(self.estimator, x_adv, self.view)
        l2 = (x_adv - x[rows]).pow(2).flatten(1).sum(1)
        const = searches.const[rows].to(x.dtype)
        loss = l2 + const * margin_loss(scores, labels, targeted, self.confidence)
        going = torch.ones_like(rows, dtype=torch.bool)
        if self.abort_early:  # every max_iter / 10 iterations of its own step, an image's loss must have fallen
            check = searches.iteration[rows] % max(self.max_iter // 10, 1) == 0
            going = ~check | (loss.detach() <= searches.prev[rows] * 0.9999)
            searches.prev[rows[check]] = loss.detach()[check]
        # the image checked is the one before this iteration's step, as in C&W's code
        success = reached(scores.detach(), labels, targeted, self.confidence) & going
        searches.found[rows[success]] = True
        better = success & (l2.detach() < best_l2[rows])
        best_l2[rows[better]] = l2.detach()[better]
        best_x[rows[better]] = x_adv.detach()[better]
        searches.iteration[rows] += 1
        stepping = going & (searches.iteration[rows] < self.max_iter)
        if stepping.any():
            (grad,) = torch.autograd.grad(loss[stepping].sum(), w)
            searches.adam.step(rows[stepping], grad[stepping])
        return rows[~stepping]

    def _check_params(self) -> None:
        super()._check_params()
        check_number("confidence", self.confidence, 0.0, strict=False)
        check_flags("targeted", self.targeted)
        check_number("learning_rate", self.learning_rate, 0.0, strict=True)
        check_int("binary_search_steps", self.binary_search_steps, 1)
        check_int("max_iter", self.max_iter, 1)
        check_numbers("initial_const", self.initial_const, 0.0, strict=True)
        check_bool("abort_early", self.abort_early)
        check_int("batch_size", self.batch_size, 1)
        check_bool("verbose", self.verbose)
        if self.view not in VIEWS:
            raise ValueError(f"view={self.view!r} is not a known view; expected one of {', '.join(VIEWS)}.")
        needs = {"raw": "raw_outputs", "codeword": "target_outputs"}.get(self.view)
        if needs and not hasattr(self.estimator, needs):
            raise ValueError(
                f"view={self.view!r} needs an estimator with {needs}() (a BenchClassifier); "
                f"{type(self.estimator).__name__} has none, so use view='scores'."
            )


class CarliniWagnerL2Codeword(CarliniWagnerL2):
    """The tailored attack of saito2019 section 3.3: C&W L2 with f on distances to the target representations.

    f(x') = max(D(z, c_t) - min_{i != t} D(z, c_i), -k) targeted (untargeted: the mirror image),
    D euclidean, (z, C) = ``estimator.target_outputs(x')``: tanh outputs (N, d) and codebook (K, d) for
    R:TANH:MSE, softmax outputs and one-hot rows for O:SOFTMAX:*. Parameters as ``CarliniWagnerL2``,
    without ``view``, which is fixed at "codeword".
    """

    attack_params = [p for p in CarliniWagnerL2.attack_params if p != "view"]

    def __init__(self, classifier: PyTorchClassifier, **kwargs: Any) -> None:
        if "view" in kwargs:
            raise ValueError("view is fixed at 'codeword' for CarliniWagnerL2Codeword; use CarliniWagnerL2 for others.")
        super().__init__(classifier, view="codeword", **kwargs)
