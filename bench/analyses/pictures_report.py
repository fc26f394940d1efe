"""`bench pictures`: saito2019 Figures 1-3 for every model, and Figure 1's smallest-eps measure.

- Figure 1: targeted PGD (Table 2: step 0.01, 40 iterations, one random start) at the smallest eps at
  which every image of the search sample reaches its target.
- Figure 2: targeted MIM at eps 0.1 (Table 2: step 0.06, 10 iterations, decay 1.0).
- Figure 3: the codeword CW-L2 of saito2019 section 3.3, targeted, c = 0.1 (for one-hot models the
  codewords are the one-hot rows).
Targets are the matrix's: one random class other than the true one per image, from the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from tabulate import tabulate

from bench.analyses.pictures import EpsSearch, adversarial_grid, smallest_eps_all_success
from bench.attacks import ATTACKS
from bench.matrix.craft import SampleSet
from models.estimator import make_estimator
from models.store import StoredModel


@dataclass
class Picture:
    figure: str  # "pgd_min_eps", "mim", "cw_l2_codeword"
    params: dict
    success: float  # share of the shown images that reached their target
    l2_mean: float  # mean L2 of the perturbations that reached their target (nan if none)
    path: str  # the PNG, relative to the report


@dataclass
class ModelPictures:
    label: str
    search: EpsSearch
    search_n: int
    pictures: list[Picture]


def slug(label: str) -> str:
    return label.lower().replace(":", "_").replace(".", "")


def picture_model(
    stored: StoredModel,
    samples: SampleSet,
    n_show: int,
    seed: int,
    cw_params: dict,
    plots_dir: Path,
    batch_size: int = 128,
) -> ModelPictures:
    label = stored.spec.loss_label
    est = make_estimator(
        stored.spec, stored.network.eval(), tuple(stored.meta["input_shape"]), stored.meta["n_classes"]
    )
    n_classes = stored.meta["n_classes"]
    x, y, targets = samples.x.numpy(), samples.y.numpy(), samples.targets.numpy()

    def attack(name: str, params: dict, xs: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        np.random.seed(seed)  # ART draws random starts from NumPy's global generator
        torch.manual_seed(seed)
        one_hot = F.one_hot(torch.from_numpy(ts), n_classes).float().numpy()
        x_adv = ATTACKS.get(name).make(est, dict(params), True, batch_size).generate(xs, y=one_hot)
        return x_adv, est.predict(x_adv).argmax(1)

    search = smallest_eps_all_success(lambda eps: attack("pgd", {"eps": eps}, x, targets), targets)
    shown = slice(0, n_show)
    runs: list[tuple[str, dict, np.ndarray, np.ndarray, str]] = []
    if search.eps is not None:
        runs.append(
            (
                "pgd_min_eps",
                {"eps": search.eps},
                search.x_adv[shown],
                search.predicted[shown],
                f"targeted PGD at eps {search.eps:g} (smallest eps with all {len(x)} images on target)",
            )
        )
    mim = {"eps": 0.1}
    runs.append(("mim", mim, *attack("mim", mim, x[shown], targets[shown]), "targeted MIM, eps 0.1"))
    runs.append(
        (
            "cw_l2_codeword",
            cw_params,
            *attack("cw_l2_codeword", cw_params, x[shown], targets[shown]),
            f"codeword CW-L2, targeted, c = {cw_params['c']:g}",
        )
    )
    pictures = [_draw(run, label, x[shown], y[shown], targets[shown], plots_dir) for run in runs]
    return ModelPictures(label, search, len(x), pictures)


def _draw(run: tuple, label: str, x: np.ndarray, y: np.ndarray, targets: np.ndarray, plots_dir: Path) -> Picture:
    """One figure of a model's adversarial examples, saved under plots_dir, with its success rate and mean L2."""
    figure, params, x_adv, predicted, what = run
    hit = predicted == targets
    l2 = np.sqrt(((x_adv - x) ** 2).reshape(len(hit), -1).sum(1))
    name = f"pictures_{figure}_{slug(label)}.png"
    fig = adversarial_grid(x, x_adv, y, predicted, f"{label}: {what}; {int(hit.sum())}/{len(hit)} on target")
    fig.savefig(plots_dir / name, dpi=110)
    plt.close(fig)
    mean_l2 = float(l2[hit].mean()) if hit.any() else float("nan")
    return Picture(figure, params, float(hit.mean()), mean_l2, f"plots/{name}")


def write_pictures_report(dataset: str, results: list[ModelPictures], n_show: int, out_dir: Path, command: str) -> Path:
    rows = []
    for r in results:
        tried = ", ".join(f"{eps:g}: {share:.0%}" for eps, share in r.search.success_at.items())
        rows.append([r.label, "none up to 1.0" if r.search.eps is None else f"{r.search.eps:g}", tried])
    eps_table = tabulate(
        rows, ["model", "smallest eps, all on target", "share on target at each eps tried"], tablefmt="github"
    )
    pic_rows = [
        [
            r.label,
            p.figure,
            ", ".join(f"{k} {v:g}" for k, v in p.params.items()),
            f"{p.success:.0%}",
            "—" if math.isnan(p.l2_mean) else f"{p.l2_mean:.2f}",
            f"![]({p.path})",
        ]
        for r in results
        for p in r.pictures
    ]
    pic_table = tabulate(
        pic_rows, ["model", "figure", "parameters", "on target (shown images)", "mean L2", "picture"], tablefmt="github"
    )
    n = results[0].search_n if results else 0
    text = f"""# {dataset}: adversarial examples (saito2019 Figures 1-3)

Generated by `{command}`; do not edit by hand. Targets: one random class other than the true one per
image, drawn from the seed (the matrix's targets). Each picture: clean image with its label (top),
perturbation (middle; red positive, blue negative, scale in the row label), adversarial image with the
class the model predicts (bottom).

## Smallest eps at which targeted PGD puts every image on its target (Figure 1's measure)

Targeted PGD with saito2019 Table 2's parameters (step 0.01, 40 iterations, one random start), {n} test
images, bisection over eps in steps of 0.01. With step 0.01 and 40 iterations PGD moves a pixel at most
0.4 from its random start, so eps above about 0.4 add only the random start's reach. saito2019 reports
this measure for CIFAR-10 DenseNets only (0.03 for O:SOFTMAX:CE, 0.35 for R:TANH:MSE); no MNIST value is
published.

{eps_table}

## Pictures

On the first {n_show} images of the sample. saito2019 Figure 2 (MNIST, targeted MIM eps 0.1, its full test
sample): 90.8% on target against O:SOFTMAX:CE, 2.3% against R:TANH:MSE; the shares here are of {n_show}
images only, so their sampling error is large (the matrix report has the large-sample rates).

{pic_table}
"""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "pictures.md"
    path.write_text(text)
    return path
