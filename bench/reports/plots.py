"""Accuracy (or success rate) against eps, one PNG per attack and setting, one line per model with its interval."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bench.results.store import Record  # noqa: E402

YLABEL = {"accuracy": "accuracy on adversarial examples", "success_rate": "targeted attack success rate"}


def save_plot(fig, ax, path: Path) -> Path:
    """Grid, legend, tight layout, written to ``path`` and closed: how every plot of the reports ends."""
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def eps_plots(records: list[Record], out_dir: Path) -> list[Path]:
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in records:
        if r.status == "ok" and r.param == "eps" and r.setting.startswith("whitebox"):
            groups[(r.setting, r.attack)].append(r)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for (setting, attack), recs in sorted(groups.items()):
        if len({r.value for r in recs}) < 2:
            continue
        fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=110)
        by_model: dict[str, list[Record]] = defaultdict(list)
        for r in recs:
            by_model[r.model].append(r)
        for model, rs in sorted(by_model.items()):
            rs.sort(key=lambda r: r.value)
            xs = [r.value for r in rs]
            ys = [r.rate for r in rs]
            # clamped: at a rate of 0 or 1 the interval's end can differ from the rate by a rounding error
            err = [[max(r.rate - r.ci_low, 0.0) for r in rs], [max(r.ci_high - r.rate, 0.0) for r in rs]]
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=model)
        n = sorted({r.n for r in recs})
        ax.set_xlabel("eps (L-inf radius, pixels in [0, 1])")
        ax.set_ylabel(YLABEL[recs[0].metric])
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{recs[0].dataset}: {attack}, {setting.replace('_', ' ')} ({'/'.join(map(str, n))} images)")
        written.append(save_plot(fig, ax, out_dir / f"{setting}_{attack}.png"))
    return written
