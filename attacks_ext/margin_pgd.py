"""PGD on the margin of the model's own decision scores, with random restarts: the attack that knows the model.

The papers' gradient attacks ascend the training loss. A loss can hide the decision: cross-entropy on
saturated softmax outputs, MSE to a codeword through saturated tanh units, or a hinge that is flat
(zero gradient) once the margin is met. The margin of the decision itself (Carlini & Wagner's f) has
none of these, so it is the first attack an evaluator who knows the decision rule runs (Carlini et al.
2019, "On Evaluating Adversarial Robustness"; Croce & Hein 2020's APGD uses its scale-free cousin).
"""

from __future__ import annotations

import numpy as np
import torch
from art.attacks.attack import EvasionAttack
from art.estimators.classification import PyTorchClassifier

from attacks_ext._common import (
    as_input,
    check_bool,
    check_int,
    check_number,
    check_numbers,
    class_labels,
    in_batches,
    margin,
    per_image,
)

LOSS_VIEWS = ("scores", "pretanh")
ATANH_CLIP = 1 - 1e-6  # codewords come from U(-1, 1); keep atanh finite for a value at the edge

__all__ = ["LOSS_VIEWS", "MarginPGD", "margin"]  # margin: what the attack ascends (attacks_ext._common)


class MarginPGD(EvasionAttack):
    """L-inf projected gradient ascent on the decision margin, from random starts (Madry et al. 2018's PGD
    with Carlini & Wagner 2017's margin as the objective).

    Per restart: a uniform random start in the eps-ball (intersected with [0, 1]), then ``max_iter`` steps
    x <- clip(x + eps_step * sign(grad margin)). An example is done at its first success, checked on the
    model's own decision (the argmax of its forward) after every step, and later restarts attack only the
    examples not yet done. Examples never broken are returned at the point of their largest margin.

    :param classifier: a ``PyTorchClassifier`` whose forward returns one score per class (argmax = its
        decision); view "pretanh" needs a ``BenchClassifier`` of a codeword model with a tanh.
    :param eps: the L-inf radius, pixels in [0, 1]; or one per image (a 1-D array as long as x), so that a
        sweep over eps is crafted in one call, each value on its own copy of the images.
    :param eps_step: the step size (> 0).
    :param max_iter: steps per restart (>= 1).
    :param num_random_init: restarts (>= 1).
    :param targeted: aim at the classes y given to ``generate`` instead of away from them.
    :param view: which scores the margin is taken on. "scores": the forward's (logits; s cos(theta) for
        LMCL; minus the distance to each codeword for R:TANH:MSE). "pretanh" (codeword models with a tanh only): minus
        the distance from the pre-tanh outputs u to atanh(c_i), which has no saturated units to hide behind;
        it is a surrogate (the decision is still the nearest codeword after tanh), so success is checked on
        the decision, never on the surrogate.
    :param batch_size: images attacked together (>= 1).
    :param verbose: a progress bar over batches.
    """

    attack_params = EvasionAttack.attack_params + [
        "eps",
        "eps_step",
        "max_iter",
        "num_random_init",
        "targeted",
        "view",
        "batch_size",
        "verbose",
    ]
    _estimator_requirements = (PyTorchClassifier,)

    def __init__(
        self,
        classifier: PyTorchClassifier,
        eps: float | np.ndarray = 0.3,
        eps_step: float = 0.01,
        max_iter: int = 100,
        num_random_init: int = 5,
        targeted: bool = False,
        view: str = "scores",
        batch_size: int = 128,
        verbose: bool = False,
    ) -> None:
        super().__init__(estimator=classifier)
        self.eps = eps
        self.eps_step = eps_step
        self.max_iter = max_iter
        self.num_random_init = num_random_init
        self._targeted = targeted
        self.view = view
        self.batch_size = batch_size
        self.verbose = verbose
        self._check_params()

    def generate(self, x: np.ndarray, y: np.ndarray | None = None, **kwargs) -> np.ndarray:
        """Adversarial examples for ``x`` (N, C, H, W) in [0, 1], float32 of the same shape.

        :param y: target classes (targeted, required) or true classes (untargeted; the model's
            predictions when None), as indices (N,) or one-hot rows (N, K). Random starts are drawn from
            NumPy's global generator, as ART's attacks draw theirs, so seeding NumPy seeds the attack.
        """
        if self.targeted and y is None:
            raise ValueError("A targeted attack needs the target classes: pass y to generate().")
        x_all = as_input(x, self.estimator)
        labels = class_labels(self.estimator, x_all, y, self.batch_size)
        generator = torch.Generator().manual_seed(int(np.random.randint(0, 2**31 - 1)))
        batch = lambda xb, lb, eps: self._attack_batch(xb, lb, eps, generator)  # noqa: E731
        eps = per_image(self.eps, len(x_all), x_all)
        return in_batches(batch, x_all, labels, self.batch_size, "margin PGD", self.verbose, eps=eps)

    def _views(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(scores the margin is taken on, the decision scores), from one pass through the network."""
        network = self.estimator.model
        if self.view == "scores":
            scores = network(x)
            return scores, scores
        head = network.head
        pre = head.fc(network.backbone(x))
        anchors = torch.atanh(head.codebook.clamp(-ATANH_CLIP, ATANH_CLIP))
        surrogate = -torch.linalg.vector_norm(pre[:, None, :] - anchors[None], dim=-1)
        return surrogate, head.scores_from_raw(torch.tanh(pre))

    def _attack_batch(
        self, x: torch.Tensor, labels: torch.Tensor, eps: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        eps = eps.view(-1, *([1] * (x.dim() - 1)))  # one radius per image
        lower, upper = (x - eps).clamp_min(0.0), (x + eps).clamp_max(1.0)
        best = x.clone()
        best_margin = torch.full((len(x),), -torch.inf, device=x.device)
        done = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        for _ in range(self.num_random_init):
            rows = (~done).nonzero().squeeze(1)
            if len(rows) == 0:
                break
            noise = torch.rand(x[rows].shape, generator=generator).to(x) * 2 - 1
            x_adv = torch.minimum(torch.maximum(x[rows] + noise * eps[rows], lower[rows]), upper[rows])
            for step in range(self.max_iter + 1):
                x_adv.requires_grad_(True)
                with torch.enable_grad():
                    surrogate, decision = self._views(x_adv)
                    objective = margin(surrogate, labels[rows], self.targeted)
                won = margin(decision.detach(), labels[rows], self.targeted) > 0
                better = won | (~done[rows] & (objective.detach() > best_margin[rows]))
                best[rows[better]] = x_adv.detach()[better]
                best_margin[rows[better]] = torch.where(won, torch.inf, objective.detach())[better]
                done[rows[won]] = True
                keep = ~won
                if step == self.max_iter or not keep.any():
                    break
                (grad,) = torch.autograd.grad(objective[keep].sum(), x_adv)
                rows, x_adv = rows[keep], x_adv.detach()[keep] + self.eps_step * grad[keep].sign()
                x_adv = torch.minimum(torch.maximum(x_adv, lower[rows]), upper[rows])
        return best

    def _check_params(self) -> None:
        super()._check_params()
        check_numbers("eps", self.eps, 0.0, strict=False)
        check_number("eps_step", self.eps_step, 0.0, strict=True)
        check_int("max_iter", self.max_iter, 1)
        check_int("num_random_init", self.num_random_init, 1)
        check_bool("targeted", self.targeted)
        check_int("batch_size", self.batch_size, 1)
        check_bool("verbose", self.verbose)
        if self.view not in LOSS_VIEWS:
            raise ValueError(f"view={self.view!r} is not a known view; expected one of {', '.join(LOSS_VIEWS)}.")
        head = getattr(getattr(self.estimator, "model", None), "head", None)
        if self.view == "pretanh" and not (hasattr(head, "codebook") and getattr(head, "tanh", True)):
            lacks = "its codebook is not behind a tanh" if hasattr(head, "codebook") else "it has no codebook"
            raise ValueError(
                "view='pretanh' needs a codeword model (R:TANH:MSE: a head with a codebook behind a tanh); "
                f"{type(head).__name__}: {lacks}, so use view='scores'."
            )
