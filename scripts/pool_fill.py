"""How full an attack keeps its batches: each craft group of one attack on one model crafted afresh (nothing read
from a cache), with its wall time, its network calls, the images per call, and its passes priced at the model's best
batch and at the mean batch it ran. wall / best splits into (at mean / best: what small batches cost) x (wall / at
mean: the attack's own time beside the network). Models come from BENCH_HOME (trained there when missing).

Run: OMP_NUM_THREADS=2 python scripts/pool_fill.py --model O:SOFTMAX:CE --attack cw_l2_codeword --n-samples 40,80
"""

import argparse
import tempfile
from pathlib import Path

from bench.matrix.groups import craft_groups
from bench.matrix.plan import MatrixOptions, make_plan
from bench.matrix.workbench import Workbench


def measure(options: dict, n: int, out: Path) -> None:
    matrix_options = MatrixOptions(dataset="mnist", n_samples={options["attacks"][0]: n}, **options)
    plan = make_plan(matrix_options)
    workbench = Workbench(matrix_options, plan.specs, out)
    for group in craft_groups(plan.cells):
        inputs = workbench.group_inputs(group)
        estimator, prices = inputs.estimators[group.craft_model], inputs.prices(group.craft_model)
        # priced as the matrix prices them: each call's passes at the best batch timed before and after it
        crafted = inputs.crafter.craft_group(group.crafts, estimator, inputs.samples, clock=prices.now).values()
        wall = sum(c.seconds for c in crafted)
        forward, calls = sum(c.passes.forward for c in crafted), sum(c.passes.calls for c in crafted)
        best = sum(c.price.seconds(c.passes) for c in crafted)
        at_mean = prices.at(round(forward / calls))  # rescaled by each call's drift, as the best batch was timed
        at_mean_s = sum(at_mean.scaled(prices.drift(c.price)).seconds(c.passes) for c in crafted)
        runs = len(group.crafts) * n
        print(
            f"{group.describe()}\n  n={n}: {runs} image-runs, {calls} calls, {forward / calls:.1f} images per call; "
            f"wall {wall:.1f} s, at best batch {best:.1f} s ({wall / best:.2f}x), "
            f"at the mean batch {at_mean_s:.1f} s (wall / it {wall / at_mean_s:.2f}x)",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a paper preset model label, e.g. O:SOFTMAX:CE")
    parser.add_argument("--attack", required=True, help="e.g. cw_l2, cw_l2_codeword, lbfgs, pgd_margin")
    parser.add_argument("--settings", default=None, help="comma-separated threat settings (default: all)")
    parser.add_argument("--n-samples", default="", help="images per cell, comma-separated (default: the preset's)")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    options = {"models": (args.model,), "attacks": (args.attack,), "batch_size": args.batch_size, "progress": False}
    if args.settings:
        options["settings"] = tuple(args.settings.split(","))
    preset_n = make_plan(MatrixOptions(dataset="mnist", **options)).cells[0].n_samples
    for n in [int(v) for v in args.n_samples.split(",") if v] or [preset_n]:
        with tempfile.TemporaryDirectory() as out:
            measure(options, n, Path(out))


if __name__ == "__main__":
    main()
