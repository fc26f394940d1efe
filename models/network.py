"""A network = backbone + output head, built from a ModelSpec, and its loss; the kind decides head and loss."""

from __future__ import annotations

import torch
from torch import nn

from bench.errors import ConfigError
from models.architectures import DenseNetBC, SmallCNN, TableICNN
from models.codebook import fingerprint, make_codebook, resolve_key
from models.losses import ModelLoss
from models.spec import ModelSpec


class Network(nn.Module):
    """``forward`` returns one score per class (argmax = decision); ``raw_outputs`` the head's raw vector."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def raw_outputs(self, x: torch.Tensor) -> torch.Tensor:
        raw = getattr(self.head, "raw", None)  # a plugin's head may have no raw view: its scores are its outputs
        return raw(self.backbone(x)) if raw else self(x)


def build_backbone(spec: ModelSpec, input_shape: tuple[int, int, int]) -> nn.Module:
    channels, size, _ = input_shape
    if spec.arch == "cnn":
        return TableICNN(channels, size)
    if spec.arch == "small_cnn":
        return SmallCNN(channels, size)
    return DenseNetBC(channels, depth=spec.densenet_depth, growth_rate=spec.densenet_growth)


def build_network(
    spec: ModelSpec,
    input_shape: tuple[int, int, int],
    n_classes: int,
    codebook_key: str | None = None,
    *,
    placeholder_codebook: bool = False,
) -> Network:
    """A freshly initialised network for ``spec`` (seed the RNG first for a reproducible init).

    With ``placeholder_codebook`` the codebook is zeros, to be overwritten by a stored state dict;
    otherwise it is drawn from the key, which must give the codebook that ``spec`` was made with.
    """
    backbone = build_backbone(spec, input_shape)
    kind = spec.kind
    params = {name: spec.param(name) for name in kind.head_params}
    if kind.codebook:
        params["codebook"] = _codebook(spec, n_classes, codebook_key, placeholder_codebook)
    return Network(backbone, kind.build_head(backbone.feature_dim, n_classes, params))


def _codebook(spec: ModelSpec, n_classes: int, codebook_key: str | None, placeholder: bool) -> torch.Tensor:
    if placeholder:
        return torch.zeros(n_classes, spec.codeword_length)
    codebook = make_codebook(resolve_key(codebook_key)[0], n_classes, spec.codeword_length)
    if fingerprint(codebook) != spec.codebook:
        raise ConfigError(
            "the codebook key given does not produce the codebook this model was specified with; "
            "pass the same --codebook-key (or BENCH_CODEBOOK_KEY) as when the spec was made."
        )
    return codebook


def build_loss(spec: ModelSpec, reduction: str = "mean") -> ModelLoss:
    kind = spec.kind
    params = {keyword: spec.param(name) for name, keyword in kind.loss_params.items()}
    return ModelLoss(kind.name, reduction, function=kind.loss, **params)
