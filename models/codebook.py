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


def one_hot_codebook(n_classes: int) -> torch.Tensor:
    """(n_classes, n_classes) float32 one-hot targets in tanh's range: +1 at the class, -1 elsewhere."""
    return 2 * torch.eye(n_classes) - 1
