"""Gradient health per model: where the papers' loss-gradient attacks are blind before they start.

Three shares of the sample images, each stored as a cell (setting ``diagnostics``) with a Wilson interval:

- ``gradient_zero``: the input gradient of the model's own loss is exactly zero, or not finite. FGSM, BIM,
  MIM and PGD step along its sign, so such an image never moves (the hinge loss is exactly flat wherever
  the margin exceeds 1).
- ``gradient_vanishing``: the gradient is not zero but its largest entry is below ``VANISHING`` (1e-8):
  the loss is flat to float32 precision (a unit-size loss carries about 7 digits), so what is left of
  the gradient is mostly rounding and its sign is close to noise. Softmax followed by MSE does this when
  the softmax saturates.
- ``output_saturated``: the output nonlinearity is in its flat region: the largest softmax probability of
  the decision scores is at least 1 - 1e-6 (for codeword heads behind a tanh, R:TANH:MSE and its kin: the share
  of tanh outputs beyond 1 - 1e-6 in magnitude, averaged per image, counts the image when above half; a linear
  codeword head, R:LINEAR:MSE, is never saturated).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bench.results.identity import DIAGNOSTICS, diagnostic_config, digest
from bench.results.metrics import wilson_interval
from bench.results.store import Record, encode_indices
from models.estimator import codebook_of

SETTING = DIAGNOSTICS
VANISHING = 1e-8
SATURATED = 1e-6
CHECKS = ("gradient_zero", "gradient_vanishing", "output_saturated")
BLIND = CHECKS[:2]  # the checks that blind loss-gradient attacks (flags fire on them; saturation is context)
REVISION = 1  # bump when a definition above changes: stored cells are keyed by it


def wanted(attacks: tuple[str, ...] | None, settings: tuple[str, ...] | None) -> bool:
    """A run computes gradient health unless it was narrowed to some attacks, or to settings without it."""
    return not attacks and (not settings or SETTING in settings)


@dataclass(frozen=True)
class Subject:
    """One model's gradient health on ``n`` images drawn with ``seed``: the rows of its checks."""

    dataset: str
    model: str  # the model's label in the run
    model_key: str
    n: int
    seed: int

    def configs(self) -> dict[str, dict[str, Any]]:
        """check -> the identity configuration of its row (bench.results.identity)."""
        return {
            check: diagnostic_config(self.dataset, self.model, self.model_key, check, self.n, self.seed, REVISION)
            for check in CHECKS
        }

    def hashes(self) -> dict[str, str]:
        """check -> the cell hash of its row."""
        return {check: digest(config) for check, config in self.configs().items()}


def health_records(
    subject: Subject, shares: dict[str, torch.Tensor], indices: Any, seconds: float, provenance: dict
) -> list[Record]:
    """The rows of ``subject``'s checks: ``shares`` as ``gradient_health`` gives them (one boolean per image, in
    the order of the test-split ``indices``), ``seconds`` the time they took, ``provenance`` the device, commit,
    versions and time of writing."""
    out = []
    for check, config in subject.configs().items():
        flags = shares[check].cpu()
        out.append(
            Record(
                cell_hash=digest(config),
                name=f"{subject.dataset}/{SETTING}/{check}/{subject.model}",
                dataset=subject.dataset,
                model=subject.model,
                model_key=subject.model_key,
                setting=SETTING,
                source=None,
                attack=check,
                param=None,
                value=None,
                config={**config, "tables": []},
                **share_fields(flags),
                seconds=seconds,
                per_example=np.packbits(flags.numpy()).tobytes(),
                image_indices=encode_indices(indices),
                seed=subject.seed,
                **provenance,
            )
        )
    return out


@torch.no_grad()
def _saturated(est, x: torch.Tensor) -> torch.Tensor:
    network = est.network
    if codebook_of(network) is not None:
        if not getattr(network.head, "tanh", True):  # a linear output (R:LINEAR:MSE) has no flat region
            return torch.zeros(len(x), dtype=torch.bool, device=x.device)
        outputs = est.raw_outputs(x)
        return (outputs.abs() >= 1 - SATURATED).float().mean(1) > 0.5
    return network(x).softmax(1).amax(1) >= 1 - SATURATED


def gradient_health(est, x: torch.Tensor, y: torch.Tensor, batch_size: int = 128) -> dict[str, torch.Tensor]:
    """Per image, one boolean per check in ``CHECKS`` (True = the image has the problem)."""
    zero, vanishing, saturated = [], [], []
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        grad = est.loss_gradient(xb, yb).flatten(1)
        largest = grad.abs().amax(1)
        bad = (largest == 0) | ~torch.isfinite(grad).all(1)
        zero.append(bad)
        vanishing.append(~bad & (largest < VANISHING))
        saturated.append(_saturated(est, xb))
    return dict(zip(CHECKS, (torch.cat(zero), torch.cat(vanishing), torch.cat(saturated)), strict=True))


def share_fields(flags: torch.Tensor) -> dict:
    """rate, interval, n and hits of a boolean per-image vector, as a Record takes them."""
    hits, n = int(flags.sum()), len(flags)
    low, high = wilson_interval(hits, n)
    return {"metric": "share", "rate": hits / n, "ci_low": low, "ci_high": high, "n": n, "hits": hits}
