"""The training actually run, for the adversarially trained models a report's results came from: recipe, steps,
seconds, and the curve of PGD-train accuracy, so a reader can see whether a training cut short of the paper's was
still climbing when it stopped. For PGD training that is the accuracy on the training batches' own PGD examples;
for FGSM-RS training (Wong et al. 2020) it is the guard's PGD check on a fixed training batch (models/fast_at.py),
drawn beside the accuracy on the FGSM-RS examples it trained on."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from tabulate import tabulate  # noqa: E402

from bench.reports.plots import save_plot  # noqa: E402
from models.spec import EXTERNAL_KEY_PREFIX, AdversarialTraining  # noqa: E402

VU2018_STEPS = 100_000  # vu2018 section IV-B: "iteration steps (100000 steps)"
# Madry et al. (2018), "Towards deep learning models resistant to adversarial attacks": their adversarially trained
# MNIST model's white-box accuracy under PGD at eps 0.3 (40 to 100 steps, with and without restarts)
MADRY_MNIST = (0.89, 0.92)
MADRY_EPS = 0.3


def steps_of(meta: dict) -> int | None:
    """Optimiser steps a stored model was trained for: the last point of its curve (written at the final
    step), or for a model stored before curves were kept, epochs x batches of its ``n_train`` images."""
    if meta.get("curve"):
        return meta["curve"][-1]["step"]
    train = meta["spec"]["train"]
    return train["epochs"] * math.ceil(train["n_train"] / train["batch_size"]) if train.get("n_train") else None


def recipe(adv: dict) -> str:
    """The adversarial training recipe of a stored spec's ``adversarial`` table, in a few words."""
    pgd = f"k={adv['max_iter']}, step {adv['eps_step']:g}"
    if adv.get("method", "pgd") == "pgd":
        return f"PGD {pgd}, eps {adv['eps']:g}"
    checks = adv.get("guard_checks", 1)
    guard = f"PGD {pgd}, drop {adv['guard_drop']:g}" + (f", {checks} checks in a row" if checks != 1 else "")
    start = ", start clipped to [0, 1]" if AdversarialTraining.from_stored(adv).clip_start else ""
    return f"FGSM-RS alpha {adv['alpha']:g}, eps {adv['eps']:g}{start} (guard: {guard})"


def pgd_train_accuracy(point: dict) -> float:
    """A curve point's PGD-train accuracy: the guard's PGD check where FGSM-RS recorded one, else the accuracy on
    the window's own (PGD) training examples."""
    return point.get("pgd_accuracy", point["train_accuracy"])


def training_section(metas: list[dict], out_dir: Path, records: list | None = None) -> str:
    """Markdown for the adversarially trained models among ``metas`` (empty when there are none), and
    ``plots/training_curve.png``; with ``records``, each MNIST model's PGD accuracy at eps 0.3 against Madry et
    al.'s."""
    adversarial = [m for m in metas if m["spec"]["train"].get("adversarial")]
    if not adversarial:
        return ""
    names = {r.model_key: r.model for r in records or []}
    rows = [_row(m, names) for m in adversarial]
    plot = _plot(adversarial, out_dir / "plots" / "training_curve.png", names)
    headers = [
        "model",
        "adversarial training",
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
            "PGD-train accuracy over the first and the last 100 steps: for PGD training, the accuracy on the "
            "training batches' own PGD examples (crafted against the model as it was at that step); for FGSM-RS "
            "training, the accuracy under the guard's PGD on a fixed training batch at the window's end (the "
            "accuracy on the FGSM-RS examples themselves is in brackets; where the guard stopped a training, the "
            "last window is that of the weights it kept). A last window well above the first and "
            "still rising says the training stopped before it converged: the numbers above are those of a shorter "
            "training than vu2018's, not vu2018's.",
            "",
            tabulate(rows, headers=headers, tablefmt="github"),
            "",
            f"![training curves](plots/{plot.name})" if plot else "",
            "",
            *_against_madry(adversarial, records or [], names),
        ]
    )


def _record_at_eps(records: list, meta: dict, attack: str):
    """The model's white-box untargeted record of ``attack`` at Madry et al.'s eps, or None."""
    found = [
        r
        for r in records
        if r.model_key == meta.get("key") and r.setting == "whitebox_untargeted" and r.attack == attack
        if r.value is not None and math.isclose(r.value, MADRY_EPS) and None not in (r.rate, r.ci_low, r.ci_high)
    ]
    return found[0] if found else None


def _rate(r) -> str:
    return f"{r.rate:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]"


def _against_madry(metas: list[dict], records: list, names: dict[str, str]) -> list[str]:
    """One generated line per MNIST model with a PGD cell at eps 0.3: its accuracy and interval, whether that
    interval reaches Madry et al.'s region, and what the measurements say about why not: how long it trained,
    whether its training curve was still rising or had levelled off, whether the guard stopped it, and whether the
    attacks that know the model leave less than PGD on its loss. Networks evaluated as given (``bench evaluate``:
    no training here to read) get the same line without the why."""
    lines = []
    for m in metas:
        r = _record_at_eps(records, m, "pgd") if m["spec"]["dataset"] == "mnist" else None
        if r is not None:
            how, worst = recipe(m["spec"]["train"]["adversarial"]), _record_at_eps(records, m, "worst_case")
            lines.append(_madry_line(_name(m, names), how, r, m["clean_accuracy"], worst, _why_below(m)))
    given = {r.model_key for r in records if r.model_key.startswith(EXTERNAL_KEY_PREFIX) and r.dataset == "mnist"}
    for key in sorted(given):
        r, worst = (_record_at_eps(records, {"key": key}, attack) for attack in ("pgd", "worst_case"))
        if r is not None:
            how = "a network evaluated as given, not trained here"
            lines.append(_madry_line(r.model, how, r, r.clean_accuracy, worst, why=""))
    if not lines:
        return []
    low, high = MADRY_MNIST
    head = (
        f"Madry et al. (2018) report about {low:g}-{high:g} for their adversarially trained MNIST model under "
        f"white-box PGD at eps {MADRY_EPS:g}; each adversarially trained model here (and each network evaluated as "
        "given), on its own PGD cell at that eps (the interval is Wilson's 95%; within means it reaches the region):"
    )
    return [head, "", *lines, ""]


def _madry_line(name: str, how: str, r, clean: float | None, worst, why: str) -> str:
    """A model's line against Madry et al.; ``why`` (what its training says) is said only when it is below."""
    low, high = MADRY_MNIST
    where, k = _where(r), r.config.get("params", {}).get("max_iter")
    return (
        f"- **{name}** ({how}): PGD{f'-{int(k)}' if k else ''} accuracy at eps {MADRY_EPS:g} {_rate(r)} on {r.n} "
        f"test images, clean {'n/a' if clean is None else f'{clean:.4f}'}: {where} Madry et al.'s {low:g}-{high:g}"
        + (why if where == "below" else "")
        + "."
        + (_worst_line(worst, r) if worst else "")
    )


def _where(r) -> str:
    low, high = MADRY_MNIST
    return "within" if r.ci_high >= low and r.ci_low <= high else ("below" if r.ci_high < low else "above")


def _why_below(m: dict) -> str:
    """Why a model is below the region, as far as its training says: its length, its curve's trend, the guard."""
    steps, curve = steps_of(m) or 0, m.get("curve") or []
    why = f"; trained {steps:,} steps ({steps / VU2018_STEPS:.1%} of vu2018's)"
    if curve and "restored_step" in curve[-1]:
        why += f", stopped by the guard at step {curve[-1]['step']:,}"
    trend = curve_trend(curve)
    if trend is None:
        return why
    (before, last, rising), steps = trend, [p["step"] for p in _kept(curve)]
    n = TREND_CHECKS
    said = (
        f"{before:.3f} over the checks of steps {steps[-2 * n]:,}-{steps[-n - 1]:,}, {last:.3f} over those of steps "
        f"{steps[-n]:,}-{steps[-1]:,}"
    )
    if rising:
        return why + f"; its PGD-train accuracy was still rising when it stopped ({said}: beyond twice its error)"
    level = ", below the region on the training images themselves" if last < MADRY_MNIST[0] else ""
    return why + f"; at the end of its training its PGD-train accuracy rose no more than its scatter ({said}){level}"


TREND_CHECKS = 5  # curve points (100 steps apart) in each of the two windows that say whether a curve still rises


def curve_trend(curve: list[dict]) -> tuple[float, float, bool] | None:
    """Mean PGD-train accuracy over the curve's last ``TREND_CHECKS`` points (of the weights kept, where the guard
    restored earlier ones) and over the ``TREND_CHECKS`` before them, and whether the rise between the two exceeds
    twice its standard error (the points' own scatter): None for a curve too short to say."""
    values = [pgd_train_accuracy(p) for p in _kept(curve)]
    if len(values) < 2 * TREND_CHECKS:
        return None
    before, last = values[-2 * TREND_CHECKS : -TREND_CHECKS], values[-TREND_CHECKS:]
    error = math.sqrt((statistics.variance(before) + statistics.variance(last)) / TREND_CHECKS)
    rise = statistics.fmean(last) - statistics.fmean(before)
    return statistics.fmean(before), statistics.fmean(last), rise > 2 * error


def _kept(curve: list[dict]) -> list[dict]:
    """The curve up to the weights kept: where the guard stopped a training, up to the step it restored."""
    if curve and "restored_step" in curve[-1]:
        return [p for p in curve if p["step"] <= curve[-1]["restored_step"]]
    return curve


def _worst_line(worst, pgd) -> str:
    line = f" Its worst case over every attack at eps {MADRY_EPS:g}: {_rate(worst)} on {worst.n} images"
    if worst.ci_high < pgd.ci_low:
        line += (
            f", below its PGD accuracy: PGD on its loss overstates its robustness, and by the worst case it is "
            f"{_where(worst)} Madry et al.'s region"
        )
    return line + "."


def _name(m: dict, names: dict[str, str]) -> str:
    """The model's name as the report's tables show it (its recipe added where a store beside took its label)."""
    return names.get(m.get("key"), m["name"].split("/")[-1])


def _row(m: dict, names: dict[str, str]) -> list[str]:
    train, curve = m["spec"]["train"], m.get("curve") or []
    first, last = (curve[0], curve[-1]) if curve else ({}, {})
    steps = steps_of(m) or 0
    how = recipe(train["adversarial"])
    if "restored_step" in last:  # the model is the one of the last check that passed: its point is the last shown
        how += f"; stopped by the guard at step {last['step']:,}, weights of step {last['restored_step']:,} kept"
        last = next(p for p in curve if p["step"] == last["restored_step"])
    return [
        _name(m, names),
        how,
        f"{steps:,} x {train['batch_size']}",
        f"{steps / VU2018_STEPS:.1%}",
        f"Adam {train['lr']:g}, {train.get('schedule', 'cosine')}",
        f"{m['train_seconds'] / 60:.1f}",
        _window(first),
        _window(last),
        f"{m['clean_accuracy']:.4f}",
    ]


def _window(point: dict) -> str:
    if not point:
        return "—"
    if "pgd_accuracy" in point:
        return f"{point['pgd_accuracy']:.3f} (FGSM-RS {point['train_accuracy']:.3f}, loss {point['loss']:.3f})"
    return f"{point['train_accuracy']:.3f} (loss {point['loss']:.3f})"


def _plot(metas: list[dict], path: Path, names: dict[str, str]) -> Path | None:
    curves = [(_name(m, names), m.get("curve") or []) for m in metas]
    if not any(c for _, c in curves):
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.8), dpi=110)
    for name, curve in curves:
        if not curve:
            continue
        steps = [p["step"] for p in curve]
        (line,) = ax.plot(steps, [pgd_train_accuracy(p) for p in curve], marker=".", label=name)
        if "pgd_accuracy" in curve[0]:
            fgsm = [p["train_accuracy"] for p in curve]
            ax.plot(steps, fgsm, linestyle="--", color=line.get_color(), label=f"{name} (FGSM-RS examples)")
    ax.set_xlabel("training step")
    ax.set_ylabel("PGD-train accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{metas[0]['spec']['dataset']}: adversarial training, every 100 steps")
    return save_plot(fig, ax, path)
