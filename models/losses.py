"""Training losses, each written as a function of the per-class scores that the network's forward returns.

Every head's scores determine its loss exactly, so one function serves training, ART's
``loss`` object and ``loss_gradient``:

- ``cross_entropy``: softmax cross-entropy on the logits (O:SOFTMAX:CE).
- ``softmax_mse``: mean squared error between softmax(logits) and the one-hot target (O:SOFTMAX:MSE).
- ``codeword_mse``: mean squared error between the output z (tanh, or linear) and the target codeword
  c_y. The scores are -||z - c_i||, so MSE = score_y**2 / d (R:TANH:MSE, R:LINEAR:MSE).
- ``one_hot_tanh_mse``: the same with the one-hot targets in tanh's range (+a at the class, -a
  elsewhere; ``models.codebook.ONE_HOT_SCALE``) as codewords, so d is the number of classes (O:TANH:MSE).
- ``codeword_cross_entropy``: softmax cross-entropy on the scores -||z - c_i|| (R:TANH:CE).
- ``hinge``: multi-class hinge sum_{j != y} max(0, f_j - f_y + 1) (vu2018, margin 1).
- ``lmcl``: large margin cosine loss, cross-entropy of s*(cos(theta_j) - m*[j == y]); the scores
  are s*cos(theta) (CosFace, vu2018).

Each returns one loss per example (reduction "none").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def cross_entropy(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(scores, y, reduction="none")


def softmax_mse(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    one_hot = F.one_hot(y, scores.shape[1]).to(scores.dtype)
    return (scores.softmax(dim=1) - one_hot).pow(2).mean(dim=1)


def codeword_mse(scores: torch.Tensor, y: torch.Tensor, codeword_length: int) -> torch.Tensor:
    distance = scores.gather(1, y[:, None]).squeeze(1)  # -||z - c_y||
    return distance.pow(2) / codeword_length


def one_hot_tanh_mse(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return codeword_mse(scores, y, scores.shape[1])  # one target per class, each of length n_classes


def codeword_cross_entropy(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return cross_entropy(scores, y)  # the scores are the negative distances: softmax(-||z - c_i||)


def hinge(scores: torch.Tensor, y: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    true = scores.gather(1, y[:, None])
    violations = (scores - true + margin).clamp_min(0.0)
    others = 1.0 - F.one_hot(y, scores.shape[1]).to(scores.dtype)
    return (violations * others).sum(dim=1)


def lmcl(scores: torch.Tensor, y: torch.Tensor, s: float, m: float) -> torch.Tensor:
    margin = s * m * F.one_hot(y, scores.shape[1]).to(scores.dtype)
    return F.cross_entropy(scores - margin, y, reduction="none")


def as_label_indices(labels: torch.Tensor) -> torch.Tensor:
    """Index labels from either indices (N,) or one-hot / score rows (N, C), as ART may pass either."""
    if labels.ndim == 2:
        return labels.argmax(dim=1)
    return labels.long()


class ModelLoss(nn.Module):
    """A model's own training loss as a torch loss module, for ART and for training.

    Takes (scores, labels) with labels as indices or one-hot rows; ``reduction`` is an attribute
    because ART's ``compute_loss`` switches it in place. ``function`` is a per-example loss
    (scores, label indices, **params); by default the built-in loss called ``name``.
    """

    def __init__(self, name: str, reduction: str = "mean", function=None, **params: float) -> None:
        super().__init__()
        if function is None and name not in LOSSES:
            raise ValueError(f"unknown loss {name!r}; expected one of {', '.join(LOSSES)}")
        self.name = name
        self.function = function or LOSSES[name]
        self.params = params
        self.reduction = reduction

    def per_example(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.function(scores, as_label_indices(labels), **self.params)

    def forward(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        losses = self.per_example(scores, labels)
        if self.reduction == "none":
            return losses
        if self.reduction == "sum":
            return losses.sum()
        return losses.mean()

    def extra_repr(self) -> str:
        return f"{self.name}, params={self.params}, reduction={self.reduction}"


LOSSES = {
    "cross_entropy": cross_entropy,
    "softmax_mse": softmax_mse,
    "codeword_mse": codeword_mse,
    "one_hot_tanh_mse": one_hot_tanh_mse,
    "codeword_cross_entropy": codeword_cross_entropy,
    "hinge": hinge,
    "lmcl": lmcl,
}
