"""How much this machine's throughput drifts within one process: the best batch of vu2018's Table I CNN (untrained;
only the time counts) found six times over, then 40 single timings at batch 128. Why bench.matrix.passes.Prices
times the best batch again around each craft. Run: OMP_NUM_THREADS=2 python scripts/throughput_drift.py"""

import torch

from bench.matrix.passes import Prices, measure_throughput
from models.architectures import TableICNN

torch.manual_seed(0)
network, images = TableICNN(1, 28), torch.rand(512, 1, 28, 28)
bests = [Prices(network, images).best() for _ in range(6)]
print("best batch, images/s:", [(b.batch_size, round(1 / b.per_image)) for b in bests])
rates = sorted(1 / measure_throughput(network, images[:128], rounds=1).per_image for _ in range(40))
print(f"batch 128, one round each, images/s: min {rates[0]:.0f} median {rates[20]:.0f} max {rates[-1]:.0f}")
