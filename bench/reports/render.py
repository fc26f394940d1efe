"""``reports/<dataset>/``: the tables, timing, failures and views as markdown, the raw CSV and the plots."""

from __future__ import annotations

from pathlib import Path

from tabulate import tabulate

from bench.attacks import ATTACKS
from bench.data.datasets import dataset_info
from bench.errors import UnknownNameError
from bench.reports.answer import answer_section
from bench.reports.beside import training_recipe
from bench.reports.factors import what_changes_robustness
from bench.reports.plots import WORST_CASE_PLOT, eps_plots
from bench.reports.reference import lookup, published
from bench.reports.robustness import robustness_section
from bench.reports.tables import (
    ADVERSARIAL_ONLY,
    CELL_KEY,
    TABLE_TITLES,
    fmt_rate,
    records_for_table,
    render_table,
    run_prices,
    timing_rows,
)
from bench.reports.training import recipe, steps_of, training_section
from bench.results.frame import records_frame
from bench.results.store import Record
from models.seeds import kind_label
from models.spec import KINDS, TrainConfig, parse_model_name


def write_dataset_report(
    dataset: str, records: list[Record], model_metas: list[dict], out_root: Path, command: str, note: str = ""
) -> Path:
    """Write ``out_root/<dataset>/`` (README, results.csv, plots) from ``records`` and the models' metadata;
    ``note`` ends the header's paragraph (where the models shown beside came from)."""
    out = out_root / dataset
    out.mkdir(parents=True, exist_ok=True)
    used_keys = {r.model_key for r in records}
    arch_of = _archs(model_metas)
    arch = _arch(model_metas, dataset, used_keys)
    adversarial = {key for key, a in arch_of.items() if a.endswith(ADVERSARIAL_SUFFIX)}
    plots = eps_plots(records, out / "plots")
    worst_plot = next((p.name for p in plots if p.name == WORST_CASE_PLOT), None)
    chance = 1 / dataset_info(dataset).n_classes
    sections = [
        f"# {dataset}: robustness by training loss and target representation",
        "",
        f"Generated from the results store by `{command}`; do not edit by hand. {CELL_KEY} "
        f"Models here use the `{_shown_arch(model_metas, used_keys) or arch}` architecture; saito2019 used DenseNet, "
        "vu2018 the CNN of its Table I (its adversarially trained models by PGD, `+pgd_at`)." + note,
        "",
        answer_section(records, chance, f"plots/{worst_plot}" if worst_plot else None),
        _factors(records),
        "## The papers' tables",
        "",
        _clean_table(dataset, model_metas, used_keys, records),
        training_section([m for m in model_metas if m["key"] in used_keys], out, records),
    ]
    for table in TABLE_TITLES:
        recs = records_for_table(records, table, adversarial, set(arch_of))
        if recs:
            sections.append(render_table(table, recs, _table_arch(table, model_metas, dataset, recs)))
    sections += ["## The evidence", "", robustness_section(records), _views(records)]
    sections += [_timing(records, model_metas), _failures(records), _provenance(records)]
    (out / "README.md").write_text("\n".join(sections) + "\n")
    _write_csv(records, out / "results.csv", lambda r: arch_of.get(r.model_key, arch))
    return out


ADVERSARIAL_SUFFIX = "+pgd_at"


def _factors(records: list[Record]) -> str:
    """ "What changes robustness" (bench.reports.factors); a pair that cannot be compared is said, not raised, so that
    the rest of the report is still written."""
    try:
        return what_changes_robustness(records)
    except ValueError as exc:
        return f"### What changes robustness\n\nNot computed: {exc}\n"


def _table_arch(table: str, metas: list[dict], dataset: str, recs: list[Record]) -> str:
    """The architecture a table's published numbers are looked up under: a table of adversarially trained models
    (vu2018 Tables II and III) is about ``<arch>+pgd_at`` even where the store lacks the models' metadata."""
    arch = _arch(metas, dataset, {r.model_key for r in recs})
    if ADVERSARIAL_ONLY.get(table) and not arch.endswith(ADVERSARIAL_SUFFIX):
        arch = "/".join(a.removesuffix(ADVERSARIAL_SUFFIX) + ADVERSARIAL_SUFFIX for a in arch.split("/"))
    return arch


def _archs(metas: list[dict]) -> dict[str, str]:
    """Each stored model's architecture as vu2018 names it: cnn, or cnn+pgd_at when it was adversarially trained."""
    return {
        m["key"]: m["spec"]["arch"] + (ADVERSARIAL_SUFFIX if m["spec"]["train"].get("adversarial") else "")
        for m in metas
    }


def _trained_arch(spec: dict) -> str:
    """A stored model's architecture with how it was adversarially trained, for the reader: cnn, cnn+pgd_at, or
    cnn+fgsm_rs_at (where ``_archs`` names every adversarial training +pgd_at, the key of vu2018's numbers)."""
    recipe = training_recipe({"spec": spec})
    return spec["arch"] + ("" if recipe == "plain" else f"+{recipe}")


def _shown_arch(metas: list[dict], used_keys: set[str]) -> str:
    return "/".join(sorted({_trained_arch(m["spec"]) for m in metas if m["key"] in used_keys}))


def _arch(metas: list[dict], dataset: str, used_keys: set[str]) -> str:
    """The architecture of the models the results came from, as vu2018 names it: cnn, or cnn+pgd_at when
    they were all adversarially trained (the key under which its Tables II and III are published)."""
    used = [m for m in metas if m["key"] in used_keys] or [m for m in metas if m["spec"]["dataset"] == dataset]
    archs = _archs(used)
    return "/".join(sorted(set(archs.values()))) or "cnn"


def _clean_table(dataset: str, metas: list[dict], used_keys: set[str], records: list[Record]) -> str:
    """The models the results came from; with no results, every fully trained plain model of the dataset. A model
    the model store does not hold (your own network, ``bench evaluate``) gets the clean accuracy its cells measured
    on their largest sample set."""
    rows, adversarial = _unstored_rows(records, {m["key"] for m in metas})
    labels = {r.model_key: r.model for r in records}  # O:SOFTMAX:CE@s1 where a preset trains several seeds
    plain: dict[str, list[float]] = {}  # clean accuracies per kind of the plainly trained models, for _clean_spread
    for m in metas:
        spec = m["spec"]
        if used_keys:
            if m["key"] not in used_keys:
                continue
        elif spec["dataset"] != dataset or spec["train"].get("adversarial") or spec["train"].get("n_train"):
            continue
        label = labels.get(m["key"], m["name"].split("/")[-1])
        kind = kind_label(label)
        train = spec["train"]
        if train.get("n_train"):  # a lighter model than the paper's: say so beside its number
            label += f" [{train['epochs']} epochs, {train['n_train']} training images]"
        elif train["epochs"] != TrainConfig.epochs:
            label += f" [{train['epochs']} epochs]"
        if train.get("adversarial"):  # vu2018 Table II gives the clean accuracy of its adversarial trainings
            adv = train["adversarial"]
            label += f" [{recipe(adv)} adversarial training"
            if train.get("n_train"):
                label += f"; {steps_of(m)} steps of batch {train['batch_size']}"
            label += "]"
            paper = lookup("vu2018:II", "clean", dataset, kind, "none", "", None, arch=f"{spec['arch']}+pgd_at")
            adversarial.append(True)
        else:
            adversarial.append(False)
            paper = lookup("saito2019:4", "clean", dataset, kind, "none", "", None)
            plain.setdefault(kind, []).append(m["clean_accuracy"])
        measured = m["clean_accuracy"]
        delta = f"{measured - paper:+.3f}" if paper is not None else "—"
        rows.append([f"{label} ({_trained_arch(spec)})", f"{measured:.4f}", m["n_test"], fmt_rate(paper), delta])
    return "\n".join(
        [
            f"### {CLEAN_TITLES[(any(adversarial), all(adversarial) and bool(adversarial))]}",
            "",
            tabulate(sorted(rows), headers=["model", "measured", "images", "paper", "Δ"], tablefmt="github"),
            "",
            *_clean_spread(plain),
        ]
    )


SIBLING_GAP = 0.005  # issue 14: a model kind should train to within half a point of its siblings' clean accuracy


def _clean_spread(plain: dict[str, list[float]]) -> list[str]:
    """Whether every plainly trained model kind reached the clean accuracy of the best (mean over its seeds): a kind
    that trained worse may differ in robustness for that reason alone."""
    if len(plain) < 2:
        return []
    means = {kind: sum(values) / len(values) for kind, values in plain.items()}
    best = max(means, key=means.get)
    behind = sorted(k for k in means if means[best] - means[k] > SIBLING_GAP)
    head = f"Clean accuracy per model kind (mean over its seeds): the best is {best}'s {means[best]:.4f}; "
    if not behind:
        return [head + f"every kind is within {100 * SIBLING_GAP:.1f} points of it.", ""]
    named = ", ".join(f"{k} ({means[k]:.4f})" for k in behind)
    return [
        head + f"{named} trained more than {100 * SIBLING_GAP:.1f} points below it, so a robustness difference "
        "against them may come from the training rather than the loss or the representation.",
        "",
    ]


CLEAN_TITLES = {  # (any model adversarially trained, all of them): whose clean-accuracy table this is; the images
    # column says on how many test images (the whole split for a stored model, its cells' images otherwise)
    (False, False): "saito2019 Table 4: clean test accuracy",
    (True, True): "vu2018 Table II: clean test accuracy of the adversarially trained models",
    (True, False): "Clean test accuracy: saito2019 Table 4's, and vu2018 Table II's for the adversarially trained "
    "models",
}


def _unstored_rows(records: list[Record], stored_keys: set[str]) -> tuple[list[list], list[bool]]:
    """Rows for the models without stored metadata (clean accuracy on their largest sample set), and whether each
    was adversarially trained: what its cells' tables say where nothing else can (vu2018 Tables II and III hold only
    adversarially trained models, ``ADVERSARIAL_ONLY``)."""
    largest: dict[str, Record] = {}
    tables: dict[str, set[str]] = {}
    for r in records:
        if r.model_key not in stored_keys and r.clean_accuracy is not None and r.n:
            tables.setdefault(r.model_key, set()).update(r.config.get("tables") or ())
            if r.model_key not in largest or r.n > largest[r.model_key].n:
                largest[r.model_key] = r
    rows, adversarial = [], []
    for r in sorted(largest.values(), key=lambda r: r.model):
        tagged = sorted(t for t in tables[r.model_key] if ADVERSARIAL_ONLY.get(t))
        if any(ADVERSARIAL_ONLY.get(t) is False or t.startswith("saito2019:") for t in tables[r.model_key]):
            tagged = []  # also in a table of plain models (older stores tagged vu2018:III-A's cells vu2018:II too)
        how = f"adversarially trained, as its {' and '.join(tagged)} cells say; " if tagged else ""
        label = f"{r.model} ({how}no stored model metadata: on the test images of its cells)"
        rows.append([label, f"{r.clean_accuracy:.4f}", r.n, "—", "—"])
        adversarial.append(bool(tagged))
    return rows, adversarial


def _kinds_used(records: list[Record]) -> set[str]:
    """The model kinds of the records' models (a label such as lmcl_s10_m0.3 names its kind), whatever else is
    registered: a report is a function of its stores, not of the plugins installed where it is written."""
    used = set()
    for label in {kind_label(r.model) for r in records}:  # O:SOFTMAX:CE@s1 is O:SOFTMAX:CE's kind
        try:
            used.add(parse_model_name(label)[0].name)
        except UnknownNameError:  # your own network, or a plugin kind not loaded here
            continue
    return used


def _views(records: list[Record]) -> str:
    attacks = sorted({r.attack for r in records if r.attack in ATTACKS})  # not the derived or diagnostic cells
    rows = [[a, ATTACKS.get(a).implementation, ATTACKS.get(a).sees] for a in attacks]
    used = _kinds_used(records)
    models = [[k.name, k.scores] for k in (KINDS.get(n) for n in KINDS.names()) if k.name in used]
    return "\n".join(
        [
            "### What each attack sees",
            "",
            "Every model's forward returns one score per class whose argmax is its decision:",
            "",
            tabulate(models, headers=["model", "per-class scores"], tablefmt="github"),
            "",
            tabulate(rows, headers=["attack", "implementation", "works from"], tablefmt="github"),
            "",
            *_codeword_note(used, attacks),
        ]
    )


def _codeword_note(kinds_used: set[str], attacks: list[str]) -> list[str]:
    """What the stock CW attack misreads on a codeword model: only where both ran."""
    codeword = sorted(k for k in kinds_used if KINDS.get(k).codebook)
    if not codeword or "cw_l2" not in attacks:
        return []
    return [
        f"Against {', '.join(codeword)}, `cw_l2` is the attacker who does not know about codewords: it takes the "
        "model's d outputs (d the codeword length) for logits, reads class t as output t, and judges its own "
        "success by their argmax, which is not the model's decision (saito2019 section 3.3). `cw_l2_codeword` "
        "works from the distances to the codewords.",
        "",
    ]


BEST_BATCH_NOTE = (
    " `passes at best batch s` prices the same passes at the throughput of the model's best batch size (of 16 "
    "to 512), timed again before and after each craft, so `wall / best` is what the attack cost against what the "
    "hardware did at the time (a shared machine's throughput drifts within minutes); a craft "
    "group (a sweep crafted in one call) is charged to its cells in equal shares."
)


def _timing(records: list[Record], model_metas: list[dict]) -> str:
    rows = timing_rows(records)
    keys = {r.model_key for r in records} | {r.config.get("source_key") for r in records}
    train = sum(m.get("train_seconds") or 0.0 for m in model_metas if m.get("key") in keys)
    prices = run_prices(records, train)
    return "\n".join(
        [
            "### Timing",
            "",
            "Wall time of crafting against the forward and backward passes the attack made, priced at the throughput "
            "measured on the same model in the same run, at the batch size the attack ran with (1.0 = nothing "
            "spent beyond the network). FGSM's sweep spends one gradient for all its eps. What raises a ratio: "
            "CW-L2 drops images from its batch as they abort early, and the smaller batches cost more per image; "
            "L-BFGS spends SciPy's L-BFGS-B bookkeeping between passes (run with one BLAS thread: SciPy's "
            "OpenBLAS threads and torch's fighting over the cores made it 4.7x), and an image's solves run one "
            "after another, so once fewer searches are left than a batch holds its calls carry fewer images "
            "(scripts/lbfgs_time.py splits the two); ART's attacks run as ART wrote them."
            + (BEST_BATCH_NOTE if prices else ""),
            "",
            tabulate(rows, headers="keys", tablefmt="github") if rows else "_no timed cells_",
            "",
            *([_run_price_line(prices), ""] if prices else []),
        ]
    )


def _run_price_line(p: dict[str, float]) -> str:
    return (
        f"Crafting took {p['attack_wall'] / 60:.1f} min against {p['attack_best'] / 60:.1f} min of its passes at the "
        f"best batch throughput of each model ({p['attack_ratio']:.2f}x). With training ({p['train'] / 60:.1f} min, "
        f"counted at its own wall time: its batches are full), the whole run is {p['run_ratio']:.2f}x its "
        "pass-limited time."
    )


def _failures(records: list[Record]) -> str:
    failed = [r for r in records if r.status != "ok"]
    if not failed:
        return "### Failures\n\nNone.\n"
    rows = [[r.name, (r.error or "").splitlines()[0]] for r in failed]
    return "### Failures\n\n" + tabulate(rows, headers=["cell", "error"], tablefmt="github") + "\n"


def _provenance(records: list[Record]) -> str:
    commits = sorted({r.commit_id[:12] for r in records if r.commit_id})
    devices = sorted({r.device for r in records if r.device})
    versions = sorted(
        {
            f"torch {r.versions.get('torch')}, ART {r.versions.get('adversarial-robustness-toolbox')}"
            for r in records
            if r.versions
        }
    )
    seeds = sorted({r.seed for r in records if r.seed is not None})
    return (
        f"### Provenance\n\n{len(records)} cells; seeds {seeds}; devices {devices}; {'; '.join(versions)}; "
        f"commits {', '.join(commits)}. Raw results: `results.csv`; plots: `plots/`.\n"
    )


def _write_csv(records: list[Record], path: Path, arch_of) -> None:
    """The raw results with every attack parameter in a column (the columns of ``bench export``), and the published
    number with Δ where the papers have one."""
    frame = records_frame(records)
    papers = {r.cell_hash: published(r, arch_of(r)) for r in records}
    frame["paper"] = frame["cell_hash"].map(papers).astype("float64")
    frame["delta"] = frame["rate"] - frame["paper"]
    frame.to_csv(path, index=False)
