"""Output heads. Each maps a feature vector to ``raw`` outputs and to one score per class.

``forward`` returns the scores, whose argmax is the model's decision, so that ART's argmax-based
success checks, ``class_gradient``, DeepFool and CW all see classes:

- ``LinearHead``: a fully connected layer; raw outputs and scores are the logits (softmax models, hinge).
- ``CodewordHead``: z = tanh(W h + b) of length d (or z = W h + b with ``tanh=False``); scores are
  -||z - c_i||_2, so the argmax is the nearest codeword (R:TANH:MSE, R:TANH:CE, R:LINEAR:MSE; O:TANH:MSE,
  whose codewords are the one-hot rows +a/-a in tanh's range). ``raw`` returns z, what an attacker who does
  not know about codewords would take for logits; ``tanh`` says whether z went through a tanh.
- ``CosineHead``: scores s*cos(theta_i) between the normalised features and normalised class
  weights (LMCL / CosFace); ``raw`` returns cos(theta).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LinearHead(nn.Module):
    def __init__(self, in_features: int, n_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, n_classes)

    def raw(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(h)

    def scores_from_raw(self, raw: torch.Tensor) -> torch.Tensor:
        return raw

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.scores_from_raw(self.raw(h))


class CodewordHead(LinearHead):
    def __init__(self, in_features: int, codebook: torch.Tensor, tanh: bool = True) -> None:
        super().__init__(in_features, codebook.shape[1])
        self.register_buffer("codebook", codebook.clone())
        self.tanh = tanh  # False: a linear output (R:LINEAR:MSE), which has no pre-tanh view

    def raw(self, h: torch.Tensor) -> torch.Tensor:
        z = self.fc(h)
        return torch.tanh(z) if self.tanh else z

    def scores_from_raw(self, raw: torch.Tensor) -> torch.Tensor:
        # vector_norm's gradient at a zero difference is 0, so the loss score**2 / d stays finite there
        return -torch.linalg.vector_norm(raw[:, None, :] - self.codebook[None], dim=-1)


class CosineHead(nn.Module):
    def __init__(self, in_features: int, n_classes: int, s: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_classes, in_features))
        nn.init.xavier_uniform_(self.weight)
        self.s = s

    def raw(self, h: torch.Tensor) -> torch.Tensor:
        return F.normalize(h, dim=1) @ F.normalize(self.weight, dim=1).T

    def scores_from_raw(self, raw: torch.Tensor) -> torch.Tensor:
        return self.s * raw

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.scores_from_raw(self.raw(h))
