"""Metrics of one cell: a rate with its Wilson interval, and the sizes of the perturbations that worked."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

Z95 = 1.959963984540054


def interval_text(record) -> str:
    """'rate [low, high]' of anything with ``rate``, ``ci_low`` and ``ci_high`` (a Record), as reports print it."""
    return f"{record.rate:.3f} [{record.ci_low:.3f}, {record.ci_high:.3f}]"


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% by default); (0, 1) when n is 0."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class PerturbationSizes:
    l2_mean: float | None
    l2_median: float | None
    linf_mean: float | None
    linf_median: float | None


def per_image_norms(x: torch.Tensor, x_adv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The L2 and L-inf norm of each image's perturbation x_adv - x, in float64."""
    delta = (x_adv - x).flatten(1).double()
    return delta.norm(dim=1), delta.abs().amax(dim=1)


def sizes_of(l2: torch.Tensor, linf: torch.Tensor, worked: torch.Tensor) -> PerturbationSizes:
    """Mean and median of per-image norms over the images where the attack worked (a cell's shards merged give the
    same numbers as the cell in one piece: the norms are per image)."""
    if not bool(worked.any()):
        return PerturbationSizes(None, None, None, None)
    l2, linf = l2[worked], linf[worked]
    return PerturbationSizes(l2.mean().item(), l2.median().item(), linf.mean().item(), linf.median().item())


def compact_text(rate: float, low: float, high: float) -> str:
    """'rate ±h' with h the larger side of the interval (Wilson intervals are not symmetric): the tables' short form;
    the CSV keeps both ends."""
    return f"{rate:.3f} ±{max(rate - low, high - rate, 0.0):.3f}"


def short(record) -> str:
    """``compact_text`` of anything with ``rate``, ``ci_low`` and ``ci_high`` (a Record)."""
    return compact_text(record.rate, record.ci_low, record.ci_high)
