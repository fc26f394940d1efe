"""Where a craft's wall time goes, from a py-spy sampling profile: the share of the samples inside
``Crafter.craft_group`` that fall in the network (forward and backward), in an L-BFGS solver's steps (SciPy's
L-BFGS-B, or the batched solver's ``tell``), and elsewhere.

A sampling profiler, unlike cProfile, does not slow every Python call, so the attack's own Python keeps its weight.
Record with py-spy (not a dependency of bench: ``pip install py-spy``), raw format, then read the file here:

    OMP_NUM_THREADS=2 BENCH_HOME=<home> py-spy record -r 250 -f raw -o lbfgs.txt -- \\
        python scripts/pool_fill.py --model O:SOFTMAX:CE --attack lbfgs --n-samples 40
    python scripts/stack_shares.py lbfgs.txt
"""

import argparse
from collections import Counter

# A sample belongs to the first part (in this order) whose frame it has; what has none of them is "the attack's own".
PARTS = {
    "network backward": ("_engine_run_backward",),
    "network forward": ("Module._call_impl",),  # every call of a torch module: the network and its parts
    "SciPy L-BFGS-B steps": ("lbfgsb_steps",),
    "batched L-BFGS steps": ("ProjectedLBFGS.tell", "ProjectedLBFGS.start"),
}


def shares(lines, root: str = "Crafter.craft_group") -> tuple[int, Counter]:
    """(samples under ``root``, samples per part) of py-spy raw lines: 'frame;frame;... count'."""
    total, parts = 0, Counter()
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        frames = [frame.split(" (")[0] for frame in stack.split(";")]
        if root not in frames:
            continue
        total += int(count)
        part = next((p for p, names in PARTS.items() if any(f in names for f in frames)), "the attack's own")
        parts[part] += int(count)
    return total, parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile", help="py-spy raw output (record -f raw)")
    args = parser.parse_args()
    with open(args.profile) as lines:
        total, parts = shares(lines)
    if not total:
        raise SystemExit(f"{args.profile}: no samples in Crafter.craft_group; expected py-spy raw output of a craft.")
    print(f"{total} samples inside Crafter.craft_group")
    for part, count in parts.most_common():
        print(f"  {count / total:6.1%}  {part}")


if __name__ == "__main__":
    main()
