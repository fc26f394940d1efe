"""What the attacks share: parameter checks, labels, tensors on the estimator's device, and Carlini & Wagner's
margin of the decision scores."""

from __future__ import annotations

import math

import numpy as np
import torch
from art.utils import check_and_transform_label_format


def check_int(name: str, value: object, minimum: int) -> None:
    """Raise ValueError unless ``value`` is an integer >= ``minimum`` (a bool is not an integer here)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}={value!r} is not valid; expected an integer >= {minimum}.")


def check_number(name: str, value: object, minimum: float, *, strict: bool) -> None:
    """Raise ValueError unless ``value`` is a finite number above (``strict``) or at least ``minimum``."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    ok = ok and math.isfinite(value) and (value > minimum if strict else value >= minimum)
    if not ok:
        bound = f"> {minimum}" if strict else f">= {minimum}"
        raise ValueError(f"{name}={value!r} is not valid; expected a finite number {bound}.")


def check_numbers(name: str, value: object, minimum: float, *, strict: bool) -> None:
    """``check_number`` for a parameter given as one number or as one number per image (a 1-D array)."""
    if isinstance(value, (np.ndarray, torch.Tensor)):
        if value.ndim != 1 or len(value) == 0:
            raise ValueError(
                f"{name} given per image must be a 1-D array of one value per image, got shape {tuple(value.shape)}."
            )
        for v in np.asarray(value, dtype=np.float64):
            check_number(name, float(v), minimum, strict=strict)
    else:
        check_number(name, value, minimum, strict=strict)


def per_image(value: float | np.ndarray, n: int, like: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A parameter given as one number or one per image, as a tensor (n,) on ``like``'s device: an attack that
    takes it per image crafts a whole sweep (several values, each on its own copy of the images) in one call."""
    values = torch.as_tensor(np.asarray(value, dtype=np.float64), device=like.device, dtype=dtype or like.dtype)
    if values.ndim == 0:
        return values.expand(n).clone()
    if len(values) != n:
        raise ValueError(f"a parameter given per image has {len(values)} values for {n} images.")
    return values


def check_bool(name: str, value: object) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}={value!r} is not valid; expected True or False.")


def check_flags(name: str, value: object) -> None:
    """``check_bool`` for a flag given for every image or as one flag per image (a 1-D bool array)."""
    if isinstance(value, (np.ndarray, torch.Tensor)):
        if value.ndim != 1 or len(value) == 0 or value.dtype not in (np.bool_, torch.bool):
            raise ValueError(
                f"{name} given per image must be a 1-D bool array of one flag per image, got {value.dtype} of shape "
                f"{tuple(value.shape)}."
            )
    else:
        check_bool(name, value)


def network_dtype(estimator) -> torch.dtype:
    return next(estimator.model.parameters()).dtype


def as_input(x: np.ndarray, estimator) -> torch.Tensor:
    """ART's NumPy input as a tensor on the estimator's device, in the network's dtype."""
    return torch.as_tensor(np.asarray(x), device=estimator.device, dtype=network_dtype(estimator))


def as_class_indices(y: np.ndarray, estimator) -> torch.Tensor:
    """Labels given as indices (N,) or one-hot rows (N, K), as class indices (N,) on the estimator's device."""
    one_hot = check_and_transform_label_format(np.asarray(y), nb_classes=estimator.nb_classes)
    return torch.as_tensor(one_hot.argmax(axis=1), device=estimator.device, dtype=torch.long)


@torch.no_grad()
def predicted_classes(estimator, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """The model's decisions (argmax of its forward), batch by batch."""
    return torch.cat([estimator.model(x[i : i + batch_size]).argmax(dim=1) for i in range(0, len(x), batch_size)])


def class_labels(estimator, x: torch.Tensor, y: np.ndarray | None, batch_size: int) -> torch.Tensor:
    """The classes an attack aims at or away from: ``y`` as indices, or the model's decisions when None."""
    return predicted_classes(estimator, x, batch_size) if y is None else as_class_indices(y, estimator)


def margin(scores: torch.Tensor, labels: torch.Tensor, targeted: bool | torch.Tensor) -> torch.Tensor:
    """Carlini & Wagner (2017)'s margin, per example: s_t - max_{i != t} s_i (targeted) or max_{i != y} s_i - s_y;
    ``targeted`` for every example or one flag per example.

    Positive exactly when the scores' argmax is the target (targeted) or not the label (untargeted)."""
    own = scores.gather(1, labels[:, None]).squeeze(1)
    other = scores.scatter(1, labels[:, None], -math.inf).amax(dim=1)
    return torch.where(torch.as_tensor(targeted, device=scores.device), own - other, other - own)


def work_left(ended, spent, current, steps: int, step_limit: int):
    """Network calls each image's search is expected to have left (NumPy arrays or tensors, one value per image):
    its ``steps - ended`` steps at the mean length of those it has ended (``spent`` calls over ``ended`` steps; of all
    images' ended steps while it has none, and ``step_limit`` before any image has one), less the ``current`` calls of
    the step it is in. What the pools of CW-L2 and L-BFGS rank their images by, longest first."""
    total = float(ended.sum())
    prior = float(spent.sum()) / total if total else float(step_limit)
    none = ended == 0
    return (steps - ended) * ((spent + prior * none) / (ended + none)) - current
