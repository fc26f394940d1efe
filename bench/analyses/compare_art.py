"""`bench compare-art`: our parts beside ART's stock parts, on the same model, images and seed (issue 5).

Three comparisons, each a table:
- our O:SOFTMAX:CE estimator against ART's plain ``PyTorchClassifier`` with ``CrossEntropyLoss`` on the same
  network: predictions, input gradients (ART's mean reduction is ours / batch size) and attack results;
- our ``cw_l2`` and ``cw_l2_codeword`` against ART's ``CarliniL2Method``: success, L2, seconds, passes;
- ART's NumPy and PyTorch paths of PGD on our estimator.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from art.estimators.classification import PyTorchClassifier
from tabulate import tabulate
from torch import nn

from bench.attacks import ATTACKS
from bench.matrix.passes import count_passes
from models.estimator import BenchClassifier


def stock_classifier(ours: BenchClassifier) -> PyTorchClassifier:
    """ART's plain classifier on a copy of the same network, with the loss a user would hand it."""
    network = copy.deepcopy(ours.network).eval()
    return PyTorchClassifier(
        model=network,
        loss=nn.CrossEntropyLoss(),
        input_shape=ours.input_shape,
        nb_classes=ours.nb_classes,
        clip_values=(0.0, 1.0),
        channels_first=True,
    )


@dataclass
class Outcome:
    """What one attack did: success (untargeted: the label changed), mean L2 of the successes, cost."""

    name: str
    success: float
    l2: float | None
    seconds: float
    forward: int
    backward: int
    x_adv: np.ndarray


def run_attack(name: str, make: Callable[[], object], est, x: np.ndarray, y: np.ndarray, seed: int) -> Outcome:
    np.random.seed(seed)  # ART's random starts come from NumPy's global generator
    torch.manual_seed(seed)
    attack = make()
    network = est.network if isinstance(est, BenchClassifier) else est.model
    start = time.perf_counter()
    with count_passes(network) as passes:
        x_adv = attack.generate(x, y=F.one_hot(torch.from_numpy(y), est.nb_classes).float().numpy())
    seconds = time.perf_counter() - start
    worked = est.predict(x_adv).argmax(1) != y
    l2 = np.linalg.norm((x_adv - x).reshape(len(x), -1), axis=1)[worked]
    return Outcome(
        name,
        float(worked.mean()),
        float(l2.mean()) if worked.any() else None,
        seconds,
        passes.forward,
        passes.backward,
        x_adv,
    )


def estimator_rows(ours: BenchClassifier, stock: PyTorchClassifier, x: np.ndarray, y: np.ndarray) -> list[list]:
    one_hot = F.one_hot(torch.from_numpy(y), ours.nb_classes).float().numpy()
    p_ours, p_stock = ours.predict(x), stock.predict(x)
    g_ours, g_stock = ours.loss_gradient(x, one_hot), stock.loss_gradient(x, one_hot) * len(x)
    scale = float(np.abs(g_ours).max()) or 1.0
    return [
        ["largest absolute score difference", f"{np.abs(p_ours - p_stock).max():.2e}"],
        ["same decision", f"{(p_ours.argmax(1) == p_stock.argmax(1)).mean():.3f}"],
        [
            "gradient difference, largest absolute, relative (ART's times batch size)",
            f"{np.abs(g_ours - g_stock).max() / scale:.2e}",
        ],
        ["same gradient sign", f"{(np.sign(g_ours) == np.sign(g_stock)).mean():.4f}"],
    ]


def attack_pair_rows(ours, stock, x, y, seed: int) -> list[list]:
    rows = []
    for family, params in (("fgsm", {"eps": 0.1}), ("pgd", {"eps": 0.1, "eps_step": 0.01, "max_iter": 40})):
        f = ATTACKS.get(family)
        a = run_attack(family, lambda f=f, p=params: f.make(ours, p, False, 128), ours, x, y, seed)
        b = run_attack(family, lambda f=f, p=params: f.make(stock, p, False, 128), stock, x, y, seed)
        same = float(np.abs(a.x_adv - b.x_adv).max())
        rows.append([f"{family} {params}", f"{a.success:.3f}", f"{b.success:.3f}", f"{same:.2e}"])
    return rows


def outcome_row(o: Outcome) -> list:
    return [
        o.name,
        f"{o.success:.3f}",
        "—" if o.l2 is None else f"{o.l2:.3f}",
        f"{o.seconds:.1f}",
        o.forward,
        o.backward,
    ]


def cw_outcomes(ours: BenchClassifier, x, y, seed: int, params: dict) -> list[Outcome]:
    out = []
    for family in ("cw_l2", "cw_l2_codeword", "cw_l2_art"):
        f = ATTACKS.get(family)
        out.append(run_attack(family, lambda f=f: f.make(ours, dict(params), False, 128), ours, x, y, seed))
    return out


def pgd_path_outcomes(ours: BenchClassifier, x, y, seed: int) -> list[Outcome]:
    from art.attacks.evasion import ProjectedGradientDescentNumpy, ProjectedGradientDescentPyTorch

    kwargs = dict(norm=math.inf, eps=0.1, eps_step=0.01, max_iter=40, num_random_init=1, batch_size=128, verbose=False)
    return [
        run_attack("PGD, ART NumPy path", lambda: ProjectedGradientDescentNumpy(ours, **kwargs), ours, x, y, seed),
        run_attack("PGD, ART PyTorch path", lambda: ProjectedGradientDescentPyTorch(ours, **kwargs), ours, x, y, seed),
    ]


def compare_report(
    ours: BenchClassifier, x: np.ndarray, y: np.ndarray, seed: int, cw_n: int, cw_params: dict, title: str
) -> str:
    """The three comparisons as markdown; CW runs on the first ``cw_n`` images (ART's is about 20x slower)."""
    stock = stock_classifier(ours)
    cw = cw_outcomes(ours, x[:cw_n], y[:cw_n], seed, cw_params) if cw_n else []
    headers = ["attack", "success", "mean L2 of successes", "seconds", "forward passes", "backward passes"]
    parts = [
        title,
        "",
        "## Our estimator against ART's `PyTorchClassifier` + `CrossEntropyLoss` (same network)",
        "",
        tabulate(estimator_rows(ours, stock, x, y), headers=["check", "value"], tablefmt="github"),
        "",
        tabulate(
            attack_pair_rows(ours, stock, x, y, seed),
            headers=["attack (untargeted)", "success, ours", "success, ART stock", "largest absolute x_adv difference"],
            tablefmt="github",
        ),
        "",
        "## CW-L2: ours, the codeword objective, and ART's `CarliniL2Method` (untargeted)",
        "",
        tabulate([outcome_row(o) for o in cw], headers=headers, tablefmt="github") if cw else "_not run_",
        "",
        "## PGD through ART's two implementations (eps 0.1, step 0.01, 40 iterations, one random start)",
        "",
        tabulate([outcome_row(o) for o in pgd_path_outcomes(ours, x, y, seed)], headers=headers, tablefmt="github"),
        "",
    ]
    return "\n".join(parts)
