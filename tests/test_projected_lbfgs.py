"""The batched box-constrained L-BFGS of attacks_ext._projected_lbfgs: its compact-form direction against the two-loop
recursion, its minima against SciPy's L-BFGS-B, each row's independence of the others, and its stopping rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import fmin_l_bfgs_b

from attacks_ext._projected_lbfgs import Limits, ProjectedLBFGS

F64 = torch.float64


def _two_loop(g, free, pairs, m):
    """Nocedal and Wright's Algorithm 7.4 on the free variables, one row at a time: the reference."""
    q, memory, alphas = g * free, pairs[-m:], []
    for s, y in reversed(memory):
        alphas.append((s @ q) / (s @ y))
        q = q - alphas[-1] * y
    s, y = memory[-1] if memory else (None, None)
    r = q * ((s @ y) / (y @ y) if memory else 1.0)
    for (s, y), alpha in zip(memory, reversed(alphas), strict=True):
        r = r + (alpha - (y @ r) / (s @ y)) * s
    return -r * free


def test_the_compact_direction_is_the_two_loop_recursion_with_the_ring_in_any_state():
    """Rows holding no pair, some, exactly m, and more than m (the ring has wrapped): each row's direction is the
    two-loop recursion's over its last m pairs, oldest first; variables held at a bound by their gradient stay."""
    torch.manual_seed(0)
    width, n, m = 5, 30, 4
    pool = ProjectedLBFGS(width, n, Limits(100, m=m), 0.0, 1.0, F64)
    pool.x, pool.g = torch.rand(width, n, dtype=F64), torch.randn(width, n, dtype=F64)
    pool.x[:, :3], pool.x[:, 3:6] = 0.0, 1.0
    pairs = {row: [] for row in range(width)}
    for row, count in enumerate([0, 1, 3, 4, 7]):
        a = torch.randn(n, n, dtype=F64)
        curvature = a @ a.T + n * torch.eye(n, dtype=F64)
        for _ in range(count):
            s = torch.zeros(width, n, dtype=F64)
            s[row] = torch.randn(n, dtype=F64)
            y = s @ curvature
            pool._remember(torch.arange(width) == row, s, y)
            pairs[row].append((s[row], y[row]))
    free = ((pool.x - pool.g).clamp(0.0, 1.0) - pool.x) != 0
    direction = pool._direction(free)
    for row in range(width):
        expected = _two_loop(pool.g[row], free[row], pairs[row], m)
        torch.testing.assert_close(direction[row], expected, rtol=1e-10, atol=1e-12)
    assert (direction[:, :3][pool.g[:, :3] > 0] == 0).all() and (direction[:, 3:6][pool.g[:, 3:6] < 0] == 0).all()


def _problems(k: int, n: int = 40, seed: int = 0):
    """k smooth problems on [0, 1]^n (a convex quartic plus a quadratic whose minimum lies partly outside the box)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(k):
        a = rng.normal(size=(n, n)) / np.sqrt(n)
        hessian, centre = a @ a.T + 0.1 * np.eye(n), rng.uniform(-0.5, 1.5, size=n)

        def f_and_g(x, h=hessian, c=centre):
            r = x - c
            return float(0.5 * r @ h @ r + 0.25 * np.sum(r**4)), h @ r + r**3

        out.append((f_and_g, rng.uniform(size=n)))
    return out


def _solve_all(problems, width: int, limits: Limits):
    """Solves every problem in a pool of ``width`` rows, starting each as a row frees; returns x and iterations."""
    n = len(problems[0][1])
    pool, waiting, answers = ProjectedLBFGS(width, n, limits, 0.0, 1.0, F64), list(range(len(problems))), {}
    problem_in = [-1] * width
    while waiting or pool.busy.any():
        for row in pool.free_rows().tolist()[: len(waiting)]:
            problem_in[row] = waiting.pop(0)
            pool.start(torch.tensor([row]), torch.from_numpy(problems[problem_in[row]][1])[None])
        rows = pool.busy_rows()
        evaluated = [problems[problem_in[r]][0](pool.trial[r].numpy()) for r in rows.tolist()]
        f = torch.tensor([v for v, _ in evaluated], dtype=F64)
        g = torch.from_numpy(np.stack([grad for _, grad in evaluated]))
        for row in pool.tell(rows, f, g, f < 0).tolist():
            answers[problem_in[row]] = (pool.x[row].numpy().copy(), int(pool.iterations[row]))
    return [answers[k] for k in range(len(problems))]


def test_it_reaches_l_bfgs_b_minima_and_each_row_solves_as_it_would_alone():
    """Six problems through a pool of 3 rows (rows refilled as problems end) give the points SciPy's L-BFGS-B
    reaches, to its tolerance, and bit for bit the points each gets alone in a pool of one row."""
    problems = _problems(6)
    pooled = _solve_all(problems, width=3, limits=Limits(max_iter=500))
    alone = [_solve_all([p], width=1, limits=Limits(max_iter=500))[0] for p in problems]
    for (f_and_g, x0), (x, _), (x_alone, _) in zip(problems, pooled, alone, strict=True):
        np.testing.assert_array_equal(x, x_alone)
        expected, f_expected, _ = fmin_l_bfgs_b(f_and_g, x0, bounds=[(0.0, 1.0)] * len(x0), pgtol=1e-8, factr=10)
        np.testing.assert_allclose(x, expected, atol=1e-4)
        assert f_and_g(x)[0] <= f_expected + 1e-6
        assert ((x == 0.0) | (x == 1.0)).any()  # the bounds were reached, not merely approached


@pytest.mark.parametrize("max_iter", [1, 3])
def test_it_stops_at_max_iter(max_iter):
    (x, iterations), *_ = _solve_all(_problems(1), width=1, limits=Limits(max_iter=max_iter))
    assert iterations == max_iter


def test_a_line_search_that_finds_no_decrease_ends_the_problem_where_it_was():
    """f rises in every direction from the start except along a gradient that lies: after max_ls tries the
    problem ends at its start, having spent 1 + max_ls evaluations."""
    pool = ProjectedLBFGS(1, 4, Limits(max_iter=100, max_ls=5), 0.0, 1.0, F64)
    start = torch.full((1, 4), 0.5, dtype=F64)
    pool.start(torch.tensor([0]), start)
    evaluations, ended = 0, torch.tensor([], dtype=torch.long)
    while len(ended) == 0:
        distance = (pool.trial - start).abs().sum(1)
        ended = pool.tell(torch.tensor([0]), 1.0 + distance, torch.ones(1, 4, dtype=F64), distance < 0)
        evaluations += 1
    assert evaluations == 1 + 5 and ended.tolist() == [0]
    torch.testing.assert_close(pool.x, start)


def test_a_failed_line_search_with_curvature_pairs_drops_them_and_tries_the_gradient_once_more():
    """As L-BFGS-B: a row that holds pairs and finds no decrease in max_ls tries forgets them and searches along
    the projected gradient; only a second failure, with no pairs, ends it (at its last accepted point)."""
    pool = ProjectedLBFGS(1, 4, Limits(max_iter=100, max_ls=3), 0.0, 1.0, F64)
    row, ones = torch.tensor([0]), torch.ones(1, 4, dtype=F64)
    pool.start(row, torch.full((1, 4), 0.9, dtype=F64))  # its first step, of length 1 along -g, stays inside
    assert len(pool.tell(row, torch.tensor([10.0]), ones, ones[:, 0] > 0)) == 0  # the start
    assert len(pool.tell(row, torch.tensor([9.0]), 0.5 * ones, ones[:, 0] > 0)) == 0  # a step taken: one pair held
    assert pool.held.any() and pool.iterations.item() == 1
    accepted = pool.x.clone()
    rejections, ended = 0, torch.tensor([], dtype=torch.long)
    while len(ended) == 0:  # f rises wherever it looks from now on
        ended = pool.tell(row, torch.tensor([100.0]), 0.5 * ones, ones[:, 0] < 0)
        rejections += 1
    assert rejections == 2 * 3 and not pool.held.any()
    torch.testing.assert_close(pool.x, accepted)


def test_it_stops_at_pgtol_when_factr_is_off_and_when_f_stops_falling():
    """factr = 0: only a projected gradient within pgtol stops it before max_iter; pgtol = 0: a function that
    falls by less than factr x eps relative to f stops it after its first step."""
    (f_and_g, x0), *_ = _problems(1)
    (x, iterations), *_ = _solve_all([(f_and_g, x0)], width=1, limits=Limits(max_iter=500, factr=0.0, pgtol=1e-6))
    g = f_and_g(x)[1]
    assert iterations < 500 and np.abs(np.clip(x - g, 0.0, 1.0) - x).max() <= 1e-6
    nearly_flat = lambda x: (1.0 + 1e-10 * x.sum(), np.full_like(x, 1e-10))  # noqa: E731
    (_, iterations), *_ = _solve_all([(nearly_flat, x0)], width=1, limits=Limits(max_iter=500, pgtol=0.0))
    assert iterations == 1  # its first step lowered f by about 6e-10, under factr x eps = 2.2e-9
