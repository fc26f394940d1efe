"""The L-BFGS attack's two solvers on one paper model and one c: targets reached, evaluations, and how many
iterations each solve ran (where the solvers part: a solve that ends at its start, after a few steps, or runs on).
Models come from BENCH_HOME (trained there when missing).

Run: OMP_NUM_THREADS=2 python scripts/lbfgs_solvers.py --model O:SOFTMAX:MSE --c 10 --n-samples 100
"""

import argparse
import collections
import tempfile
from pathlib import Path

import numpy as np
import torch

import attacks_ext._projected_lbfgs as projected
import attacks_ext.lbfgs as lbfgs
from bench.matrix.groups import craft_groups
from bench.matrix.plan import MatrixOptions, make_plan
from bench.matrix.workbench import Workbench

ITERATIONS = collections.defaultdict(list)  # solver -> iterations of each solve it ended


def _record_iterations() -> None:
    """Wraps each solver's end of a solve to note its iterations (the attack does not report them)."""
    tell, solve = projected.ProjectedLBFGS.tell, lbfgs.LBFGSAttack._solve

    def torch_tell(self, rows, f, g, note):
        done = tell(self, rows, f, g, note)
        ITERATIONS["torch"] += self.iterations[done].tolist()
        return done

    def scipy_solve(self, n, x, const):
        solution, info = yield from solve(self, n, x, const)
        ITERATIONS["scipy"].append(info["nit"])
        return solution, info

    projected.ProjectedLBFGS.tell, lbfgs.LBFGSAttack._solve = torch_tell, scipy_solve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a paper preset model label, e.g. O:SOFTMAX:MSE")
    parser.add_argument("--c", type=float, default=10.0, help="the paper's c (the attack takes 1 / c)")
    parser.add_argument("--n-samples", type=int, default=100)
    parser.add_argument("--steps", type=int, default=5, help="binary search steps (Table 2: 5)")
    args = parser.parse_args()
    options = MatrixOptions(
        dataset="mnist", n_samples={"lbfgs": args.n_samples}, models=(args.model,), attacks=("lbfgs",), progress=False
    )
    plan = make_plan(options)
    group = next(iter(craft_groups(plan.cells)))
    inputs = Workbench(options, plan.specs, Path(tempfile.mkdtemp())).group_inputs(group)
    estimator, samples = inputs.estimators[group.craft_model], inputs.samples
    x, targets = samples.x.numpy(), samples.targets.numpy()
    _record_iterations()
    for solver in ("torch", "scipy"):
        attack = lbfgs.LBFGSAttack(
            estimator, initial_const=1.0 / args.c, binary_search_steps=args.steps, max_iter=1000, solver=solver
        )
        adversarial = attack.generate(x, targets)
        with torch.no_grad():
            reached = estimator.model(torch.from_numpy(adversarial)).argmax(1).numpy() == targets
        it = np.array(ITERATIONS[solver])
        print(
            f"{solver}: {reached.sum()} of {len(x)} targets reached, {sum(attack.batch_sizes)} evaluations; "
            f"iterations per solve ({len(it)} solves): 0: {(it == 0).sum()}, 1-5: {((it >= 1) & (it <= 5)).sum()}, "
            f"6-50: {((it > 5) & (it <= 50)).sum()}, over 50: {(it > 50).sum()}"
        )


if __name__ == "__main__":
    main()
