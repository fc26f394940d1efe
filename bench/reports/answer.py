"""The report's first section, "The answer": per model and L-inf eps, the worst-case accuracy with its interval and
the attack that left the fewest images correct, then two verdict lines per model that say apart how robust the model
is (from the worst case alone) and whether the evaluation can be trusted (from the flags and what ran).

Every word that states a finding follows from the numbers by the rules below, so the same store always reads the same:
- a model "keeps at least half its clean accuracy" at an eps when the lower end of the worst case's 95% interval is at
  least ``KEEPS`` times its clean accuracy on the same images;
- it is "no better than chance" at an eps when the upper end of that interval is at or below 1 / classes;
- the evaluation is "trusted" when the attacks that know the model ran and no flag fired; "the worst case only" when
  the only flags say that some attack was weaker than another (the worst case already takes the stronger one);
  "doubtful" when a flag says even the strongest attack may not have converged; "incomplete" when the attacks that
  know the model did not run.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass
from itertools import takewhile

from tabulate import tabulate

from bench.attacks import attack_names
from bench.results import diagnostics
from bench.results.flags import Flag, all_flags
from bench.results.metrics import short, wilson_interval
from bench.results.store import Record
from bench.results.worst_case import ATTACK, strongest_single
from models.seeds import split_seeded_name

KEEPS = 0.5
# flags that say the strongest attack itself may be short of the model's true worst case
SUSPECT = ("chance_at_large_eps", "budget_sensitivity")


@dataclass(frozen=True)
class Trust:
    level: str  # trusted | worst case only | doubtful | incomplete
    text: str


def verdict_attacks() -> tuple[str, ...]:
    """What must have run before the evaluation can be trusted (margin PGD, Square)."""
    return attack_names(lambda f: f.needed_for_verdict)


def trust(model: str, records: list[Record], flags: list[Flag]) -> Trust:
    """Whether the model's numbers can be trusted, from what ran on it and which flags fired; nothing about how
    robust it is."""
    mine = sorted({f.check for f in flags if f.model == model})
    ran = {r.attack for r in records if r.model == model and r.status == "ok"}
    missing = [a for a in verdict_attacks() if a not in ran]
    fired = f" ({', '.join(mine)} fired; see the flags)" if mine else ""
    if missing:
        return Trust(
            "incomplete",
            f"incomplete: {', '.join(missing)} did not run on this model, so its worst case is an upper bound from "
            f"attacks that may not know it{fired}",
        )
    suspect = [c for c in mine if c in SUSPECT]
    if suspect:
        return Trust(
            "doubtful",
            f"doubtful: {', '.join(suspect)} says even the strongest attack may not have converged, so the worst case "
            f"may still be too high{fired}",
        )
    if mine:
        return Trust(
            "worst case only", "the worst case, yes: the attacks that know the model ran; " + _overstated(mine)
        )
    return Trust("trusted", "trusted: the attacks that know the model ran and no flag fired")


def _overstated(checks: list[str]) -> str:
    """Why single attacks' numbers overstate the model, from the flags that fired (the worst case takes the
    stronger)."""
    blind = [c for c in checks if c in diagnostics.BLIND]
    weaker = [c for c in checks if c not in diagnostics.BLIND]
    reasons = []
    if weaker:
        reasons.append(f"some attacks leave images correct that others break ({', '.join(weaker)})")
    if blind:
        reasons.append(f"the loss gradient is blind on part of the images ({', '.join(blind)})")
    return "single attacks' own numbers overstate it: " + " and ".join(reasons) + "; see the flags"


def robustness(worst: list[Record], chance: float) -> str:
    """How robust a model is, from its worst-case records (one per eps): where it keeps half its clean accuracy and
    from where it is no better than chance. Says nothing about whether to believe it (``trust`` does)."""
    worst = sorted(worst, key=lambda w: w.value)
    if not worst:
        return "no worst case yet (it needs two or more untargeted L-inf attacks at one eps)"
    span = f"worst-case accuracy {worst[0].rate:.3f} at eps {worst[0].value:g}"
    if len(worst) > 1:
        span += f" to {worst[-1].rate:.3f} at eps {worst[-1].value:g}"
    # the eps, from the smallest up, at which it keeps half its clean accuracy without a break
    prefix = list(takewhile(lambda w: w.clean_accuracy is not None and w.ci_low >= KEEPS * w.clean_accuracy, worst))
    if prefix:
        keeps = f"keeps at least half its clean accuracy up to eps {prefix[-1].value:g}"
    else:
        keeps = "below half its clean accuracy at every eps measured"
    at_chance = [w for w in worst if w.ci_high <= chance]
    if at_chance:
        floor = f"no better than chance ({chance:g}) from eps {at_chance[0].value:g}"
    else:
        floor = f"above chance ({chance:g}) at every eps measured"
    return f"{span}; {keeps}; {floor}"


def _strongest_label(w: Record) -> str:
    """The attack that left the fewest images correct at this eps, without the eps the column already says."""
    name, _ = strongest_single(w)
    _, setting, attack, where = name.split("/", 3)
    family, _, params = attack.partition("[")
    rest = [p for p in params.rstrip("]").split(", ") if p and not p.startswith("eps=")]
    label = family + (f"[{', '.join(rest)}]" if rest else "")
    source, _, target = where.partition("->")
    return f"{label} from {source}" if setting == "transfer" and target and source != target else label


def pooled(worst: list[Record]) -> Record:
    """One model's worst case at one eps over its training seeds (one record per seed, the same images): the rate
    is the mean over seeds (hits and images pooled, with its Wilson interval over all of them), and
    ``config["seed_rates"]`` keeps each seed's rate for the spread. A single record is returned as it is."""
    if len(worst) == 1:
        return worst[0]
    hits, n = sum(w.hits for w in worst), sum(w.n for w in worst)
    low, high = wilson_interval(hits, n)
    cleans = [w.clean_accuracy for w in worst if w.clean_accuracy is not None]
    seeds = {str(split_seeded_name(w.model)[1]): w.rate for w in worst}
    return dataclasses.replace(
        worst[0],
        model=split_seeded_name(worst[0].model)[0],
        hits=hits,
        n=n,
        rate=hits / n,
        ci_low=low,
        ci_high=high,
        clean_accuracy=sum(cleans) / len(cleans) if cleans else None,
        config={**worst[0].config, "seed_rates": seeds, "robust_alone": _pooled_alone(worst)},
    )


def _pooled_alone(worst: list[Record]) -> dict[str, int]:
    """Each attack's images left correct on its own (``robust_alone``), summed over the seeds' models: the cell
    names lose their seed, so one attack's cells on every seed add up; an attack missing on a seed is left out
    (its sum would count fewer images)."""
    alone: dict[str, int] = defaultdict(int)
    seen: dict[str, int] = defaultdict(int)
    for w in worst:
        for name, hits in w.config["robust_alone"].items():
            head, _, where = name.rpartition("/")
            key = f"{head}/" + "->".join(split_seeded_name(m)[0] for m in where.split("->"))
            alone[key] += hits
            seen[key] += 1
    everywhere = {k: v for k, v in alone.items() if seen[k] == len(worst)}
    return everywhere or dict(worst[0].config["robust_alone"])


def _by_model(ok: list[Record]) -> dict[str, list[Record]]:
    """The worst cases by base model (a model's training seeds pooled, ``pooled``), in model then eps order."""
    groups: dict[tuple[str, float], list[Record]] = defaultdict(list)
    for w in (r for r in ok if r.attack == ATTACK):
        groups[(split_seeded_name(w.model)[0], w.value)].append(w)
    by_model: dict[str, list[Record]] = defaultdict(list)
    for (model, _), ws in sorted(groups.items()):
        by_model[model].append(pooled(sorted(ws, key=lambda w: w.model)))
    return by_model


def _cell(w: Record) -> str:
    rates = w.config.get("seed_rates")
    spread = f" (seeds {min(rates.values()):.3f}–{max(rates.values()):.3f})" if rates else ""
    return f"{short(w)}{spread} {_strongest_label(w)}"


def _table(by_model: dict[str, list[Record]]) -> str:
    eps_values = sorted({w.value for ws in by_model.values() for w in ws})
    rows = []
    for model, ws in by_model.items():
        at = {w.value: w for w in ws}
        cells = [_cell(at[e]) if e in at else "—" for e in eps_values]
        cleans = sorted({round(w.clean_accuracy, 3) for w in ws if w.clean_accuracy is not None})
        clean = f"{cleans[0]:.3f}" if len(cleans) == 1 else f"{cleans[0]:.3f}–{cleans[-1]:.3f}" if cleans else "—"
        images = sorted({w.n for w in ws})
        rows.append([model, clean, *cells, "/".join(map(str, images))])
    headers = ["model", "clean", *(f"eps {e:g}" for e in eps_values), "images"]
    return tabulate(rows, headers, tablefmt="github", disable_numparse=True)


LEVELS = ("incomplete", "doubtful", "worst case only", "trusted")  # most to least severe


def model_trust(model: str, ok: list[Record], flags: list[Flag]) -> Trust:
    """``trust`` of a model, or of the least trusted of its training seeds' models (named)."""
    seeded = sorted({r.model for r in ok if split_seeded_name(r.model)[0] == model and r.model != model})
    if not seeded:
        return trust(model, ok, flags)
    verdicts = {name: trust(name, ok, flags) for name in seeded}
    name, worst = min(verdicts.items(), key=lambda kv: LEVELS.index(kv[1].level))
    agree = all(v.level == worst.level for v in verdicts.values())
    return worst if agree else Trust(worst.level, f"{worst.text} (on {name}; the other seeds are less doubtful)")


def answer_section(records: list[Record], chance: float, plot: str | None = None) -> str:
    """ "The answer": the worst case per model and eps, the strongest attack, and per model a robustness line and a
    trust line. Empty when no worst case can be formed."""
    ok = [r for r in records if r.status == "ok"]
    by_model = _by_model(ok)
    if not by_model:
        return ""
    flags = all_flags(ok)
    lines = [
        "## The answer: worst-case accuracy",
        "",
        "Per model and L-inf eps: the accuracy left after every untargeted attack at that eps, per image (an image "
        "counts only if every attack failed on it), ± the larger side of its Wilson 95% interval, and the single "
        "attack that left the fewest images correct. A model trained with several seeds shows the mean over its "
        "seeds (images pooled) and the range of the seeds' own rates. `clean` is the accuracy on the same images "
        "without attack. The papers' tables, the flags and every attack's own number follow below.",
        "",
        _table(by_model),
        "",
        *([f"![worst-case accuracy against eps]({plot})", ""] if plot else []),
        f"How robust (keeps half its clean accuracy: the interval's lower end is at least {KEEPS:g} x clean; "
        "chance: the interval's upper end is at or below 1 / classes), and whether to believe it (the flags and "
        "whether the attacks that know the model ran):",
        "",
    ]
    for model, ws in by_model.items():
        lines += [
            f"- **{model}**: {robustness(ws, chance)}.",
            f"  Evaluation: {model_trust(model, ok, flags).text}.",
        ]
    return "\n".join([*lines, ""])
