"""``bench report --beside``: the models of a second results store shown next to a report's own, named by their
training recipe where a label is taken; and the training section's account of why a model is below Madry et al."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.errors import ConfigError
from bench.reports.beside import beside_recipe, training_recipe
from bench.reports.dataset import report_records
from bench.reports.factors import recipe_factors
from bench.reports.reference import lookup
from bench.reports.training import curve_trend
from models.seeds import kind_label, recipe_tagged

ROOT = Path(__file__).resolve().parents[1]
PGD40 = ROOT / "reports" / "vu2018" / "mnist" / "store"  # PGD-40 models, no model metadata kept
FGSM_RS = ROOT / "reports" / "vu2018_fast_clipped" / "mnist" / "store"  # FGSM-RS models, same labels, metadata kept


def test_a_recipe_tag_keeps_the_seed_and_reads_back_to_the_kind():
    assert recipe_tagged("hinge@s1", "fgsm_rs_at") == "hinge+fgsm_rs_at@s1"
    assert kind_label("O:SOFTMAX:CE+fgsm_rs_at@s2") == kind_label("O:SOFTMAX:CE@s2") == "O:SOFTMAX:CE"
    assert kind_label("lmcl_s10_m0.3") == "lmcl_s10_m0.3"
    with pytest.raises(ConfigError, match="'FGSM RS'"):
        recipe_tagged("hinge", "FGSM RS")


def test_a_recipe_named_model_finds_its_kinds_published_number():
    args = ("vu2018:II", "whitebox_untargeted", "mnist")
    tagged = lookup(*args, "O:SOFTMAX:CE+fgsm_rs_at", "pgd", "eps", 0.3, arch="cnn+pgd_at")
    assert tagged is not None and tagged == lookup(*args, "O:SOFTMAX:CE", "pgd", "eps", 0.3, arch="cnn+pgd_at")


def test_the_models_of_a_store_beside_are_named_by_recipe_and_keep_their_own_worst_case():
    own = report_records("mnist", PGD40)
    fast = report_records("mnist", FGSM_RS)
    both = report_records("mnist", PGD40, [FGSM_RS])
    assert len(both) == len(own) + len(fast)
    keys_per_name: dict[str, set[str]] = {}
    for r in both:
        keys_per_name.setdefault(r.model, set()).add(r.model_key)
    assert all(len(keys) == 1 for keys in keys_per_name.values())  # never two models under one name (seeds)
    tagged = {f"{label}+fgsm_rs_clipped_at" for label in ("O:SOFTMAX:CE", "hinge", "lmcl_s10_m0.3")}
    assert {"O:SOFTMAX:CE"} | tagged <= set(keys_per_name)
    fast_keys = {r.model_key for r in fast}
    moved = [r for r in both if r.model_key in fast_keys]
    assert all(r.model.endswith("+fgsm_rs_clipped_at") for r in moved)
    assert all(r.source.endswith("+fgsm_rs_clipped_at") for r in moved if r.source)
    assert all(r.name.endswith(r.model) for r in moved)
    worst = {(r.model, r.value): r.rate for r in both if r.attack == "worst_case"}
    for r in fast:  # each store's worst case is its own: not pooled with the other store's model of that label
        if r.attack == "worst_case":
            assert worst[(recipe_tagged(r.model, "fgsm_rs_clipped_at"), r.value)] == r.rate


def test_a_clashing_model_without_metadata_to_name_its_recipe_is_refused_naming_the_store():
    with pytest.raises(ConfigError, match="vu2018/mnist/store.*no metadata"):
        report_records("mnist", FGSM_RS, [PGD40])


def test_recipe_factors_compare_each_recipe_with_the_reports_own_model_and_repeat_the_loss_factors():
    labels = {"O:SOFTMAX:CE", "hinge", "O:SOFTMAX:CE+fgsm_rs_at", "hinge+fgsm_rs_at", "lmcl_s10_m0.3+fgsm_rs_at"}
    pairs = {(f.name, f.changed, f.reference) for f in recipe_factors(labels)}
    assert ("training recipe fgsm_rs_at", "hinge+fgsm_rs_at", "hinge") in pairs
    assert ("hinge loss under fgsm_rs_at", "hinge+fgsm_rs_at", "O:SOFTMAX:CE+fgsm_rs_at") in pairs
    assert ("LMCL loss under fgsm_rs_at", "lmcl_s10_m0.3+fgsm_rs_at", "O:SOFTMAX:CE+fgsm_rs_at") in pairs
    assert not any(changed == "lmcl_s10_m0.3+fgsm_rs_at" and ref == "lmcl_s10_m0.3" for _, changed, ref in pairs)
    assert recipe_factors({"O:SOFTMAX:CE", "hinge"}) == ()


def test_recipes_one_step_apart_are_compared_and_a_recipe_on_another_network_is_named_by_it():
    labels = {"hinge", "hinge+fgsm_rs_at", "hinge+fgsm_rs_clipped_at", "hinge+small_cnn_fgsm_rs_at"}
    pairs = {(f.changed, f.reference) for f in recipe_factors(labels)}
    assert ("hinge+fgsm_rs_at", "hinge+fgsm_rs_clipped_at") in pairs  # the start, alone
    assert ("hinge+small_cnn_fgsm_rs_at", "hinge+fgsm_rs_at") in pairs  # the network, alone
    assert ("hinge+small_cnn_fgsm_rs_at", "hinge") not in pairs  # network and recipe at once: not a factor
    assert ("hinge+fgsm_rs_clipped_at", "hinge") in pairs
    meta = {"spec": {"arch": "small_cnn", "train": {"adversarial": {"method": "fgsm_rs", "clip_start": False}}}}
    assert beside_recipe(meta) == "small_cnn_fgsm_rs_at"
    meta["spec"]["arch"] = "cnn"
    assert beside_recipe(meta) == training_recipe(meta) == "fgsm_rs_at"
    del meta["spec"]["train"]["adversarial"]["clip_start"]  # stored before the option: the start was clipped
    assert training_recipe(meta) == "fgsm_rs_clipped_at"


def _curve(values):
    point = {"loss": 1.0, "train_accuracy": 0.9}
    return [{"step": 100 * (i + 1), "pgd_accuracy": v, **point} for i, v in enumerate(values)]


def test_a_curve_still_rises_only_when_its_last_checks_beat_the_ones_before_by_more_than_their_scatter():
    flat = [0.80, 0.84, 0.82, 0.86, 0.83, 0.82, 0.85, 0.81, 0.84, 0.83]
    assert curve_trend(_curve(flat))[2] is False
    rising = [0.40, 0.42, 0.41, 0.43, 0.42, 0.50, 0.52, 0.51, 0.53, 0.52]
    before, last, still = curve_trend(_curve(rising))
    assert still is True and before == pytest.approx(0.416) and last == pytest.approx(0.516)
    assert curve_trend(_curve(rising[:9])) is None  # too short to say
    restored = _curve(rising + [0.0])
    restored[-1]["restored_step"] = 1000  # the guard kept step 1000's weights: the fall after it is not read
    assert curve_trend(restored) == curve_trend(_curve(rising))


def test_bench_report_beside_names_the_store_and_the_recipe_of_each_model_it_shows(tmp_path):
    from bench.cli import main

    result = CliRunner().invoke(
        main,
        ["report", "--dataset", "mnist", "--out", str(PGD40), "--reports-dir", str(tmp_path), "--beside", str(FGSM_RS)],
    )
    assert result.exit_code == 0, result.output
    text = (tmp_path / "mnist" / "README.md").read_text()
    assert f"--beside {FGSM_RS}" in text.splitlines()[2]  # the command that regenerates it
    assert f"Beside this store's models: those of `{FGSM_RS}`" in text
    assert "| O:SOFTMAX:CE+fgsm_rs_clipped_at " in text and "| O:SOFTMAX:CE                    " in text
    assert "#### training recipe fgsm_rs_clipped_at: hinge+fgsm_rs_clipped_at against hinge" in text
    assert "- **hinge+fgsm_rs_clipped_at** (FGSM-RS alpha 0.375" in text


def test_a_network_evaluated_as_given_gets_its_line_against_madry_without_a_training_to_explain():
    from bench.reports.training import _against_madry
    from bench.results.store import read_records

    records = read_records(ROOT / "reports" / "wong2020" / "mnist" / "store")  # Wong et al.'s released model
    lines = [line for line in _against_madry([], records, {}) if line.startswith("- **")]
    pgd = next(r for r in records if r.attack == "pgd" and r.setting == "whitebox_untargeted")
    assert len(lines) == 1 and lines[0].startswith("- **wong2020_fgsm_rs** (a network evaluated as given")
    where = "within" if pgd.ci_high >= 0.89 and pgd.ci_low <= 0.92 else "outside"
    assert f"{pgd.rate:.3f} [{pgd.ci_low:.3f}, {pgd.ci_high:.3f}]" in lines[0] and f"{where} Madry" in lines[0]
    assert "trained" not in lines[0].split("):", 1)[1]  # no steps or curve to read: nothing said about training
