"""attacks_ext._batched_solves and attacks_ext._lbfgsb: generator solves whose questions are answered in batches,
failures that stop the run, and SciPy's L-BFGS-B stepped from outside with fmin_l_bfgs_b's iterates."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import fmin_l_bfgs_b

from attacks_ext._batched_solves import run_batched
from attacks_ext._lbfgsb import lbfgsb_steps


def squares(items):
    return [item * item for item in items]


def asker(n, answers):
    """Solve n asks n + 1 questions and keeps the answers it is sent."""
    answers[n] = []
    for k in range(n + 1):
        answers[n].append((yield n + 10 * k))


def test_every_solve_gets_its_own_answers_and_batches_hold_every_running_solve():
    answers = {}
    sizes = run_batched((asker(n, answers) for n in range(6)), squares, width=3)
    assert answers == {n: [(n + 10 * k) ** 2 for k in range(n + 1)] for n in range(6)}
    assert sum(sizes) == sum(n + 1 for n in range(6))
    assert sizes[0] == 3 and max(sizes) == 3
    # a solve that ends makes room for the next: the batch stays full while 3 or more solves are left
    assert sizes[:4] == [3, 3, 3, 3]


def counted(n, length, answers):
    """Solve n asks ``length`` questions, each (n, how many it has left), and keeps the answers."""
    answers[n] = []
    for left in range(length, 0, -1):
        answers[n].append((yield (n, left)))


def test_a_rank_answers_the_solves_with_most_work_left_first_so_the_long_one_does_not_run_alone_at_the_end():
    lengths = [1, 1, 1, 1, 6]
    first_started, ranked = {}, {}
    fifo = run_batched((counted(n, k, first_started) for n, k in enumerate(lengths)), squares_of_left, width=2)
    by_left = run_batched(
        (counted(n, k, ranked) for n, k in enumerate(lengths)),
        squares_of_left,
        width=2,
        rank=lambda items: [left for _, left in items],
    )
    assert fifo == [2, 2, 1, 1, 1, 1, 1, 1]  # the long solve starts last and runs alone for five calls
    assert by_left == [2, 2, 2, 2, 1, 1]  # it starts first, and the short ones keep it company
    assert ranked == first_started == {n: [left * left for left in range(k, 0, -1)] for n, k in enumerate(lengths)}


def squares_of_left(items):
    return [left * left for _, left in items]


def test_a_solve_that_asks_nothing_takes_no_place():
    def silent():
        return
        yield

    answers = {}
    sizes = run_batched([silent(), asker(2, answers), silent()], squares, width=2)
    assert answers == {2: [4, 144, 484]} and sizes == [1, 1, 1]


def test_a_failing_evaluation_is_raised_and_the_running_solves_are_closed():
    closed = []

    def endless(n):
        try:
            while True:
                yield n
        finally:
            closed.append(n)

    def evaluate(items):
        if 7 in items:
            raise RuntimeError("network failed on 7")
        return items

    with pytest.raises(RuntimeError, match="network failed on 7"):
        run_batched((endless(n) for n in range(10)), evaluate, width=8)
    assert sorted(closed) == list(range(8))  # the eight running ones; the last two never started


def test_a_failing_solve_is_raised():
    def bad():
        yield -1
        raise ValueError("solve -1 broke")

    answers = {}
    with pytest.raises(ValueError, match="solve -1 broke"):
        run_batched([bad(), asker(3, answers)], squares, width=2)


def _problem(n=300, seed=0):
    """A smooth non-convex f on R^n with its gradient, whose box-constrained minimum has pixels on both bounds."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(n, n)) / np.sqrt(n), rng.normal(size=n)

    def f_and_g(x):
        h = np.tanh(a @ x)
        r = h - b
        return float(r @ r + 0.1 * np.sum(x**4)), 2 * a.T @ (r * (1 - h**2)) + 0.4 * x**3

    return f_and_g, rng.uniform(size=n)


def _stepped(f_and_g, x0, maxiter):
    steps = lbfgsb_steps(x0, 0.0, 1.0, maxiter)
    try:
        point = next(steps)
        while True:
            point = steps.send(f_and_g(point))
    except StopIteration as done:
        return done.value


@pytest.mark.parametrize("maxiter", [1, 5, 1000])
def test_stepped_lbfgsb_takes_exactly_fmin_l_bfgs_b_iterates(maxiter):
    """Stopped by maxiter (1, 5) or by convergence (1000): the same point to the last bit, the same iterations
    and evaluations. Fails if SciPy's private setulb changes its calling convention or defaults."""
    f_and_g, x0 = _problem()
    expected, _, info = fmin_l_bfgs_b(f_and_g, x0, bounds=np.tile([0.0, 1.0], (len(x0), 1)), maxiter=maxiter)
    x, mine = _stepped(f_and_g, x0, maxiter)
    np.testing.assert_array_equal(x, expected)
    assert (mine["nit"], mine["nfev"]) == (info["nit"], info["funcalls"])
    assert mine["converged"] == info["task"].startswith("CONVERGENCE")
    assert mine["converged"] == (maxiter == 1000)
    assert ((x == 0.0) | (x == 1.0)).any() and not np.array_equal(x, x0)
