"""Does the network run as fast through a long attack as in the short timing that prices its passes?

Interleaved trials on vu2018's Table I CNN (untrained; only the time counts), at one batch size:
- probe: ``bench.matrix.passes.measure_throughput`` as ``Prices`` runs it (a warm-up, then the median of 3 rounds
  of a forward without and with the graph plus a backward to the input, on the same images);
- sustained: as many forward+backward calls in a row as an attack makes, each on a new point (the last one moved
  by its gradient's sign, as PGD steps), timed as a whole;
- sustained, counted: the same with ``count_passes``' hooks on, as the matrix crafts.
Prints images/s of each and the ratios, per trial and their medians.

Run: OMP_NUM_THREADS=2 python scripts/probe_vs_sustained.py [--batch 128] [--calls 200] [--trials 5]
"""

import argparse
import statistics
import time

import torch

from bench.matrix.passes import count_passes, measure_throughput
from models.architectures import TableICNN


def sustained(network, images: torch.Tensor, calls: int) -> float:
    """Images per second over ``calls`` forward+backward calls, each on the last point stepped along its gradient."""
    x = images.clone()
    start = time.perf_counter()
    for _ in range(calls):
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(network(x).sum(), x)
        x = (x + 0.01 * grad.sign()).clamp(0.0, 1.0)
    return calls * len(images) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    network, images = TableICNN(1, 28).eval().requires_grad_(False), torch.rand(args.batch, 1, 28, 28)
    ratios, counted_ratios = [], []
    for trial in range(args.trials):
        probe = 1 / measure_throughput(network, images).per_image
        plain = sustained(network, images, args.calls)
        with count_passes(network):
            counted = sustained(network, images, args.calls)
        ratios.append(probe / plain)
        counted_ratios.append(probe / counted)
        print(
            f"trial {trial}: probe {probe:.0f} images/s, sustained {plain:.0f} ({ratios[-1]:.2f}x slower), "
            f"sustained with count_passes {counted:.0f} ({counted_ratios[-1]:.2f}x)",
            flush=True,
        )
    print(
        f"median: sustained {statistics.median(ratios):.2f}x the probe's time per image, "
        f"with count_passes {statistics.median(counted_ratios):.2f}x"
    )


if __name__ == "__main__":
    main()
