"""Accuracy (or success rate) against eps: the worst case of every model on one figure, then one PNG per attack and
setting with one line per model and parameter set, each point with its interval."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bench.results.store import Record  # noqa: E402

YLABEL = {"accuracy": "accuracy on adversarial examples", "success_rate": "targeted attack success rate"}
WORST_CASE = "worst_case"
WORST_CASE_PLOT = "worst_case_vs_eps.png"
# open markers of shrinking size, one per model, so that models on the same point stay visible as rings
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
LINESTYLES = ("-", "--", ":", "-.")


def save_plot(fig, ax, path: Path, outside: bool = False) -> Path:
    """Grid, legend (outside the axes when ``outside``), tight layout, written to ``path`` and closed: how every plot
    of the reports ends."""
    ax.grid(alpha=0.3)
    if outside:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    else:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def eps_plots(records: list[Record], out_dir: Path) -> list[Path]:
    """The worst-case figure (``WORST_CASE_PLOT``) first, then one per white-box attack and setting swept over at
    least two eps."""
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in records:
        if r.status == "ok" and r.param == "eps" and r.setting.startswith("whitebox"):
            groups[(r.setting, r.attack)].append(r)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    worst = groups.pop(("whitebox_untargeted", WORST_CASE), [])
    if worst:
        title = f"{worst[0].dataset}: worst case over every untargeted attack, per image"
        written.append(_plot(worst, title, out_dir / WORST_CASE_PLOT))
    for (setting, attack), recs in sorted(groups.items()):
        if len({r.value for r in recs}) < 2:
            continue
        n = "/".join(map(str, sorted({r.n for r in recs})))
        title = f"{recs[0].dataset}: {attack}, {setting.replace('_', ' ')} ({n} images)"
        written.append(_plot(recs, title, out_dir / f"{setting}_{attack}.png"))
    return written


def _plot(recs: list[Record], title: str, path: Path) -> Path:
    """One line per model and parameter set: the models differ by colour and marker, the parameter sets by line
    style."""
    lines = _lines(recs)
    models = sorted({model for model, _ in lines})
    variants = sorted({variant for _, variant in lines})
    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=110)
    for (model, variant), rs in sorted(lines.items()):
        rs.sort(key=lambda r: r.value)
        m = models.index(model)
        # clamped: at a rate of 0 or 1 the interval's end can differ from the rate by a rounding error
        err = [[max(r.rate - r.ci_low, 0.0) for r in rs], [max(r.ci_high - r.rate, 0.0) for r in rs]]
        ax.errorbar(
            [r.value for r in rs],
            [r.rate for r in rs],
            yerr=err,
            marker=MARKERS[m % len(MARKERS)],
            markersize=max(9 - 1.2 * m, 3),
            fillstyle="none",
            color=f"C{m % 10}",
            linestyle=LINESTYLES[variants.index(variant) % len(LINESTYLES)],
            capsize=3,
            label=model + (f" ({variant})" if variant else ""),
        )
    ax.set_xlabel("eps (L-inf radius, pixels in [0, 1])")
    ax.set_ylabel(YLABEL[recs[0].metric])
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title, fontsize=9)
    return save_plot(fig, ax, path, outside=True)


def _shown(value: float | str) -> str:
    return value if isinstance(value, str) else f"{value:g}"


def _lines(recs: list[Record]) -> dict[tuple[str, str], list[Record]]:
    """Records by (model, parameter set): the parameters other than eps that differ between the group's cells name
    the set ('max_iter=100', 'num_random_init=4'); one set, no name."""
    params = [{k: v for k, v in r.config.get("params", {}).items() if k != "eps"} for r in recs]
    keys = sorted({k for p in params for k in p})
    differing = [k for k in keys if len({p.get(k) for p in params}) > 1]
    lines: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r, p in zip(recs, params, strict=True):
        variant = ", ".join(f"{k}={_shown(p[k])}" for k in differing if k in p)
        lines[(r.model, variant)].append(r)
    return lines
