"""McNemar's exact test on hand-made paired outcomes, and its combination across training seeds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from bench.results.paired import (
    HIGHER,
    LOWER,
    NONE,
    WITHIN_SPREAD,
    Outcome,
    align,
    compare,
    exact_p,
    holm,
    mcnemar,
)


def pair(n: int, both: int, only_a: int, only_b: int) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes of two models on n images: ``both`` robust under both, then ``only_a`` under a alone, then
    ``only_b`` under b alone, the rest under neither."""
    a, b = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    a[:both] = b[:both] = True
    a[both : both + only_a] = True
    b[both + only_a : both + only_a + only_b] = True
    return a, b


def seeded(specs: list[tuple[int, int, int]], n: int = 200, seeds=(0, 1, 2)):
    """Per-seed outcomes of models A and B from (both, only_a, only_b) per seed, on images 0..n-1."""
    a, b = {}, {}
    for seed, spec in zip(seeds, specs, strict=True):
        x, y = pair(n, *spec)
        a[seed] = Outcome(f"A@s{seed}", np.arange(n), x)
        b[seed] = Outcome(f"B@s{seed}", np.arange(n), y)
    return a, b


def run(a, b, alpha=0.05):
    return compare(a, b, names=("A", "B"), attack="worst_case", eps=0.1, alpha=alpha)


@pytest.mark.parametrize("b,c", [(0, 0), (0, 5), (1, 9), (7, 7), (12, 3), (40, 61), (0, 300), (5000, 5100)])
def test_exact_p_is_the_two_sided_binomial_test(b, c):
    expected = 1.0 if b + c == 0 else binomtest(b, b + c, 0.5).pvalue
    assert exact_p(b, c) == pytest.approx(expected, rel=1e-9)


def test_exact_p_by_hand():
    assert exact_p(0, 5) == pytest.approx(2 / 32)  # 2 * P(X = 0), X ~ Bin(5, 1/2)
    assert exact_p(9, 1) == pytest.approx(2 * (1 + 10) / 2**10)  # symmetric in b and c
    assert exact_p(4, 4) == 1.0
    with pytest.raises(ValueError, match="b=-1"):
        exact_p(-1, 3)


def test_known_difference_found_with_its_direction_and_p():
    x, y = pair(100, 60, 15, 2)
    assert mcnemar(x, y) == (15, 2, pytest.approx(binomtest(2, 17, 0.5).pvalue))
    a = {None: Outcome("A", np.arange(100), x)}
    b = {None: Outcome("B", np.arange(100), y)}
    up = run(a, b)
    assert up.verdict == HIGHER and up.spread is None
    (t,) = up.seeds
    assert (t.seed, t.n, t.b, t.c) == (None, 100, 15, 2) and t.p == pytest.approx(2 * (1 + 17 + 136) / 2**17)
    assert up.difference.value == pytest.approx(0.13) and up.difference.low > 0
    assert (up.accuracy_a.value, up.accuracy_b.value) == (pytest.approx(0.75), pytest.approx(0.62))
    down = run(b, a)
    assert down.verdict == LOWER and (down.seeds[0].b, down.seeds[0].c) == (2, 15)
    assert down.difference.value == pytest.approx(-0.13)


def test_identical_models_are_not_called_different():
    x, _ = pair(100, 70, 0, 0)
    same = run({None: Outcome("A", np.arange(100), x)}, {None: Outcome("B", np.arange(100), x.copy())})
    assert same.verdict == NONE and (same.seeds[0].b, same.seeds[0].c, same.seeds[0].p) == (0, 0, 1.0)
    assert same.difference.value == 0.0


def test_balanced_disagreement_is_not_a_difference():
    a, b = seeded([(100, 10, 10)] * 3)
    assert run(a, b).verdict == NONE


def test_outcomes_are_aligned_by_image_index_not_position():
    x, y = pair(50, 20, 10, 0)
    order = np.random.default_rng(0).permutation(50)
    idx, ax, by = align(Outcome("A", np.arange(50), x), Outcome("B", order, y[order]))
    # b's outcome of image order[k] is stored at position k; aligned back, it is y again
    assert idx.tolist() == list(range(50)) and by.tolist() == y.tolist() and ax.tolist() == x.tolist()


def test_different_image_sets_are_refused_naming_both_cells():
    x, y = pair(10, 5, 2, 0)
    a = {0: Outcome("mnist/w/worst_case[eps=0.1]/A@s0", np.arange(10), x)}
    b = {0: Outcome("mnist/w/worst_case[eps=0.1]/B@s0", np.arange(1, 11), y)}
    with pytest.raises(ValueError, match=r"A@s0 and .*B@s0 did not run on the same images.*1 only in the first"):
        run(a, b)


def test_seeds_on_different_images_are_refused():
    a, b = seeded([(100, 20, 0)] * 2, seeds=(0, 1))
    x, y = pair(200, 100, 20, 0)
    a[1], b[1] = Outcome("A@s1", np.arange(5, 205), x), Outcome("B@s1", np.arange(5, 205), y)
    with pytest.raises(ValueError, match="A@s0 and A@s1 .*two training seeds"):
        run(a, b)


def test_no_shared_seed_is_refused():
    a, _ = seeded([(100, 20, 0)], seeds=(0,))
    _, b = seeded([(100, 20, 0)], seeds=(1,))
    with pytest.raises(ValueError, match=r"A \(seeds 0\) and B \(seeds 1\) share no training seed"):
        run(a, b)


def test_a_difference_on_two_of_three_seeds_is_not_one():
    a, b = seeded([(140, 20, 0), (140, 20, 0), (140, 3, 1)])
    result = run(a, b)
    assert [t.b - t.c for t in result.seeds] == [20, 20, 2]
    assert result.verdict == NONE and result.significant_seeds == 2
    assert result.difference.value > 0  # the mean alone would have said "higher"


def test_opposite_directions_across_seeds_are_no_difference():
    a, b = seeded([(140, 30, 0), (140, 30, 0), (140, 0, 30)])
    assert all(t.p_holm < 1e-6 for t in run(a, b).seeds)
    assert run(a, b).verdict == NONE


def test_holm_across_seeds():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]
    # each seed alone would pass at 0.05 (p = 0.036 for 20 against 8), not after Holm across three seeds
    a, b = seeded([(100, 20, 8)] * 3)
    result = run(a, b)
    assert all(t.p < 0.05 for t in result.seeds) and result.verdict == NONE
    assert result.seeds[0].p_holm == pytest.approx(3 * result.seeds[0].p)


def test_a_difference_within_the_seed_spread_is_not_separable():
    # 0.1 higher on every seed, significantly; per-seed accuracies range over 0.5
    a, b = seeded([(150, 20, 0), (100, 20, 0), (50, 20, 0)])
    result = run(a, b)
    assert all(t.p_holm < 1e-4 for t in result.seeds)
    assert result.spread == pytest.approx(0.5) and result.difference.value == pytest.approx(0.1)
    assert result.verdict == WITHIN_SPREAD


def test_a_difference_beyond_the_seed_spread_is_one():
    a, b = seeded([(150, 20, 0), (140, 20, 0), (145, 20, 0)])
    result = run(a, b)
    assert result.spread == pytest.approx(0.05)  # both models range over (150 - 140) / 200
    assert result.verdict == HIGHER
    assert result.accuracy_a.value == pytest.approx((170 + 160 + 165) / 600)
    assert run(b, a).verdict == LOWER


def test_spread_is_the_larger_range_of_the_two_models():
    a, b = seeded([(150, 20, 0), (150, 24, 0), (150, 22, 0)])  # a ranges over 4/200, b over 0
    result = run(a, b)
    assert result.spread == pytest.approx(0.02) and result.verdict == HIGHER
    assert run(b, a).spread == pytest.approx(0.02)  # the range of the second model


def test_difference_interval_covers_the_paired_wald_interval():
    x, y = pair(400, 200, 30, 10)
    result = run({None: Outcome("A", np.arange(400), x)}, {None: Outcome("B", np.arange(400), y)})
    d = x.astype(float) - y
    half = 1.959963984540054 * d.std(ddof=1) / np.sqrt(400)
    assert (result.difference.low, result.difference.high) == (
        pytest.approx(0.05 - half),
        pytest.approx(0.05 + half),
    )


def test_bad_alpha_and_mismatched_outcome_are_refused():
    a, b = seeded([(100, 20, 0)], seeds=(0,))
    with pytest.raises(ValueError, match="alpha=1.5"):
        run(a, b, alpha=1.5)
    with pytest.raises(ValueError, match="cell X has 3 outcomes for 2 image indices"):
        Outcome("X", np.arange(2), np.ones(3, dtype=bool))
