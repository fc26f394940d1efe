"""PGD on the margin of the model's own decision scores, with random restarts: the attack that knows the model.

The papers' gradient attacks ascend the training loss. A loss can hide the decision: cross-entropy on
saturated softmax outputs, MSE to a codeword through saturated tanh units, or a hinge that is flat
(zero gradient) once the margin is met. The margin of the decision itself (Carlini & Wagner's f) has
none of these, so it is the first attack an evaluator who knows the decision rule runs (Carlini et al.
2019, "On Evaluating Adversarial Robustness"; Croce & Hein 2020's APGD uses its scale-free cousin).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import torch
from art.attacks.attack import EvasionAttack
from art.estimators.classification import PyTorchClassifier
from tqdm.auto import tqdm

from attacks_ext._common import (
    as_input,
    check_bool,
    check_int,
    check_number,
    check_numbers,
    class_labels,
    margin,
    per_image,
)

LOSS_VIEWS = ("scores", "pretanh")
ATANH_CLIP = 1 - 1e-6  # codewords come from U(-1, 1); keep atanh finite for a value at the edge

__all__ = ["LOSS_VIEWS", "MarginPGD", "margin"]  # margin: what the attack ascends (attacks_ext._common)


@dataclass
class _Runs:
    """The restarts in the pool, one row each: its image, which restart, the steps it has taken, and where it is."""

    rows: torch.Tensor
    restart: torch.Tensor
    step: torch.Tensor
    x_adv: torch.Tensor

    @classmethod
    def empty(cls, x: torch.Tensor) -> _Runs:
        none = torch.empty(0, dtype=torch.long, device=x.device)
        return cls(none, none, none, x[:0])

    def take(self, keep: torch.Tensor) -> _Runs:
        return _Runs(self.rows[keep], self.restart[keep], self.step[keep], self.x_adv.detach()[keep])

    def join(self, other: _Runs) -> _Runs:
        return _Runs(
            torch.cat((self.rows, other.rows)),
            torch.cat((self.restart, other.restart)),
            torch.cat((self.step, other.step)),
            torch.cat((self.x_adv.detach(), other.x_adv)),
        )


def _generator(seed: int, image: int, restart: int) -> torch.Generator:
    """The generator of one image's restart: its own stream, from the call's seed, the image's index and the restart."""
    state = np.random.SeedSequence((seed, image, restart)).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


class MarginPGD(EvasionAttack):
    """L-inf projected gradient ascent on the decision margin, from random starts (Madry et al. 2018's PGD
    with Carlini & Wagner 2017's margin as the objective).

    Per restart: a uniform random start in the eps-ball (intersected with [0, 1]), then ``max_iter`` steps
    x <- clip(x + eps_step * sign(grad margin)). An example is done at its first success, checked on the
    model's own decision (the argmax of its forward) after every step, and later restarts attack only the
    examples not yet done. Examples never broken are returned at the point of their largest margin.
    Each (image, restart) draws its start from a generator of its own, and the restarts run in one pool that
    refills as runs end, so an image's result does not depend on the batch size or on its neighbours.

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
    :param batch_size: restarts run together, one image each (>= 1).
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
            predictions when None), as indices (N,) or one-hot rows (N, K). The random starts' seed is drawn
            from NumPy's global generator, as ART's attacks draw theirs, so seeding NumPy seeds the attack.
        """
        if self.targeted and y is None:
            raise ValueError("A targeted attack needs the target classes: pass y to generate().")
        x_all = as_input(x, self.estimator)
        labels = class_labels(self.estimator, x_all, y, self.batch_size)
        eps = per_image(self.eps, len(x_all), x_all)
        seed = int(np.random.randint(0, 2**31 - 1))
        with tqdm(total=len(x_all), desc="margin PGD", disable=not self.verbose) as bar:
            best = self._attack_pool(x_all, labels, eps, seed, bar)
        return best.cpu().numpy().astype(np.float32)

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

    def _attack_pool(self, x: torch.Tensor, labels: torch.Tensor, eps: torch.Tensor, seed: int, bar) -> torch.Tensor:
        """Every image's restarts through one pool of ``batch_size`` rows: a row that wins or ends its restart is
        replaced at the next call by the next waiting (image, restart), so the batch stays full until the last restarts
        (a batch of its own drains as its images win). Restarts queue behind the images not yet started, which have
        more restarts left: a chain of restarts that starts last would run alone at the end."""
        eps = eps.view(-1, *([1] * (x.dim() - 1)))  # one radius per image
        box = ((x - eps).clamp_min(0.0), (x + eps).clamp_max(1.0))
        best = x.clone()
        best_margin = torch.full((len(x),), -torch.inf, device=x.device)
        waiting = deque((image, 0) for image in range(len(x)))
        pool = _Runs.empty(x)
        while len(pool.rows) or waiting:
            admitted = [waiting.popleft() for _ in range(min(self.batch_size - len(pool.rows), len(waiting)))]
            pool = pool.join(self._starts(x, eps, box, admitted, seed))
            pool, finished, again = self._step(pool, labels, box, best, best_margin)
            waiting.extend(again)
            bar.update(finished)
        return best

    def _starts(self, x: torch.Tensor, eps: torch.Tensor, box, admitted: list[tuple[int, int]], seed: int) -> _Runs:
        """Each admitted (image, restart)'s uniform random start in its eps-ball (and [0, 1]), drawn from a generator
        of its own, seeded by the call's seed, the image's index and the restart: an image's starts, so its result,
        do not depend on the batch size or on which images share its calls."""
        if not admitted:
            return _Runs.empty(x)
        rows = torch.tensor([image for image, _ in admitted], device=x.device)
        restart = torch.tensor([r for _, r in admitted], device=x.device)
        noise = torch.stack([torch.rand(x.shape[1:], generator=_generator(seed, *run)) for run in admitted])
        starts = x[rows] + (noise.to(x) * 2 - 1) * eps[rows]
        starts = torch.minimum(torch.maximum(starts, box[0][rows]), box[1][rows])
        return _Runs(rows, restart, torch.zeros_like(rows), starts)

    def _step(self, pool: _Runs, labels: torch.Tensor, box, best: torch.Tensor, best_margin: torch.Tensor):
        """One network call on the pool: keep each image's best point (its first success, else its largest margin),
        end the runs that won or took their last step, and step the others. Returns the runs left, how many images
        are finished, and the (image, next restart) of the runs that ended without a success and have restarts left."""
        rows, x_adv = pool.rows, pool.x_adv.requires_grad_(True)
        with torch.enable_grad():
            surrogate, decision = self._views(x_adv)
            objective = margin(surrogate, labels[rows], self.targeted)
        won = margin(decision.detach(), labels[rows], self.targeted) > 0
        better = won | (objective.detach() > best_margin[rows])
        best[rows[better]] = x_adv.detach()[better]
        best_margin[rows[better]] = torch.where(won, torch.inf, objective.detach())[better]
        ended = won | (pool.step == self.max_iter)
        lost = ended & ~won
        runs = zip(rows[lost].tolist(), pool.restart[lost].tolist(), strict=True)
        again = [(image, r + 1) for image, r in runs if r + 1 < self.num_random_init]
        finished, keep = int(ended.sum()) - len(again), ~ended
        if not keep.any():
            return pool.take(keep), finished, again
        (grad,) = torch.autograd.grad(objective[keep].sum(), x_adv)
        left = pool.take(keep)
        stepped = left.x_adv + self.eps_step * grad[keep].sign()
        left.x_adv = torch.minimum(torch.maximum(stepped, box[0][left.rows]), box[1][left.rows])
        left.step += 1
        return left, finished, again

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
