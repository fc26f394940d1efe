"""Box-constrained L-BFGS for many problems at once, in torch: one row of every tensor per problem, so that the
optimiser's arithmetic for a whole batch is a handful of tensor operations between two network calls.

SciPy's L-BFGS-B (``attacks_ext._lbfgsb``) steps one problem per call of its C routine: about 80 us per image and
evaluation here, beside a network that takes about 500 us per image forward and backward, so on this CPU it is 13%
of the L-BFGS attack's time, and on a GPU, where the network is far faster and SciPy is not, most of it. This solver
is the two-metric projection method (Bertsekas 1982) with an L-BFGS metric: the variables held at a bound by their
gradient do not move; the others move along the L-BFGS direction (the two-loop recursion, ``m`` curvature pairs, as
Nocedal and Wright's Algorithm 7.4), projected back into the box, with a backtracking line search that asks for
Armijo's sufficient decrease along that projected path. It stops as ``fmin_l_bfgs_b`` does: the projected gradient
below ``pgtol``, a relative decrease below ``factr`` times machine epsilon, ``max_iter`` iterations, or a line search
that finds no decrease in ``max_ls`` tries along the projected gradient (one that fails along the L-BFGS direction
drops the curvature pairs and tries that, as L-BFGS-B does). Its iterates are not SciPy's (L-BFGS-B finds a Cauchy
point and minimises on a subspace instead); each problem's are independent of the others in its batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

ARMIJO = 1e-4  # the sufficient decrease asked of a step, as SciPy's line search (ftol=1e-3) or the textbooks' 1e-4
EPS = torch.finfo(torch.float64).eps


@dataclass(frozen=True)
class Limits:
    """Stopping rules, with ``fmin_l_bfgs_b``'s defaults."""

    max_iter: int
    m: int = 10
    factr: float = 1e7
    pgtol: float = 1e-5
    max_ls: int = 20


class ProjectedLBFGS:
    """``width`` rows, each solving min f over [lower, upper]^n from its own start. ``start`` puts problems in free
    rows; ``trial`` holds the point each busy row needs evaluated; ``tell`` takes f and its gradient there (and a
    ``note`` on the point, kept with it if the point is taken) and returns the rows whose problems ended, whose
    answers are ``x`` (with ``f``, ``g`` and ``note`` at it).

    Every step works on all rows at once with masks rather than on the rows it concerns: gathering a subset of rows
    copies their curvature pairs, which cost more than computing on the rows that do not need it."""

    def __init__(self, width, n, limits: Limits, lower: float, upper: float, dtype=torch.float64, device=None) -> None:
        vectors = dict(dtype=dtype, device=device)
        self.limits, self.bounds, self.eps = limits, (lower, upper), torch.finfo(dtype).eps
        self.x, self.g, self.d, self.trial = (torch.zeros(width, n, **vectors) for _ in range(4))
        # each row's last m curvature pairs, in a ring: head is the slot written next (the oldest once it is full)
        self.S, self.Y = (torch.zeros(width, limits.m, n, **vectors) for _ in range(2))
        self.held = torch.zeros(width, limits.m, dtype=torch.bool, device=device)
        pairwise = dict(dtype=torch.float64, device=device)  # s_i.y_j and y_i.y_j (summed in the vectors' dtype)
        self.SY, self.YY = (torch.zeros(width, limits.m, limits.m, **pairwise) for _ in range(2))
        self.head = torch.zeros(width, dtype=torch.long, device=device)
        self.gamma, self.step = torch.ones(width, dtype=torch.float64, device=device), torch.ones(width, **vectors)
        self.f = torch.zeros(width, dtype=torch.float64, device=device)
        self.iterations, self.tries = (torch.zeros(width, dtype=torch.long, device=device) for _ in range(2))
        self.busy, self.started, self.note = (torch.zeros(width, dtype=torch.bool, device=device) for _ in range(3))

    def free_rows(self) -> torch.Tensor:
        return (~self.busy).nonzero().flatten()

    def busy_rows(self) -> torch.Tensor:
        return self.busy.nonzero().flatten()

    def start(self, rows: torch.Tensor, x0: torch.Tensor) -> None:
        """Starts a problem in each of ``rows`` (free) from ``x0`` (one row each), clipped into the box."""
        self.trial[rows] = x0.to(self.trial).clamp(*self.bounds)
        self.held[rows], self.head[rows], self.gamma[rows] = False, 0, 1.0
        self.iterations[rows], self.tries[rows] = 0, 0
        self.busy[rows], self.started[rows] = True, False

    def tell(self, rows: torch.Tensor, f: torch.Tensor, g: torch.Tensor, note: torch.Tensor) -> torch.Tensor:
        """f, its gradient and a note (bool) at the trial points of ``rows`` (all the busy rows); returns the rows
        that ended (freed, their answers in ``x``)."""
        f_all, g_all, note_all = self.f.clone(), self.g.clone(), self.note.clone()
        f_all[rows], g_all[rows], note_all[rows] = f.to(self.f), g.to(self.g), note
        first = self.busy & ~self.started
        s = self.trial - self.x
        decrease = torch.linalg.vecdot(self.g, s).double()
        # clipping can turn a descent direction uphill: such a step is taken only if f does not rise
        accepted = self.busy & (first | (f_all <= self.f + ARMIJO * decrease.clamp(max=0)))
        self.note = torch.where(accepted, note_all, self.note)
        stopped, onwards = self._accept(accepted, first, f_all, g_all, s)
        out_of_tries, shorter = self._backtrack(self.busy & ~accepted, f_all, decrease)
        stepped = (self.x + self.step[:, None] * self.d).clamp(*self.bounds)  # along d, projected into the box
        self.trial = torch.where((onwards | shorter)[:, None], stepped, self.trial)
        done = stopped | out_of_tries
        self.busy &= ~done
        return done.nonzero().flatten()

    def _accept(self, accepted, first, f, g, s) -> tuple[torch.Tensor, torch.Tensor]:
        """Moves the ``accepted`` rows to their trial points (``s`` away); returns the masks of those that stop there
        and of those that go on, whose directions and first steps it sets."""
        moved = accepted & ~first
        self._remember(moved, s, g - self.g)
        previous = self.f
        self.x = torch.where(accepted[:, None], self.trial, self.x)
        self.f, self.g = torch.where(accepted, f, self.f), torch.where(accepted[:, None], g, self.g)
        self.iterations += moved.long()
        self.started |= accepted
        projected = self._projected_gradient()
        flat = projected.abs().amax(1) <= self.limits.pgtol
        scale = previous.abs().maximum(self.f.abs()).clamp_min(1)
        stalled = moved & (previous - self.f <= self.limits.factr * EPS * scale)
        stop = accepted & (flat | stalled | (self.iterations >= self.limits.max_iter))
        going = accepted & ~stop
        if going.any():
            self.d = torch.where(going[:, None], self._direction(projected != 0), self.d)
            fresh = ~self.held.any(1)  # no curvature yet: a step of length 1 (L-BFGS-B's first, off a box)
            self.step = torch.where(going, torch.where(fresh, self._unit_step(self.d), 1.0), self.step)
            self.tries = torch.where(going, 0, self.tries)
        return stop, going

    def _remember(self, moved, s, y) -> None:
        """Adds each moved row's curvature pair (s, y) in place of its oldest; a pair with s.y <= eps y.y is skipped,
        so that the metric stays positive definite (L-BFGS-B's test is s.y <= eps (-g.s))."""
        sy, yy = torch.linalg.vecdot(s, y), torch.linalg.vecdot(y, y)
        rows = (moved & (sy > self.eps * yy)).nonzero().flatten()
        slots = self.head[rows]
        self.S[rows, slots], self.Y[rows, slots], self.held[rows, slots] = s[rows], y[rows], True
        # the new pair's products with every pair held (on all rows: cheaper than gathering the rows' pairs)
        s_with_y, y_with_s, y_with_y = (_dots(memory, v)[rows] for memory, v in ((self.Y, s), (self.S, y), (self.Y, y)))
        self.SY[rows, slots], self.SY[rows, :, slots] = s_with_y, y_with_s
        self.YY[rows, slots], self.YY[rows, :, slots] = y_with_y, y_with_y
        self.head[rows] = (slots + 1) % self.limits.m
        self.gamma[rows] = (sy[rows] / yy[rows]).double()

    def _direction(self, free: torch.Tensor) -> torch.Tensor:
        """Every row's L-BFGS direction in its free variables; the variables that the gradient holds at a bound stay
        put. The inverse Hessian in its compact form (Byrd, Nocedal and Schnabel 1994, eq. 2.17): the same product as
        the two-loop recursion, in four passes over the pairs as they lie in their ring (the two-loop makes 2m
        passes of one pair each, which costs more in launches than in arithmetic)."""
        q = self.g * free
        order = (self.head[:, None] + torch.arange(self.limits.m, device=q.device)) % self.limits.m  # oldest first
        held = self.held.gather(1, order)
        s_q, y_q = (_dots(memory, q).gather(1, order) for memory in (self.S, self.Y))
        on_s, on_y = _compact_coefficients(
            _in_order(self.SY, order), _in_order(self.YY, order), s_q, y_q, self.gamma, held
        )
        physical = torch.zeros_like(on_s)
        on_s, on_y = (physical.scatter(1, order, c).to(q)[:, None] for c in (on_s, on_y))
        step = self.gamma[:, None].to(q) * q + torch.bmm(on_s, self.S).squeeze(1) + torch.bmm(on_y, self.Y).squeeze(1)
        return -step * free

    def _backtrack(self, rejected, f, decrease) -> tuple[torch.Tensor, torch.Tensor]:
        """Shortens the steps of the ``rejected`` rows, whose trials did not decrease f enough; returns the masks of
        those that end (out of tries with no curvature pairs) and of those with a new trial to make."""
        self.tries += rejected.long()
        exhausted = rejected & (self.tries >= self.limits.max_ls)
        shorter = rejected & ~exhausted
        # the minimum of the parabola through f(x), its slope and f(trial), kept within [0.1, 0.5] of the step
        curvature = f - self.f - decrease
        shrink = torch.where(curvature > 0, -decrease / (2 * curvature).clamp_min(EPS), 0.5).clamp(0.1, 0.5)
        self.step = torch.where(shorter, self.step * shrink.to(self.step), self.step)
        restart = exhausted & self.held.any(1)
        if restart.any():
            self._forget(restart)
        return exhausted & ~restart, shorter | restart

    def _forget(self, rows) -> None:
        """As L-BFGS-B after a failed line search while it holds pairs: drops the pairs of the rows of the mask and
        tries again along the projected gradient, with a step of length 1."""
        self.held &= ~rows[:, None]
        self.gamma = torch.where(rows, 1.0, self.gamma)
        steepest = -self.g * (self._projected_gradient() != 0)
        self.d = torch.where(rows[:, None], steepest, self.d)
        self.step = torch.where(rows, self._unit_step(steepest), self.step)
        self.tries = torch.where(rows, 0, self.tries)

    def _projected_gradient(self) -> torch.Tensor:
        """P(x - g) - x: 0 where a bound holds a variable (or its gradient is 0), -g elsewhere."""
        return (self.x - self.g).clamp(*self.bounds) - self.x

    def _unit_step(self, d: torch.Tensor) -> torch.Tensor:
        """The step that moves each row by length 1 along its d."""
        return 1.0 / torch.linalg.vector_norm(d, dim=1).clamp_min(self.eps)


def _in_order(pairwise: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """A (rows, m, m) matrix over ring slots, its rows and columns put in each row's ``order``."""
    m = order.shape[1]
    rows_first = pairwise.gather(1, order[:, :, None].expand(-1, m, m))
    return rows_first.gather(2, order[:, None, :].expand(-1, m, m))


def _compact_coefficients(sy, yy, s_q, y_q, gamma, held):
    """H q - gamma q = S u + Y v for the compact inverse Hessian; returns (u, v), oldest pair first, from s_i.y_j,
    y_i.y_j, S^T q and Y^T q in that order (the products summed in the vectors' dtype, these m x m systems solved in
    float64, where rounding would grow). Slots not held get 0."""
    both = held[:, :, None] & held[:, None, :]
    sy, yy, s_q, y_q = sy * both, yy * both, (s_q * held)[..., None], (y_q * held)[..., None]
    R = sy.triu() + torch.diag_embed((~held).to(sy))  # an empty slot's row is the identity's, so R stays invertible
    p = torch.linalg.solve_triangular(R, s_q, upper=True)
    gamma = gamma[:, None, None].double()
    D = torch.diag_embed(sy.diagonal(dim1=1, dim2=2))
    u = torch.linalg.solve_triangular(R.transpose(1, 2), (D + gamma * yy) @ p - gamma * y_q, upper=False)
    return (u * held[..., None]).squeeze(-1), (-gamma * p * held[..., None]).squeeze(-1)


def _dots(memory: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Each row's m vectors (held or not) dotted with its v, as float64 (a batched matrix product: here about twice
    as fast as ``vecdot``)."""
    return torch.bmm(v[:, None], memory.transpose(1, 2)).squeeze(1).double()
