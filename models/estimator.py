"""Our models as ART classifiers whose gradients come from each model's own training loss.

``BenchClassifier`` subclasses ART's ``PyTorchClassifier`` (ART's PGD takes its fast PyTorch path
by ``isinstance``). What ART sees:

- ``predict`` / forward: one score per class whose argmax is the model's decision (logits for
  softmax and hinge models, s*cos for LMCL, -distance to each codeword for R:TANH:MSE).
- ``loss_gradient``: the input gradient of the model's own loss (cross-entropy, MSE to one-hot,
  MSE to codeword, hinge, LMCL with its margin), summed over the batch so that each row is the
  gradient of that example's loss alone, whatever the batch. It accepts NumPy arrays or torch
  tensors and returns the type it was given. Only the input gradient is computed: the weights
  are frozen, so no weight gradient is spent.
- ``class_gradient`` (CW, DeepFool): ART's own, on the scores above.

Two more views, for attacks that need them (``attacks_ext``):

- ``raw_outputs``: the head's raw vector: logits for softmax and hinge models, cosines for LMCL,
  the 128 tanh outputs for R:TANH:MSE (what an attacker who does not know about codewords
  takes for logits).
- ``target_outputs``: the outputs and one target row per class for the tailored CW objective, which
  saito2019 section 3.3 defines on distances "between the logits and the targets": (tanh outputs,
  codebook) for R:TANH:MSE; (raw outputs, one-hot rows) for every one-hot model. (Softmax
  probabilities against one-hot rows saturate: the attack stalled at 0.65 success on O:SOFTMAX:CE
  with the paper's full budget, against 1.00 from the logits.)
"""

from __future__ import annotations

import numpy as np
import torch
from art.estimators.classification import PyTorchClassifier

from models.losses import ModelLoss
from models.network import Network, build_loss
from models.spec import ModelSpec


class BenchClassifier(PyTorchClassifier):
    def __init__(
        self,
        network: Network,
        loss: ModelLoss,
        input_shape: tuple[int, ...],
        nb_classes: int,
        device: str = "cpu",
    ) -> None:
        network.requires_grad_(False)  # attacks need input gradients only
        network.eval()
        super().__init__(
            model=network,
            loss=loss,
            input_shape=tuple(input_shape),
            nb_classes=nb_classes,
            clip_values=(0.0, 1.0),
            channels_first=True,
            device_type="gpu" if device.startswith("cuda") else "cpu",
        )
        self.loss_fn = loss
        self.spec: ModelSpec | None = None

    @property
    def network(self) -> Network:
        return self._model._model

    def raw_outputs(self, x: torch.Tensor) -> torch.Tensor:
        """The head's raw vector; a network of your own without ``raw_outputs`` shows its scores."""
        raw = getattr(self.network, "raw_outputs", None)
        return raw(x) if raw is not None else self.network(x)

    def target_outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(outputs, targets): the output vectors and one target row per class, as the loss compares them."""
        raw = self.raw_outputs(x)
        codebook = codebook_of(self.network)
        if codebook is not None:
            return raw, codebook
        return raw, torch.eye(self.nb_classes, dtype=raw.dtype, device=raw.device)

    def loss_gradient(
        self, x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, training_mode: bool = False, **kwargs
    ) -> np.ndarray | torch.Tensor:
        """Input gradient of the per-example loss; NumPy in, NumPy out; torch in, torch out."""
        given_numpy = isinstance(x, np.ndarray)
        dtype = next(self.network.parameters()).dtype
        x_t = torch.as_tensor(x, device=self._device, dtype=dtype).detach().clone().requires_grad_(True)
        y_t = torch.as_tensor(y, device=self._device)
        self.network.train(mode=training_mode)
        with torch.enable_grad():
            total = self.loss_fn.per_example(self.network(x_t), y_t).sum()
            (grad,) = torch.autograd.grad(total, x_t)
        self.network.eval()
        if given_numpy:
            return grad.cpu().numpy().astype(x.dtype, copy=False)
        return grad.to(x.dtype)


def codebook_of(network: torch.nn.Module) -> torch.Tensor | None:
    """The codewords of a codeword head (R:TANH:MSE), or None for any other network."""
    return getattr(getattr(network, "head", None), "codebook", None)


def make_estimator(
    spec: ModelSpec, network: Network, input_shape: tuple[int, ...], nb_classes: int, device: str = "cpu"
) -> BenchClassifier:
    """The ART estimator for a trained network of ``spec``."""
    estimator = BenchClassifier(network.to(device), build_loss(spec), input_shape, nb_classes, device)
    estimator.spec = spec
    return estimator
