"""Where an L-BFGS group's wall time goes, on one paper model: its network calls by images per call (full batches,
and the short ones at the end, when fewer searches are left than a batch holds), the time outside the network (the
solver's arithmetic and Python; with the SciPy solver, the time in SciPy's L-BFGS-B routine itself), and its passes
priced at the model's best batch, as the matrix prices them. The floor it prints is what the group would take with
no short calls, no Python and the network at its best batch: the passes and the routine's time, and no batching
removes the routine's time, which is spent one image at a time. Models come from BENCH_HOME (trained there when
missing).

Run: OMP_NUM_THREADS=2 python scripts/lbfgs_time.py --model O:SOFTMAX:CE --n-samples 100 --solver scipy
"""

import argparse
import collections
import tempfile
import time
from pathlib import Path

from scipy.optimize import _lbfgsb

import attacks_ext.lbfgs as lbfgs
from attacks_ext.lbfgs import SOLVERS
from bench.matrix.groups import craft_groups
from bench.matrix.plan import MatrixOptions, make_plan
from bench.matrix.workbench import Workbench

CALLS: collections.Counter = collections.Counter()  # images per call -> network calls
SECONDS: collections.defaultdict = collections.defaultdict(float)  # images per call -> seconds in those calls
SPANS = ((1, 8), (8, 32), (32, 64), (64, 128), (128, 129))
ROUTINE = [0, 0.0]  # calls of SciPy's L-BFGS-B routine (setulb) and seconds in them


def _time_network_calls() -> None:
    """Times each evaluation of the objective (one forward and backward pass of its images)."""
    objective = lbfgs.LBFGSAttack._objective

    def timed(self, x, targets, images, points, const):
        start = time.perf_counter()
        result = objective(self, x, targets, images, points, const)
        SECONDS[len(images)] += time.perf_counter() - start
        CALLS[len(images)] += 1
        return result

    lbfgs.LBFGSAttack._objective = timed


def _time_routine() -> None:
    """Times SciPy's L-BFGS-B routine, which attacks_ext._lbfgsb looks up on its module at each call."""
    setulb = _lbfgsb.setulb

    def timed(*args):
        start = time.perf_counter()
        setulb(*args)
        ROUTINE[0] += 1
        ROUTINE[1] += time.perf_counter() - start

    _lbfgsb.setulb = timed


def _preset(solver: str, folder: Path) -> str:
    """The paper preset with L-BFGS's solver set, as a user would set it: a file that inherits it."""
    path = folder / "lbfgs_solver.toml"
    path.write_text(f'inherit = "paper"\nname = "paper_lbfgs_{solver}"\n\n[params.lbfgs]\nsolver = "{solver}"\n')
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="O:SOFTMAX:CE", help="a paper preset model label")
    parser.add_argument("--n-samples", type=int, default=100, help="images per cell (4 cells: c = 0.01 to 10)")
    parser.add_argument("--solver", choices=SOLVERS, default=SOLVERS[0])
    args = parser.parse_args()
    _time_network_calls()
    _time_routine()
    with tempfile.TemporaryDirectory() as out:
        options = MatrixOptions(
            dataset="mnist",
            preset=_preset(args.solver, Path(out)),
            models=(args.model,),
            attacks=("lbfgs",),
            n_samples={"lbfgs": args.n_samples},
            progress=False,
        )
        plan = make_plan(options)
        workbench = Workbench(options, plan.specs, Path(out))
        (group,) = craft_groups(plan.cells)
        inputs = workbench.group_inputs(group)
        prices = inputs.prices(group.craft_model)
        crafted = inputs.crafter.craft_group(
            group.crafts, inputs.estimators[group.craft_model], inputs.samples, clock=prices.now
        ).values()
    wall = sum(c.seconds for c in crafted)  # as the matrix records it: the price timings around the craft left out
    network, best = sum(SECONDS.values()), sum(c.price.seconds(c.passes) for c in crafted)
    print(
        f"{group.describe()}, solver {args.solver}: wall {wall:.1f} s, passes at the best batch {best:.1f} s "
        f"({wall / best:.2f}x); in network calls {network:.1f} s, outside them {wall - network:.1f} s"
    )
    if ROUTINE[0]:
        print(
            f"  of that outside, in SciPy's L-BFGS-B routine {ROUTINE[1]:.1f} s ({ROUTINE[0]:,} calls); floor: the "
            f"passes at the best batch and the routine, {best + ROUTINE[1]:.1f} s ({(best + ROUTINE[1]) / best:.2f}x)"
        )
    for low, high in SPANS:
        sizes = [b for b in CALLS if low <= b < high]
        images = sum(b * CALLS[b] for b in sizes)
        print(
            f"  {low}-{high - 1} images per call: {sum(CALLS[b] for b in sizes)} calls, {images} images, "
            f"{sum(SECONDS[b] for b in sizes):.1f} s"
        )


if __name__ == "__main__":
    main()
