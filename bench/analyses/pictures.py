"""Pictures of adversarial examples (saito2019 Figures 1-3) and Figure 1's measure: the smallest eps at
which a targeted attack reaches its target on every image of a sample.

The search is over a grid of eps (steps of ``resolution``); it assumes success grows with eps, which an
attack with a random start only roughly obeys, so the eps it returns is checked: every image succeeded
at it, in the run that is reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# eps -> (adversarial images, their predicted classes) for a fixed sample and targets
AttackAt = Callable[[float], tuple[np.ndarray, np.ndarray]]


@dataclass
class EpsSearch:
    eps: float | None  # the smallest eps on the grid at which every image reached its target; None: none did
    success_at: dict[float, float]  # every eps tried -> share of images that reached their target
    x_adv: np.ndarray | None  # the adversarial images at ``eps``
    predicted: np.ndarray | None


def smallest_eps_all_success(
    attack_at: AttackAt, targets: np.ndarray, high: float = 1.0, resolution: float = 0.01
) -> EpsSearch:
    """Bisection over the grid resolution, 2 * resolution, ..., high for the first eps where every image
    is classified as its target. Needs about log2(high / resolution) attack runs."""
    if not 0 < resolution <= high <= 1:
        raise ValueError(f"need 0 < resolution <= high <= 1; got resolution={resolution}, high={high}.")
    steps = int(round(high / resolution))
    tried: dict[float, float] = {}
    found: tuple[float, np.ndarray, np.ndarray] | None = None

    def run(k: int) -> bool:
        nonlocal found
        eps = round(k * resolution, 10)
        x_adv, predicted = attack_at(eps)
        hit = predicted == targets
        tried[eps] = float(hit.mean())
        if hit.all() and (found is None or eps < found[0]):
            found = (eps, x_adv, predicted)
        return bool(hit.all())

    if not run(steps):
        return EpsSearch(None, tried, None, None)
    low, top = 0, steps  # invariant: step ``top`` succeeded on every image; step ``low`` did not (0 = no attack)
    while top - low > 1:
        mid = (low + top) // 2
        if run(mid):
            top = mid
        else:
            low = mid
    assert found is not None
    return EpsSearch(found[0], dict(sorted(tried.items())), found[1], found[2])


def adversarial_grid(
    x: np.ndarray,
    x_adv: np.ndarray,
    labels: np.ndarray,
    predicted: np.ndarray,
    title: str,
    class_names: list[str] | None = None,
):
    """Three rows per image column: the clean image with its label, the perturbation (grey is zero; its
    scale is printed), and the adversarial image with the class the model predicts on it."""
    n = len(x)
    names = class_names or [str(i) for i in range(int(max(labels.max(), predicted.max())) + 1)]
    delta = x_adv - x
    scale = float(np.abs(delta).max()) or 1.0
    fig, axes = plt.subplots(3, n, figsize=(1.3 * n, 4.4), squeeze=False)
    for j in range(n):
        rows = [
            (_image(x[j]), "gray", 0, 1, f"{names[labels[j]]}"),
            (_image(delta[j], signed=True), "seismic", -scale, scale, ""),
            (_image(x_adv[j]), "gray", 0, 1, f"-> {names[predicted[j]]}"),
        ]
        for i, (img, cmap, vmin, vmax, text) in enumerate(rows):
            ax = axes[i, j]
            ax.imshow(img, cmap=cmap if img.ndim == 2 else None, vmin=vmin, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if text:
                ax.set_title(text, fontsize=8, color="black" if i == 0 else "tab:red")
    axes[0, 0].set_ylabel("clean", fontsize=9)
    axes[1, 0].set_ylabel(f"perturbation\n(±{scale:.2f})", fontsize=9)
    axes[2, 0].set_ylabel("adversarial", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _image(chw: np.ndarray, signed: bool = False) -> np.ndarray:
    """(C, H, W) -> (H, W) for one channel, (H, W, C) for colour; a signed colour perturbation is shown
    as its mean over channels so the diverging colour map still reads as sign."""
    if chw.shape[0] == 1:
        return chw[0]
    if signed:
        return chw.mean(axis=0)
    return np.transpose(chw, (1, 2, 0))
