"""Backbones: image (N, C, H, W) -> feature vector (N, feature_dim). The output head is separate.

- ``cnn``: the MNIST network of vu2018 Table I without its last layer: conv 5x5x32, max-pool,
  conv 5x5x64, max-pool, FC 1024, ReLU throughout ("same" padding, so 28 -> 14 -> 7).
- ``small_cnn``: the MNIST network of Wong, Rice and Kolter 2020 ("Fast is better than free") without its last
  layer: conv 4x4x16 stride 2, conv 4x4x32 stride 2, FC 100, ReLU throughout (28 -> 14 -> 7); about a
  sixteenth of ``cnn``'s multiply-adds, the network their FGSM-RS recipe was tuned on.
- ``densenet``: DenseNet-BC (Huang et al. 2017) with three dense blocks of bottleneck layers and
  compression 0.5, sized by ``depth`` and ``growth_rate``; works for 28x28 and 32x32 inputs.
"""

from __future__ import annotations

import torch
from torch import nn


class TableICNN(nn.Module):
    def __init__(self, in_channels: int, image_size: int, hidden: int = 1024) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=5, padding=2)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(64 * (image_size // 4) ** 2, hidden)
        self.feature_dim = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # ReLU after the pool, not before: max and ReLU commute, outputs and gradients are bit-identical,
        # and ReLU and its backward touch a quarter of the values (about 10% of a CPU training step)
        x = torch.relu(self.pool(self.conv1(x)))
        x = torch.relu(self.pool(self.conv2(x)))
        return torch.relu(self.fc1(x.flatten(1)))


class SmallCNN(nn.Module):
    def __init__(self, in_channels: int, image_size: int, hidden: int = 100) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, kernel_size=4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=4, stride=2, padding=1)
        self.fc1 = nn.Linear(32 * (image_size // 4) ** 2, hidden)
        self.feature_dim = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return torch.relu(self.fc1(x.flatten(1)))


class _Bottleneck(nn.Module):
    """BN-ReLU-Conv1x1(4k)-BN-ReLU-Conv3x3(k), output concatenated to the input."""

    def __init__(self, in_channels: int, growth_rate: int) -> None:
        super().__init__()
        inner = 4 * growth_rate
        self.body = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, inner, kernel_size=1, bias=False),
            nn.BatchNorm2d(inner),
            nn.ReLU(inplace=True),
            nn.Conv2d(inner, growth_rate, kernel_size=3, padding=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], dim=1)


def _transition(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.BatchNorm2d(in_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
        nn.AvgPool2d(2),
    )


class DenseNetBC(nn.Module):
    def __init__(self, in_channels: int, depth: int = 40, growth_rate: int = 12, compression: float = 0.5) -> None:
        super().__init__()
        if (depth - 4) % 6 != 0 or depth < 10:
            raise ValueError(f"DenseNet-BC depth {depth} must be 6n + 4 with n >= 1 (e.g. 22, 40, 100)")
        layers_per_block = (depth - 4) // 6
        channels = 2 * growth_rate
        modules: list[nn.Module] = [nn.Conv2d(in_channels, channels, kernel_size=3, padding=1, bias=False)]
        for block in range(3):
            for _ in range(layers_per_block):
                modules.append(_Bottleneck(channels, growth_rate))
                channels += growth_rate
            if block < 2:
                out = int(channels * compression)
                modules.append(_transition(channels, out))
                channels = out
        modules += [nn.BatchNorm2d(channels), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*modules)
        self.feature_dim = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def small_cnn_classifier(in_channels: int = 1, image_size: int = 28, n_classes: int = 10) -> nn.Sequential:
    """``small_cnn`` with a linear layer of class scores: Wong et al.'s whole MNIST network, as a factory for
    ``bench evaluate`` (their released weights load into it by scripts/wong2020_released.sh)."""
    backbone = SmallCNN(in_channels, image_size)
    return nn.Sequential(backbone, nn.Linear(backbone.feature_dim, n_classes))
