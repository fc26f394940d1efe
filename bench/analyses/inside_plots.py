"""Plots of the inside analysis (bench.analyses.inside): relative change per layer, and the rank change."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

KIND_LABELS = {"pgd": "PGD", "noise": "uniform noise"}
KIND_STYLES = {"pgd": "-", "noise": "--"}


def _merge_orders(sequences: Iterable[Sequence[str]]) -> list[str]:
    """One order containing every name, each new name placed right after its predecessor in its own list."""
    merged: list[str] = []
    for seq in sequences:
        for k, name in enumerate(seq):
            if name in merged:
                continue
            earlier = [p for p in seq[:k] if p in merged]
            merged.insert(merged.index(earlier[-1]) + 1 if earlier else 0, name)
    return merged


def _short(layer: str) -> str:
    return layer.removeprefix("backbone.")


def plot_relative_change(
    per_model: Mapping[str, Mapping[str, Mapping[str, float]]], path: str | Path, title: str
) -> Path:
    """Figure 2/3: per layer (x, forward order), the mean relative change (y, log scale); returns ``path``.

    ``per_model[model][kind][layer]`` with kind ``"pgd"`` (solid line) or ``"noise"`` (dashed), e.g. the
    output of :func:`relative_change`. One colour per model. Zero or NaN values cannot be drawn on a log axis
    and are left out of their line.
    """
    path = Path(path)
    order = _merge_orders(list(curve) for kinds in per_model.values() for curve in kinds.values())
    position = {name: i for i, name in enumerate(order)}
    fig, ax = plt.subplots(figsize=(max(6.5, 0.35 * len(order) + 3) + 3, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    any_positive = False
    for m, (model, kinds) in enumerate(per_model.items()):
        for kind, curve in kinds.items():
            points = [(position[k], v) for k, v in curve.items() if v is not None and math.isfinite(v) and v > 0]
            any_positive |= bool(points)
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            ax.plot(
                xs,
                ys,
                linestyle=KIND_STYLES.get(kind, ":"),
                marker="o",
                color=colours[m % len(colours)],
                label=f"{model} — {KIND_LABELS.get(kind, kind)}",
            )
    if any_positive:
        ax.set_yscale("log")
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels([_short(n) for n in order], rotation=45 if len(order) > 6 else 0, ha="right")
    ax.set_xlabel("layer (forward order)")
    ax.set_ylabel("relative L2 change, ||y'-y|| / ||x||\n(mean over examples)")
    ax.set_title(title, wrap=True)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)  # off the data
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_rank_histograms(per_model: Mapping[str, Sequence[int]], path: str | Path, title: str) -> Path:
    """Figure 1/4: per rank (x), the share of examples (y), grouped bars with one colour per model.

    ``per_model[model]`` holds counts per rank, e.g. the output of :func:`rank_histogram`; returns ``path``.
    """
    path = Path(path)
    n_ranks = max((len(c) for c in per_model.values()), default=0)
    n_models = max(len(per_model), 1)
    width = 0.8 / n_models
    fig, ax = plt.subplots(figsize=(max(6.5, 0.6 * n_ranks + 2), 4.5))
    for m, (model, counts) in enumerate(per_model.items()):
        total = sum(counts)
        shares = [c / total if total else 0.0 for c in counts]
        offsets = [r - 0.4 + width * (m + 0.5) for r in range(len(counts))]
        ax.bar(offsets, shares, width=width, label=f"{model} (n = {total})")
    ax.set_xticks(range(n_ranks))
    ax.set_xlabel("rank of the clean prediction among the perturbed scores (0 = decision unchanged)")
    ax.set_ylabel("share of examples")
    ax.set_ylim(0, 1)
    ax.set_title(title, wrap=True)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
