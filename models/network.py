"""A network = backbone + output head, built from a ModelSpec, and its loss."""

from __future__ import annotations

import torch
from torch import nn

from bench.errors import ConfigError
from models.architectures import DenseNetBC, TableICNN
from models.codebook import fingerprint, make_codebook, resolve_key
from models.heads import CodewordHead, CosineHead, LinearHead
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
        return self.head.raw(self.backbone(x))


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
    channels, size, _ = input_shape
    if spec.arch == "cnn":
        backbone: nn.Module = TableICNN(channels, size)
    else:
        backbone = DenseNetBC(channels, depth=spec.densenet_depth, growth_rate=spec.densenet_growth)
    dim = backbone.feature_dim
    head_kind = spec.kind.head
    if head_kind == "linear":
        head: nn.Module = LinearHead(dim, n_classes)
    elif head_kind == "cosine":
        head = CosineHead(dim, n_classes, s=spec.lmcl_s)
    else:
        if placeholder_codebook:
            codebook = torch.zeros(n_classes, spec.codeword_length)
        else:
            codebook = make_codebook(resolve_key(codebook_key)[0], n_classes, spec.codeword_length)
            if fingerprint(codebook) != spec.codebook:
                raise ConfigError(
                    "the codebook key given does not produce the codebook this model was specified with; "
                    "pass the same --codebook-key (or BENCH_CODEBOOK_KEY) as when the spec was made."
                )
        head = CodewordHead(dim, codebook)
    return Network(backbone, head)


def build_loss(spec: ModelSpec, reduction: str = "mean") -> ModelLoss:
    kind = spec.kind
    if kind.loss == "codeword_mse":
        return ModelLoss(kind.loss, reduction, codeword_length=spec.codeword_length)
    if kind.loss == "lmcl":
        return ModelLoss(kind.loss, reduction, s=spec.lmcl_s, m=spec.lmcl_m)
    return ModelLoss(kind.loss, reduction)
