"""SciPy's L-BFGS-B as a generator: the same Fortran-turned-C routine that ``scipy.optimize.fmin_l_bfgs_b`` drives,
driven here step by step, so that a caller can hold many problems at once and evaluate their points together.

``fmin_l_bfgs_b`` owns its loop and calls back for f and its gradient; the routine underneath (``setulb``) works by
reverse communication instead: it returns whenever it needs f and g at a point. ``lbfgsb_steps`` yields that point
and takes (f, g) back, with ``fmin_l_bfgs_b``'s defaults and stopping rules, so a problem follows exactly the iterates
``fmin_l_bfgs_b`` gives it (a test holds the two to equality). It replaces one thread per problem: switching
between 128 threads after every network call cost more than SciPy's own arithmetic.
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np
from scipy.optimize import _lbfgsb

# What setulb's task[0] says, in SciPy's C routine (scipy/optimize/__lbfgsb.c; SciPy >= 1.15).
_NEEDS_F_AND_G, _NEW_ITERATE, _CONVERGED, _STOP = 3, 1, 4, 5
_STOPPED_AT_MAXITER, _STOPPED_AT_MAXFUN = 504, 502

Point = np.ndarray
Evaluation = tuple[float, np.ndarray]  # f and its gradient at the point yielded


def lbfgsb_steps(
    x0: np.ndarray,
    lower: float,
    upper: float,
    maxiter: int,
    m: int = 10,
    factr: float = 1e7,
    pgtol: float = 1e-5,
    maxfun: int = 15000,
    maxls: int = 20,
) -> Generator[Point, Evaluation, tuple[np.ndarray, dict]]:
    """Minimises f over the box [lower, upper]^n from x0, yielding each point at which it needs (f, gradient) and
    returning (x, {"nit", "nfev", "converged"}). Parameters and defaults as ``scipy.optimize.fmin_l_bfgs_b``."""
    n = x0.size
    x = np.clip(np.asarray(x0, dtype=np.float64).ravel(), lower, upper)
    f, g = 0.0, np.zeros(n)
    wa = np.zeros(2 * m * n + 5 * n + 11 * m * m + 8 * m)
    iwa = np.zeros(3 * n, np.int32)
    task, ln_task, lsave = np.zeros(2, np.int32), np.zeros(2, np.int32), np.zeros(4, np.int32)
    isave, dsave = np.zeros(44, np.int32), np.zeros(29)
    bounds = np.full(n, lower), np.full(n, upper), np.full(n, 2, np.int32)  # 2: bounded on both sides
    factr = factr * np.finfo(float).eps / np.finfo(float).eps  # as fmin_l_bfgs_b rounds it through ftol
    last: tuple[np.ndarray, Evaluation] | None = None
    nit = nfev = 0
    while True:
        _lbfgsb.setulb(m, x, *bounds, f, g, factr, pgtol, wa, iwa, task, lsave, isave, dsave, maxls, ln_task)
        if task[0] == _NEEDS_F_AND_G:
            if last is None or not np.array_equal(last[0], x):  # SciPy reuses an evaluation at an unchanged point
                last = x.copy(), (yield x.copy())
                nfev += 1
            f, g = float(last[1][0]), np.asarray(last[1][1], dtype=np.float64).ravel()
        elif task[0] == _NEW_ITERATE:
            nit += 1
            if nit >= maxiter:
                task[:] = _STOP, _STOPPED_AT_MAXITER
            elif nfev > maxfun:
                task[:] = _STOP, _STOPPED_AT_MAXFUN
        else:
            return x, {"nit": nit, "nfev": nfev, "converged": bool(task[0] == _CONVERGED)}
