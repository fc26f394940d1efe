import pytest

from bench.errors import ConfigError, UnknownNameError
from bench.matrix.plan import MatrixOptions, expand, make_plan
from bench.matrix.preset import load_preset

KEYS = {"O:SOFTMAX:CE": "k_ce", "O:SOFTMAX:MSE": "k_mse", "R:TANH:MSE": "k_tanh"}


def test_the_paper_preset_has_every_published_saito2019_cell_for_its_models():
    from bench.reports.reference import reference

    cells = expand(load_preset("paper"), "mnist", KEYS)
    ours = {(c.setting, c.attack, c.param, c.value, c.model) for c in cells}
    setting_of = {
        "whitebox_untargeted": "whitebox_untargeted",
        "whitebox_targeted": "whitebox_targeted",
        "tailored_targeted": "tailored",
        "transfer_from:O:SOFTMAX:CE": "transfer",
    }
    published = {
        (setting_of[k.setting], k.attack, k.param, k.value, k.model)
        for k in reference()
        if k.source == "saito2019" and k.dataset == "mnist" and k.setting in setting_of
    }
    assert published and published <= ours


def test_cells_have_stable_distinct_hashes_and_readable_names():
    cells = expand(load_preset("paper"), "mnist", KEYS)
    assert len({c.hash for c in cells}) == len(cells)
    again = expand(load_preset("paper"), "mnist", KEYS)
    assert [c.hash for c in cells] == [c.hash for c in again]
    names = {c.name for c in cells}
    assert "mnist/whitebox_untargeted/fgsm[eps=0.1]/R:TANH:MSE" in names
    assert "mnist/transfer/mim[eps=0.01]/O:SOFTMAX:CE->R:TANH:MSE" in names


def test_transfer_reuses_the_white_box_craft_of_its_source():
    cells = expand(load_preset("paper"), "mnist", KEYS)
    transfer = next(c for c in cells if c.setting == "transfer" and c.attack == "mim")
    white = next(
        c
        for c in cells
        if c.setting == "whitebox_untargeted" and c.attack == "mim" and c.value == 0.01 and c.model == "O:SOFTMAX:CE"
    )
    assert transfer.craft_key == white.craft_key and transfer.hash != white.hash


def test_transfer_matrix_has_every_pair():
    cells = expand(load_preset("paper"), "mnist", KEYS, settings=("transfer",), transfer_matrix=True)
    pairs = {(c.source, c.model) for c in cells if c.attack == "mim"}
    assert len(pairs) == 9


def test_filters_and_sample_overrides():
    cells = expand(
        load_preset("quick"),
        "mnist",
        KEYS,
        attacks=("pgd",),
        settings=("whitebox_untargeted",),
        n_samples={"pgd": 7},
        seed=3,
    )
    assert (
        {c.attack for c in cells} == {"pgd"} and {c.n_samples for c in cells} == {7} and {c.seed for c in cells} == {3}
    )
    assert {c.value for c in cells} == {0.02, 0.04, 0.08, 0.1, 0.3}


def test_quick_inherits_the_paper_cells_with_smaller_budgets():
    paper, quick = load_preset("paper"), load_preset("quick")
    shape = lambda p: sorted((g.setting, g.attack, g.sweep_values) for g in p.groups)  # noqa: E731
    assert shape(paper) == shape(quick)

    # The budget is images x optimiser steps: quick may keep the image count and cut the steps.
    def budget(preset, attack):
        cell = next(c for c in expand(preset, "mnist", KEYS, attacks=(attack,)))
        p = dict(cell.params)
        return cell.n_samples * p.get("max_iter", 1) * p.get("binary_search_steps", 1)

    for attack in ("fgsm", "pgd", "deepfool", "cw_l2", "cw_l2_codeword", "lbfgs"):
        assert budget(quick, attack) < budget(paper, attack), attack
    cw = next(c for c in expand(quick, "mnist", KEYS, attacks=("cw_l2",)))
    assert dict(cw.params)["max_iter"] == 100


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        (MatrixOptions(dataset="mnist", attacks=("pgdd",)), "Did you mean 'pgd'"),
        (MatrixOptions(dataset="mnist", settings=("white_box",)), "expected one of: whitebox_untargeted"),
        (MatrixOptions(dataset="mnist", preset="papr"), "Did you mean 'paper'"),
        (MatrixOptions(dataset="mnist", models=("O:SOFTMAX:MAE",)), "Did you mean 'O:SOFTMAX:MSE'"),
    ],
)
def test_unknown_names_are_refused_before_any_work(options, fragment):
    with pytest.raises(UnknownNameError, match=fragment):
        make_plan(options)


def test_a_parameter_outside_its_range_is_refused(tmp_path):
    preset = tmp_path / "bad.toml"
    preset.write_text(
        'name = "bad"\nmodels = ["O:SOFTMAX:CE"]\n[samples]\nfgsm = 10\n'
        '[[group]]\nsetting = "whitebox_untargeted"\nattack = "fgsm"\nsweep = { eps = [0.1, 1.5] }\n'
    )
    with pytest.raises(ConfigError, match=r"fgsm eps=1.5 is outside \[0.0, 1.0\]"):
        make_plan(MatrixOptions(dataset="mnist", preset=str(preset)))


def test_vu2018_preset_adversarial_training_and_transfer_matrix():
    """Table II: every model under PGD k=100; Table III: every source x target of three models, diagonal
    included; the models are PGD-trained with vu2018's k=40, step 0.01, eps 0.3."""
    preset = load_preset("vu2018")
    train = preset.train_config()
    assert train.adversarial is not None
    assert (train.adversarial.max_iter, train.adversarial.eps_step, train.adversarial.eps) == (40, 0.01, 0.3)
    keys = {m: f"key-{m}" for m in preset.models}
    cells = expand(preset, "mnist", keys)
    table2 = [c for c in cells if "vu2018:II" in c.tables]
    table3 = [c for c in cells if "vu2018:III" in c.tables]
    assert sorted(c.model for c in table2) == sorted(preset.models) and len(preset.models) == 6
    trio = {"hinge", "O:SOFTMAX:CE", "lmcl_s10_m0.3"}
    assert {(c.source, c.model) for c in table3} == {(s, t) for s in trio for t in trio}
    assert all(dict(c.params)["max_iter"] == 100 and c.n_samples == 1000 for c in table2 + table3)
    # and the attacks that know the model, on every model at Table II's eps, so the verdict can say "holds"
    knowing = {(c.attack, c.model) for c in cells if "robustness" in c.tables and dict(c.params).get("eps") == 0.3}
    assert knowing == {(a, m) for a in ("pgd_margin", "square") for m in preset.models}


def test_vu2018_numbers_are_looked_up_for_adversarially_trained_models():
    from bench.reports.reference import lookup

    arch = "cnn+pgd_at"
    assert lookup("vu2018:II", "whitebox_untargeted", "mnist", "lmcl_s10_m0.3", "pgd", "eps", 0.3, arch=arch) == 0.9195
    assert lookup("vu2018:II", "clean", "mnist", "hinge", "none", "", None, arch=arch) == 0.9104
    transfer = lookup("vu2018:III", "transfer", "mnist", "hinge", "pgd", "eps", 0.3, "O:SOFTMAX:CE", arch)
    assert transfer == 0.8553
    assert lookup("vu2018:II", "whitebox_untargeted", "mnist", "hinge", "pgd", "eps", 0.3, arch="cnn") is None


def test_a_bad_training_table_is_refused_with_the_fields_expected(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(
        'name = "bad"\nmodels = ["hinge"]\n[training]\nepochz = 1\n[samples]\npgd = 1\n'
        '[[group]]\nsetting = "whitebox_untargeted"\nattack = "pgd"\nsweep = { eps = [0.1] }\n'
    )
    with pytest.raises(ConfigError, match="epochz.*expected TrainConfig fields"):
        load_preset(str(path)).train_config()


def test_two_groups_that_would_share_cell_names_are_refused_unless_one_has_a_variant(tmp_path):
    group = '[[group]]\ntables = []\nsetting = "whitebox_untargeted"\nattack = "pgd_margin"\n'
    head = 'name = "t"\nmodels = ["O:SOFTMAX:CE"]\n[samples]\npgd_margin = 10\n'
    twice = (
        head
        + group
        + "sweep = { eps = [0.1] }\n"
        + group
        + "params = { num_random_init = 4 }\nsweep = { eps = [0.1] }\n"
    )
    path = tmp_path / "t.toml"
    path.write_text(twice)
    with pytest.raises(ConfigError, match="both named .*variant"):
        expand(load_preset(str(path)), "mnist", {"O:SOFTMAX:CE": "k"})
    path.write_text(twice.replace("params = {", 'variant = "restarts=4"\nparams = {'))
    names = sorted(c.name for c in expand(load_preset(str(path)), "mnist", {"O:SOFTMAX:CE": "k"}))
    assert names == [
        "mnist/whitebox_untargeted/pgd_margin[eps=0.1, restarts=4]/O:SOFTMAX:CE",
        "mnist/whitebox_untargeted/pgd_margin[eps=0.1]/O:SOFTMAX:CE",
    ]


def test_a_preset_sets_a_kinds_parameters(tmp_path):
    """[model_params.<model>] sets that model's kind parameters, checked by the kind like any other."""
    from bench.errors import ConfigError
    from bench.matrix.plan import MatrixOptions, make_plan
    from tests.conftest import preset_text

    groups = [{"setting": "whitebox_untargeted", "attack": "fgsm", "sweep": {"eps": [0.1]}}]
    path = tmp_path / "p.toml"
    path.write_text(preset_text("p", ["lmcl"], {"fgsm": 10}, groups) + "[model_params.lmcl]\nlmcl_m = 0.5\n")
    plan = make_plan(MatrixOptions(dataset="mnist", preset=str(path)))
    assert list(plan.specs) == ["lmcl_s10_m0.5"] and plan.cells[0].model == "lmcl_s10_m0.5"
    path.write_text(preset_text("p", ["lmcl"], {"fgsm": 10}, groups) + "[model_params.lmcl]\nlmcl_m = 5\n")
    with pytest.raises(ConfigError, match=r"LMCL margin m=5.0 must be in \[0, 2\]"):
        make_plan(MatrixOptions(dataset="mnist", preset=str(path)))
