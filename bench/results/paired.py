"""Paired comparison of two models on the same images, per training seed, combined across seeds.

The outcome of an image is whether the model stays correct under the attack (robust). For one seed, the two models'
outcomes are aligned by test-split image index (never by position) and compared with McNemar's exact test: ``b``
counts the images where model ``a`` is robust and model ``b`` is not, ``c`` the reverse, and the two-sided p-value is
the exact binomial tail ``min(1, 2 P(X <= min(b, c)))`` with ``X ~ Binomial(b + c, 1/2)`` (1 when ``b + c = 0``).

Across seeds (seed ``s`` of one model against seed ``s`` of the other, on the seeds both have) a difference is
called one only when

- every seed's test is significant after Holm's step-down correction across the seeds at ``alpha``, all in the same
  direction (``b > c`` on every seed, or ``b < c`` on every seed), and
- the mean difference of accuracy over seeds exceeds the **seed spread**: the larger of the two models' ranges
  (max - min) of per-seed accuracy on these images.

The verdict is then "higher" or "lower" (model ``a`` against model ``b``); a difference that passes the tests but
not the spread is "not separable from seed spread"; anything else is "no difference" (no paired difference on every
seed). With one seed (models without ``@s<seed>`` names) the spread is unknown (``None``), and the verdict rests on
the test alone.

Intervals (95%) are over images, for the trained models at hand: the difference's is the normal interval of the
per-image difference averaged over seeds (for one seed, the paired Wald interval); a model's accuracy is the Wilson
interval for one seed and the normal interval of the per-image accuracy averaged over seeds for several. They do not
include the variation between training runs; that is what the seed spread is for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

from bench.results.metrics import Z95, wilson_interval
from bench.results.store import Record
from bench.results.worst_case import Indices, image_indices, per_example

HIGHER, LOWER, NONE, WITHIN_SPREAD = "higher", "lower", "no difference", "not separable from seed spread"
VERDICTS = (HIGHER, LOWER, NONE, WITHIN_SPREAD)


@dataclass(frozen=True)
class Outcome:
    """One cell's per-image outcome: ``robust[k]`` is the outcome on test-split image ``indices[k]``."""

    name: str
    indices: np.ndarray
    robust: np.ndarray

    def __post_init__(self) -> None:
        if len(self.indices) != len(self.robust):
            raise ValueError(
                f"cell {self.name} has {len(self.robust)} outcomes for {len(self.indices)} image indices; "
                "expected one outcome per image."
            )

    @classmethod
    def of(cls, record: Record, indices: Indices = image_indices) -> Outcome:
        """A stored cell's outcome (``per_example`` in the order of its images' indices)."""
        return cls(record.name, np.asarray(indices(record)), per_example(record))

    def sorted(self) -> Outcome:
        order = np.argsort(self.indices, kind="stable")
        return Outcome(self.name, self.indices[order], np.asarray(self.robust, dtype=bool)[order])


@dataclass(frozen=True)
class Estimate:
    """A value with its 95% interval."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class SeedTest:
    """McNemar's exact test for one seed: ``b`` images robust under ``a`` only, ``c`` under ``b`` only."""

    seed: int | None
    n: int
    b: int
    c: int
    p: float  # exact two-sided
    p_holm: float  # Holm-adjusted across the comparison's seeds
    accuracy_a: float
    accuracy_b: float


@dataclass(frozen=True)
class Comparison:
    """Model ``a`` against model ``b`` under ``attack`` at ``eps``; differences are ``a - b``."""

    a: str
    b: str
    attack: str
    eps: float
    seeds: tuple[SeedTest, ...]
    accuracy_a: Estimate
    accuracy_b: Estimate
    difference: Estimate
    spread: float | None  # the larger of the two models' ranges of per-seed accuracy; None with one seed
    alpha: float
    verdict: str

    @property
    def significant_seeds(self) -> int:
        """Seeds whose Holm-adjusted test is significant in the direction of the mean difference."""
        sign = np.sign(self.difference.value)
        return sum(t.p_holm <= self.alpha and np.sign(t.b - t.c) == sign != 0 for t in self.seeds)


def exact_p(b: int, c: int) -> float:
    """McNemar's exact two-sided p-value for ``b`` and ``c`` discordant pairs."""
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts b={b}, c={c}; expected counts >= 0.")
    n = b + c
    if n == 0:
        return 1.0
    return min(1.0, 2.0 * float(binom.cdf(min(b, c), n, 0.5)))


def align(a: Outcome, b: Outcome) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indices, a's outcomes, b's outcomes) on the same images in index order; refuses different image sets."""
    a, b = a.sorted(), b.sorted()
    if not np.array_equal(a.indices, b.indices):
        only_a, only_b = np.setdiff1d(a.indices, b.indices), np.setdiff1d(b.indices, a.indices)
        raise ValueError(
            f"cells {a.name} and {b.name} did not run on the same images ({len(a.indices)} and {len(b.indices)} "
            f"images; {len(only_a)} only in the first, {len(only_b)} only in the second); a paired test needs the "
            "same images."
        )
    return a.indices, a.robust, b.robust


def mcnemar(a: np.ndarray, b: np.ndarray) -> tuple[int, int, float]:
    """(b, c, p) for two aligned boolean outcome arrays."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    return only_a, only_b, exact_p(only_a, only_b)


def holm(ps: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given."""
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    adjusted, running = [0.0] * len(ps), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(ps) - rank) * ps[i]))
        adjusted[i] = running
    return adjusted


def compare(
    a: Mapping[int | None, Outcome],
    b: Mapping[int | None, Outcome],
    *,
    names: tuple[str, str],
    attack: str,
    eps: float,
    alpha: float = 0.05,
) -> Comparison:
    """Compare model ``names[0]`` (outcomes ``a``, training seed -> outcome; seed None for an unseeded model)
    with model ``names[1]`` (``b``) on the seeds both have; every seed must cover the same images."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha}; expected a level between 0 and 1.")
    seeds = sorted(set(a) & set(b), key=lambda s: -1 if s is None else s)
    if not seeds:
        raise ValueError(
            f"{names[0]} (seeds {_seeds_text(a)}) and {names[1]} (seeds {_seeds_text(b)}) share no training seed "
            f"under {attack} at eps {eps:g}; expected the same seeds."
        )
    aligned = [align(a[s], b[s]) for s in seeds]
    if not len(aligned[0][0]):
        raise ValueError(f"cells {a[seeds[0]].name} and {b[seeds[0]].name} have no images; expected at least one.")
    _same_images_across_seeds([a[s] for s in seeds], [idx for idx, _, _ in aligned])
    tests = _seed_tests(seeds, aligned)
    oa, ob = np.array([x for _, x, _ in aligned]), np.array([y for _, _, y in aligned])  # (seeds, images)
    difference = _mean_interval((oa.astype(float) - ob).mean(axis=0))
    spread = None if len(seeds) == 1 else max(_range(oa.mean(axis=1)), _range(ob.mean(axis=1)))
    return Comparison(
        a=names[0],
        b=names[1],
        attack=attack,
        eps=eps,
        seeds=tests,
        accuracy_a=_accuracy(oa),
        accuracy_b=_accuracy(ob),
        difference=difference,
        spread=spread,
        alpha=alpha,
        verdict=verdict(tests, difference.value, spread, alpha),
    )


def verdict(tests: tuple[SeedTest, ...], difference: float, spread: float | None, alpha: float) -> str:
    """One of ``VERDICTS`` (see the module's docstring)."""
    directions = {int(np.sign(t.b - t.c)) for t in tests}
    if not all(t.p_holm <= alpha for t in tests) or len(directions) != 1 or 0 in directions:
        return NONE
    if spread is not None and abs(difference) <= spread:
        return WITHIN_SPREAD
    return HIGHER if directions == {1} else LOWER


def _seed_tests(seeds: list[int | None], aligned: list[tuple]) -> tuple[SeedTest, ...]:
    counts = [mcnemar(x, y) for _, x, y in aligned]
    adjusted = holm([p for _, _, p in counts])
    return tuple(
        SeedTest(s, len(x), b, c, p, p_holm, float(np.mean(x)), float(np.mean(y)))
        for s, (_, x, y), (b, c, p), p_holm in zip(seeds, aligned, counts, adjusted, strict=True)
    )


def _same_images_across_seeds(outcomes: list[Outcome], indices: list[np.ndarray]) -> None:
    for outcome, idx in zip(outcomes[1:], indices[1:], strict=True):
        if not np.array_equal(idx, indices[0]):
            raise ValueError(
                f"cells {outcomes[0].name} and {outcome.name} (two training seeds) did not run on the same images "
                f"({len(indices[0])} and {len(idx)} images); seeds are combined on the same images."
            )


def _mean_interval(values: np.ndarray) -> Estimate:
    """The mean of per-image values with its normal 95% interval."""
    mean = float(values.mean())
    if len(values) < 2:
        return Estimate(mean, -1.0, 1.0)
    half = Z95 * float(values.std(ddof=1)) / math.sqrt(len(values))
    return Estimate(mean, mean - half, mean + half)


def _accuracy(outcomes: np.ndarray) -> Estimate:
    """Mean accuracy over seeds (rows) with its interval over images: Wilson for one seed."""
    if len(outcomes) == 1:
        hits, n = int(outcomes[0].sum()), outcomes.shape[1]
        return Estimate(hits / n, *wilson_interval(hits, n))
    est = _mean_interval(outcomes.astype(float).mean(axis=0))
    return Estimate(est.value, max(0.0, est.low), min(1.0, est.high))


def _range(values: np.ndarray) -> float:
    return float(values.max() - values.min())


def _seeds_text(outcomes: Mapping[int | None, Outcome]) -> str:
    return ", ".join("unseeded" if s is None else str(s) for s in outcomes) or "none"
