"""The secret codebook of the codeword kinds (R:*): one codeword per class, drawn once from U(-1, 1)^d by a key;
and the fixed targets of O:TANH:MSE, the one-hot rows written in tanh's range (``one_hot_codebook``).

The key is turned into a seed with SHA-256 and the codewords are drawn with NumPy's PCG64,
so the same key gives the same codebook on every machine. The key itself is never logged or
stored: the model store records only whether the public default key was used and a
fingerprint of the codebook (which the checkpoint holds anyway, since predictions need it).
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import torch

KEY_ENV = "BENCH_CODEBOOK_KEY"
DEFAULT_KEY = "bench-public-default-codebook-key"


def resolve_key(key: str | None = None) -> tuple[str, bool]:
    """The key to use (flag, then environment, then the public default) and whether it is the default."""
    chosen = key or os.environ.get(KEY_ENV) or DEFAULT_KEY
    return chosen, chosen == DEFAULT_KEY


def make_codebook(key: str, n_classes: int, length: int) -> torch.Tensor:
    """(n_classes, length) float32 codewords drawn from U(-1, 1)."""
    seed = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "little")
    rng = np.random.Generator(np.random.PCG64(seed))
    return torch.from_numpy(rng.uniform(-1.0, 1.0, size=(n_classes, length)).astype(np.float32))


def fingerprint(codebook: torch.Tensor) -> str:
    """A short identifier of a codebook's contents, safe to show (it says nothing the checkpoint does not)."""
    return hashlib.sha256(codebook.numpy().tobytes()).hexdigest()[:16]


# O:TANH:MSE's targets are +a at the class and -a elsewhere with a = 1/sqrt(3), the root mean square of a codeword's
# U(-1, 1) entries: the one-hot rows on the codewords' scale. At a = 1 (tanh's asymptotes) MSE pushes every output
# outward without end, and Adam's first steps drive all ten (nine targets are -1) into saturation, where tanh's
# gradient is exactly 0 in float32: the network stays at chance (measured on MNIST: a = 1 and a = 0.9 collapse,
# a = 0.75 and below learn, in the tiny recipe's 48 steps; docs/model-kinds.md).
ONE_HOT_SCALE = 3**-0.5


def one_hot_codebook(n_classes: int) -> torch.Tensor:
    """(n_classes, n_classes) float32 one-hot targets in tanh's range: +ONE_HOT_SCALE at the class, minus elsewhere."""
    return ONE_HOT_SCALE * (2 * torch.eye(n_classes) - 1)
