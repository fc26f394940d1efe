"""Batched forward passes without gradients."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def predict_scores(network: nn.Module, x: torch.Tensor, batch_size: int = 1000, device: str = "cpu") -> torch.Tensor:
    """Per-class scores for every image, computed in eval mode, returned on the CPU."""
    network.eval()
    out = [network(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(out) if out else torch.empty(0)


def accuracy(
    network: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000, device: str = "cpu"
) -> float:
    """The share of images whose predicted class (argmax of the scores) equals the label."""
    return (predict_scores(network, x, batch_size, device).argmax(1) == y).float().mean().item()
