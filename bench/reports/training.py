"""The training actually run, for the adversarially trained models a report's results came from: steps, seconds,
and the curve of accuracy on the training batches' PGD examples, so a reader can see whether a training cut
short of the paper's was still climbing when it stopped."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from tabulate import tabulate  # noqa: E402

from bench.reports.plots import save_plot  # noqa: E402

VU2018_STEPS = 100_000  # vu2018 section IV-B: "iteration steps (100000 steps)"


def steps_of(meta: dict) -> int | None:
    """Optimiser steps a stored model was trained for: the last point of its curve (written at the final
    step), or for a model stored before curves were kept, epochs x batches of its ``n_train`` images."""
    if meta.get("curve"):
        return meta["curve"][-1]["step"]
    train = meta["spec"]["train"]
    return train["epochs"] * math.ceil(train["n_train"] / train["batch_size"]) if train.get("n_train") else None


def training_section(metas: list[dict], out_dir: Path) -> str:
    """Markdown for the adversarially trained models among ``metas`` (empty when there are none), and
    ``plots/training_curve.png``."""
    adversarial = [m for m in metas if m["spec"]["train"].get("adversarial")]
    if not adversarial:
        return ""
    rows = []
    for m in adversarial:
        train, curve = m["spec"]["train"], m.get("curve") or []
        adv = train["adversarial"]
        first, last = (curve[0], curve[-1]) if curve else ({}, {})
        steps = steps_of(m) or 0
        rows.append(
            [
                m["name"].split("/")[-1],
                f"k={adv['max_iter']}, step {adv['eps_step']:g}, eps {adv['eps']:g}",
                f"{steps:,} x {train['batch_size']}",
                f"{steps / VU2018_STEPS:.1%}",
                f"Adam {train['lr']:g}, {train.get('schedule', 'cosine')}",
                f"{m['train_seconds'] / 60:.1f}",
                _window(first),
                _window(last),
                f"{m['clean_accuracy']:.4f}",
            ]
        )
    plot = _plot(adversarial, out_dir / "plots" / "training_curve.png")
    headers = [
        "model",
        "PGD training",
        "steps x batch",
        f"of vu2018's {VU2018_STEPS:,} steps",
        "optimiser",
        "minutes",
        "PGD-train acc., first 100 steps",
        "last 100 steps",
        "clean test acc.",
    ]
    return "\n".join(
        [
            "### The adversarial training actually run",
            "",
            "Accuracy on the training batches' own PGD examples (crafted against the model as it was at that step), "
            "over the first and the last 100 steps. A last window well above the first and still rising says the "
            "training stopped before it converged: the numbers above are those of a shorter training than "
            "vu2018's, not vu2018's.",
            "",
            tabulate(rows, headers=headers, tablefmt="github"),
            "",
            f"![training curves](plots/{plot.name})" if plot else "",
            "",
        ]
    )


def _window(point: dict) -> str:
    return f"{point['train_accuracy']:.3f} (loss {point['loss']:.3f})" if point else "—"


def _plot(metas: list[dict], path: Path) -> Path | None:
    curves = [(m["name"].split("/")[-1], m.get("curve") or []) for m in metas]
    if not any(c for _, c in curves):
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.8), dpi=110)
    for name, curve in curves:
        if curve:
            ax.plot([p["step"] for p in curve], [p["train_accuracy"] for p in curve], marker=".", label=name)
    ax.set_xlabel("training step (batches of PGD examples)")
    ax.set_ylabel("accuracy on the step's PGD examples")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{metas[0]['spec']['dataset']}: PGD adversarial training, mean over each 100 steps")
    return save_plot(fig, ax, path)
