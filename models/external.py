"""Your own trained network, evaluated as it is: any ``torch.nn.Module`` that returns one score per class.

``ExternalModel`` stands beside ``ModelSpec`` in a matrix plan: it has a label, a store key and a dataset,
but it is never trained; the runner asks it for its ART estimator. Its key hashes the module's class, its
weights and its loss, so different weights or a different loss never share results.

Bring one from Python (``bench.evaluate(module, ...)``) or from files: a factory ``package.module:function``
that builds the untrained network, plus a safetensors file of its weights (a checkpoint stays data, never
unpickled): ``bench evaluate --factory mypkg.nets:resnet --weights model.safetensors``.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from bench.errors import ConfigError, StoreError
from bench.registry import code_fingerprint
from models.estimator import BenchClassifier
from models.losses import LOSSES, ModelLoss
from models.spec import EXTERNAL_KEY_PREFIX

LossLike = str | Callable[..., torch.Tensor] | None


@dataclass(frozen=True, eq=False)
class ExternalModel:
    label: str
    module: nn.Module
    dataset: str
    loss: ModelLoss
    input_shape: tuple[int, ...]
    n_classes: int
    origin: str  # where it came from, for reports: a class name, or factory + weights file
    _key: str = field(default="", repr=False)

    def key(self) -> str:
        return self._key

    def probe(self) -> str:
        """Your model by its label: new weights or code under the same label are compared by the gate's rates."""
        return f"external:{self.label}"

    @property
    def loss_label(self) -> str:
        return self.label

    @property
    def name(self) -> str:
        return f"{self.dataset}/external/{self.label}"

    def estimator(self, device: str = "cpu") -> BenchClassifier:
        return BenchClassifier(self.module.to(device), self.loss, self.input_shape, self.n_classes, device)


def external_model(
    module: nn.Module,
    label: str,
    dataset: str,
    input_shape: tuple[int, ...],
    n_classes: int,
    loss: LossLike = None,
    origin: str | None = None,
) -> ExternalModel:
    """Check ``module`` on one zero image (one score per class) and wrap it with its loss.

    ``loss``: None (cross-entropy on the scores), a built-in loss name (``hinge``, ``softmax_mse``...), or a
    function ``loss(scores, labels) -> one loss per example``, used by the attacks that ascend the model's loss.
    """
    if not isinstance(module, nn.Module):
        raise ConfigError(f"model {label!r} is a {type(module).__name__}; expected a torch.nn.Module.")
    model_loss = _loss(loss)
    module.eval()
    first = next(module.parameters(), None)
    try:
        with torch.no_grad():
            scores = module(torch.zeros(1, *input_shape, dtype=first.dtype if first is not None else torch.float32))
    except Exception as exc:  # the user's forward: name what it was given and what it raised, in one line
        raise ConfigError(f"model {label!r} failed on one zero {dataset} image of shape {input_shape}: {exc}") from exc
    if not isinstance(scores, torch.Tensor) or tuple(scores.shape) != (1, n_classes):
        raise ConfigError(
            f"model {label!r} returns {tuple(getattr(scores, 'shape', ())) or type(scores).__name__} for one {dataset} "
            f"image of shape {input_shape}; "
            f"expected (1, {n_classes}): one score per class, whose argmax is its decision."
        )
    key = EXTERNAL_KEY_PREFIX + _fingerprint(module, model_loss)
    origin = origin or f"{type(module).__module__}.{type(module).__qualname__}"
    return ExternalModel(label, module, dataset, model_loss, tuple(input_shape), n_classes, origin, key)


def _loss(loss: LossLike) -> ModelLoss:
    if loss is None:
        return ModelLoss("cross_entropy")
    if isinstance(loss, str):
        usable = [name for name, fn in LOSSES.items() if not _needs_parameters(fn)]
        if loss not in usable:  # lmcl and codeword_mse need their model's parameters: refuse them here
            raise ConfigError(
                f"loss {loss!r} cannot be used alone; expected one of: {', '.join(usable)}, or a function."
            )
        return ModelLoss(loss)
    if callable(loss):
        return ModelLoss(getattr(loss, "__name__", "custom"), function=loss)
    raise ConfigError(f"loss {loss!r} is a {type(loss).__name__}; expected a loss name or a function.")


def _needs_parameters(function: Callable[..., torch.Tensor]) -> bool:
    """A loss with parameters beyond (scores, labels) and no defaults for them."""
    parameters = list(inspect.signature(function).parameters.values())[2:]
    return any(p.default is inspect.Parameter.empty for p in parameters)


def _fingerprint(module: nn.Module, loss: ModelLoss) -> str:
    """The network's code, its weights, and the loss's code with any bound arguments (functools.partial)."""
    function = loss.function
    digest = hashlib.sha256()
    digest.update(code_fingerprint(type(module), getattr(function, "func", function)).encode())
    digest.update(repr((getattr(function, "args", ()), sorted(getattr(function, "keywords", {}).items()))).encode())
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def from_factory(factory: str, weights: str | Path) -> tuple[nn.Module, str]:
    """Build ``package.module:function`` and load its weights from a safetensors file (never unpickled)."""
    module_name, sep, attribute = factory.partition(":")
    if not sep or not attribute:
        raise ConfigError(f"--factory {factory!r}: expected package.module:function.")
    try:
        build = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"--factory {factory!r}: cannot find it ({exc}).") from exc
    try:
        network = build()
    except Exception as exc:  # the user's factory: one line that names it
        raise ConfigError(f"--factory {factory!r} failed to build the network: {exc}") from exc
    path = Path(weights)
    if path.suffix != ".safetensors" or not path.is_file():
        raise StoreError(f"--weights {path}: expected an existing .safetensors file (pickled checkpoints are refused).")
    try:
        network.load_state_dict(load_file(path), strict=True)
    except Exception as exc:  # a safetensors or shape error: name the file and the factory
        raise StoreError(f"--weights {path} does not fit the network {factory} builds: {exc}") from exc
    return network, f"{factory} + {path.name}"
