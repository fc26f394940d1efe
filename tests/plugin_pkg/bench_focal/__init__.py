"""A focal-loss model kind (Lin et al. 2017: cross-entropy down-weighted by (1 - p_y)^gamma) and a preset."""

from pathlib import Path

import torch
import torch.nn.functional as F

from models.kinds import ModelKind, linear_head


def focal_loss(scores: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
    log_p = F.log_softmax(scores, dim=1).gather(1, y[:, None]).squeeze(1)
    return -((1 - log_p.exp()) ** gamma) * log_p


def _check(params, n_classes):
    from bench.errors import ConfigError

    if params["gamma"] < 0:
        raise ConfigError(f"focal gamma={params['gamma']} must be at least 0.")


FOCAL = ModelKind(
    "focal",
    "softmax outputs, one-hot targets, focal loss",
    "logits",
    linear_head,
    focal_loss,
    params={"gamma": 2.0},
    loss_params={"gamma": "gamma"},
    validate=_check,
    aliases=("focal_loss",),
)

PRESET = str(Path(__file__).parent / "focal_quick.toml")
