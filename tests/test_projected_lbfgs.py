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
