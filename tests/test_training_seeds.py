"""Training seeds (issue 14): a preset's ``training_seeds`` trains each model once per seed, each its own stored
model named ``<label>@s<seed>`` (models/seeds.py), and every seed's cells run on the same images. Plans are
checked without running anything; one tiny run (one model kind, two seeds, FGSM and a few PGD steps on 50
images) checks the stored models, the store and the results frame."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest
import torch
from click.testing import CliRunner

import bench
from bench.errors import ConfigError
from bench.matrix.plan import MatrixOptions, make_plan
from bench.results.store import read_records
from models.seeds import seeded_name, split_seeded_name
from models.spec import TrainConfig, make_spec
from tests.conftest import preset_text

CE, TANH = "O:SOFTMAX:CE", "R:TANH:MSE"
GROUPS = [
    {"setting": "whitebox_untargeted", "attack": "fgsm", "sweep": {"eps": [0.1, 0.3]}},
    {"setting": "whitebox_untargeted", "attack": "pgd", "sweep": {"eps": [0.1]}, "models": [TANH]},
    {"setting": "transfer", "attack": "mim", "sweep": {"eps": [0.1]}},
]
SAMPLES = {"fgsm": 50, "pgd": 50, "mim": 30}


def write_preset(tmp_path, name="seeded", models=(CE, TANH), groups=GROUPS, **more):
    path = tmp_path / f"{name}.toml"
    path.write_text(preset_text(name, list(models), SAMPLES, groups, **more))
    return path


def plan_of(preset, **options):
    return make_plan(MatrixOptions(dataset="mnist", preset=str(preset), **options))


# -- the naming rule -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "seed", "name"),
    [(CE, 1, "O:SOFTMAX:CE@s1"), ("lmcl_s10_m0.3", 2, "lmcl_s10_m0.3@s2"), ("hinge", 0, "hinge@s0")],
)
def test_a_seeded_name_is_the_label_then_at_s_then_the_seed_and_splits_back(label, seed, name):
    assert seeded_name(label, seed) == name
    assert split_seeded_name(name) == (label, seed)


@pytest.mark.parametrize("name", [CE, "lmcl_s10_m0.3", "hinge", "X@s01", "X@s", "@s1", "X@t1", "mine"])
def test_a_name_without_a_seed_written_as_seeded_name_writes_it_has_none(name):
    assert split_seeded_name(name) == (name, None)


@pytest.mark.parametrize(("label", "seed"), [(CE, -1), (CE, 1.0), (CE, True), ("", 1), ("O:SOFTMAX:CE@s1", 2)])
def test_seeded_name_refuses_what_it_could_not_split_back(label, seed):
    with pytest.raises(ConfigError, match="expected"):
        seeded_name(label, seed)


# -- the preset's training_seeds -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [([], "[]"), ([0, 0], "[0, 0]"), ([-1], "[-1]"), (["a"], "['a']"), (1.5, "1.5"), (3, "3"), ([1, True], "True")],
    ids=["empty", "repeated", "negative", "text", "fraction", "scalar", "boolean"],
)
def test_bad_training_seeds_are_refused_naming_the_file_key_and_value(tmp_path, value, shown):
    preset = write_preset(tmp_path, training_seeds=value)
    with pytest.raises(ConfigError) as error:
        plan_of(preset)
    message = str(error.value)
    assert "\n" not in message and str(preset) in message and "training_seeds" in message
    assert shown in message and "distinct whole numbers >= 0" in message


@pytest.mark.parametrize("seeds", [(), (0, 0), (-1,), ("a",)])
def test_bad_training_seeds_given_to_the_run_are_refused(tmp_path, seeds):
    with pytest.raises(ConfigError, match=r"--training-seeds .*expected a non-empty list of distinct"):
        plan_of(write_preset(tmp_path), training_seeds=seeds)


def test_each_seed_is_its_own_model_with_its_own_key(tmp_path):
    plan = plan_of(write_preset(tmp_path, training_seeds=[0, 1, 2]))
    assert set(plan.specs) == {f"{m}@s{s}" for m in (CE, TANH) for s in (0, 1, 2)}
    assert all(spec.train.seed == split_seeded_name(label)[1] for label, spec in plan.specs.items())
    assert len({spec.key() for spec in plan.specs.values()}) == 6
    unseeded = plan_of(write_preset(tmp_path, name="plain"))
    assert plan.specs[f"{CE}@s0"].key() == unseeded.specs[CE].key()  # seed 0 is the model a plain run trains
    assert {c.model_key for c in plan.cells} == {s.key() for s in plan.specs.values()}


def test_every_seeds_cells_ask_for_the_same_images(tmp_path):
    plan = plan_of(write_preset(tmp_path, training_seeds=[0, 1, 2]), seed=5)
    by_cell = defaultdict(dict)
    for c in plan.cells:
        base, seed = split_seeded_name(c.model)
        source = split_seeded_name(c.source)[0] if c.source else None
        by_cell[(c.setting, c.attack, c.value, base, source)][seed] = c
    assert len(by_cell) == 6  # fgsm x 2 eps x 2 models, pgd on R:TANH:MSE only, mim from CE to R:TANH:MSE
    for seeds in by_cell.values():
        assert set(seeds) == {0, 1, 2}
        assert {(c.seed, c.n_samples) for c in seeds.values()} == {(5, next(iter(seeds.values())).n_samples)}
        assert len({c.hash for c in seeds.values()}) == 3 and len({c.craft_key for c in seeds.values()}) == 3


def test_names_groups_and_transfer_sources_follow_the_seed(tmp_path):
    plan = plan_of(write_preset(tmp_path, training_seeds=[0, 1]))
    names = {c.name for c in plan.cells}
    assert "mnist/whitebox_untargeted/fgsm[eps=0.1]/O:SOFTMAX:CE@s1" in names
    assert "mnist/transfer/mim[eps=0.1]/O:SOFTMAX:CE@s0->R:TANH:MSE@s0" in names
    assert {c.model for c in plan.cells if c.attack == "pgd"} == {f"{TANH}@s0", f"{TANH}@s1"}  # models = [TANH]
    transfer = [c for c in plan.cells if c.setting == "transfer"]
    assert {(c.source, c.model) for c in transfer} == {(f"{CE}@s{s}", f"{TANH}@s{s}") for s in (0, 1)}
    assert all(c.source_key == plan.specs[c.source].key() for c in transfer)
    matrix = plan_of(write_preset(tmp_path, training_seeds=[0, 1]), settings=["transfer"], transfer_matrix=True)
    pairs = {(c.source, c.model) for c in matrix.cells}
    assert len(pairs) == 8 and all(split_seeded_name(s)[1] == split_seeded_name(t)[1] for s, t in pairs)


def test_models_takes_a_base_label_for_every_seed_or_a_seeded_name_for_one(tmp_path):
    preset = write_preset(tmp_path, training_seeds=[0, 1, 2])
    assert set(plan_of(preset, models=[TANH]).specs) == {f"{TANH}@s{s}" for s in (0, 1, 2)}
    one = plan_of(preset, models=[f"{CE}@s1", TANH])
    assert set(one.specs) == {f"{CE}@s1", *(f"{TANH}@s{s}" for s in (0, 1, 2))}
    assert {(c.source, c.model) for c in one.cells if c.setting == "transfer"} == {(f"{CE}@s1", f"{TANH}@s1")}
    with pytest.raises(ConfigError, match=r"'O:SOFTMAX:CE@s7' names training seed 7; this run trains seeds 0, 1, 2"):
        plan_of(preset, models=[f"{CE}@s7"])


def test_the_runs_training_seeds_replace_the_presets(tmp_path):
    plan = plan_of(write_preset(tmp_path, training_seeds=[0, 1, 2]), training_seeds=(3, 4))
    assert set(plan.specs) == {f"{m}@s{s}" for m in (CE, TANH) for s in (3, 4)}
    api = bench.plan_matrix("mnist", write_preset(tmp_path, name="plain"), training_seeds=[3, 4])
    assert set(api.specs) == set(plan.specs) and [c.hash for c in api.cells] == [c.hash for c in plan.cells]


@pytest.mark.parametrize("preset", ["paper", "vu2018"])
def test_one_training_seed_equal_to_the_presets_changes_no_name_hash_or_key(preset):
    plain = make_plan(MatrixOptions(dataset="mnist", preset=preset))
    one = make_plan(MatrixOptions(dataset="mnist", preset=preset, training_seeds=(0,)))
    assert [(c.name, c.hash, c.craft_key) for c in one.cells] == [(c.name, c.hash, c.craft_key) for c in plain.cells]
    assert {k: s.key() for k, s in one.specs.items()} == {k: s.key() for k, s in plain.specs.items()}
    assert not any(split_seeded_name(c.model)[1] is not None for c in plain.cells)


def test_a_network_of_your_own_may_not_take_a_seeded_name(tmp_path):
    from models.external import external_model

    network = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10))
    mine = external_model(network, "mine@s1", "mnist", (1, 28, 28), 10, None)
    with pytest.raises(ConfigError, match=r"'mine@s1' .*reads as a model trained with a seed"):
        plan_of(write_preset(tmp_path, training_seeds=[0, 1]), external=(mine,))


def test_the_command_line_takes_training_seeds_and_refuses_bad_ones(tmp_path):
    from bench.cli import main

    preset = write_preset(tmp_path, models=(CE,), groups=GROUPS[:1])
    preset.write_text(preset.read_text().replace("n_train = 3000", "n_train = 2500"))  # models no store holds
    args = ["matrix", "--dataset", "mnist", "--preset", str(preset), "--out", str(tmp_path / "results")]
    dry = CliRunner().invoke(main, [*args, "--dry-run", "--training-seeds", "0,1"])
    assert dry.exit_code == 0, dry.output
    assert "models: O:SOFTMAX:CE@s0, O:SOFTMAX:CE@s1" in dry.output and "for 2 models" in dry.output
    for bad, expected in (("0,0", "distinct"), ("0,x", "separated by commas"), ("-1", "distinct")):
        refused = CliRunner().invoke(main, [*args, "--dry-run", "--training-seeds", bad])
        assert refused.exit_code != 0 and "--training-seeds" in refused.output, refused.output
        assert expected in refused.output and "Traceback" not in refused.output, refused.output


# -- a tiny run: one model kind, two seeds -----------------------------------------------------------------------

TINY_GROUPS = [
    {"setting": "whitebox_untargeted", "attack": "fgsm", "sweep": {"eps": [0.1, 0.2]}},
    {"setting": "whitebox_untargeted", "attack": "pgd", "sweep": {"eps": [0.1]}},
]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """O:SOFTMAX:CE trained with seeds 0 and 1 (1 epoch on 1,000 images), FGSM and 5 PGD steps on 50 images."""
    folder = tmp_path_factory.mktemp("seeds")
    text = preset_text("tiny-seeds", [CE], {"fgsm": 50, "pgd": 50}, TINY_GROUPS, training_seeds=[0, 1])
    text = text.replace("epochs = 2", "epochs = 1").replace("n_train = 3000", "n_train = 1000")
    text += "[params.pgd]\nmax_iter = 5\n"
    (folder / "tiny-seeds.toml").write_text(text)
    run = bench.run_matrix("mnist", folder / "tiny-seeds.toml", out=folder / "results", progress=False)
    assert run.summary.done == 6 and not run.summary.failed
    return folder, bench.plan_matrix("mnist", folder / "tiny-seeds.toml"), run


def test_the_seeds_are_stored_as_models_of_their_own_with_different_weights(tiny_run):
    from models.store import ModelStore

    _, plan, _ = tiny_run
    store = ModelStore()
    first, second = (store.load(plan.specs[f"{CE}@s{s}"]) for s in (0, 1))
    assert first.spec.train.seed == 0 and second.spec.train.seed == 1 and first.spec.key() != second.spec.key()
    weights = zip(first.network.state_dict().values(), second.network.state_dict().values(), strict=True)
    assert any(a.is_floating_point() and not torch.equal(a, b) for a, b in weights)


def test_the_store_holds_both_seeds_on_the_same_images(tiny_run):
    folder, plan, _ = tiny_run
    records = [r for r in read_records(folder / "results") if r.setting == "whitebox_untargeted"]
    by_model = defaultdict(dict)
    for r in records:
        by_model[r.model][(r.attack, r.value)] = r
    assert set(by_model) == {f"{CE}@s0", f"{CE}@s1"}
    assert {r.model_key for r in records} == {s.key() for s in plan.specs.values()}
    s0, s1 = by_model[f"{CE}@s0"], by_model[f"{CE}@s1"]
    assert set(s0) == set(s1) == {("fgsm", 0.1), ("fgsm", 0.2), ("pgd", 0.1), ("worst_case", 0.1)}
    for cell in s0:
        assert s0[cell].n == s1[cell].n == 50 and (s0[cell].indices() == s1[cell].indices()).all()
    # the worst case is per seeded model: each combines its own seed's fgsm and pgd
    for seed, cells in ((0, s0), (1, s1)):
        components = cells[("worst_case", 0.1)].config["components"]
        assert all(re.search(rf"/{re.escape(CE)}@s{seed}$", name) for name in components) and len(components) == 2


def test_the_results_frame_tells_the_base_model_and_its_training_seed(tiny_run):
    folder, _, _ = tiny_run
    frame = bench.load_results(folder / "results")
    assert set(frame.base_model) == {CE}
    attack_cells = frame[frame.setting != "diagnostics"]
    assert sorted(attack_cells.training_seed.unique().tolist()) == [0, 1]
    assert (attack_cells.model == attack_cells.base_model + "@s" + attack_cells.training_seed.astype(str)).all()
    per_seed = frame[frame.attack == "fgsm"].groupby("training_seed").size().to_dict()
    assert per_seed == {0: 2, 1: 2}


def test_dask_gives_the_serial_records_for_every_seed(tiny_run, tmp_path):
    """The same preset as Dask tasks (models already stored by the serial run): the same records, cell by cell."""
    distributed = pytest.importorskip("distributed")
    folder, _, _ = tiny_run

    def outcomes(results) -> dict:
        return {r.name: (r.model_key, r.hits, r.n, r.per_example, r.image_indices) for r in read_records(results)}

    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as local:
        preset, address = folder / "tiny-seeds.toml", local.scheduler_address
        run = bench.run_matrix("mnist", preset, out=tmp_path / "dask", progress=False, scheduler=address)
    assert run.summary.done == 6 and not run.summary.failed
    on_dask = outcomes(tmp_path / "dask")
    assert on_dask == outcomes(folder / "results") and any(name.endswith(f"{CE}@s1") for name in on_dask)


def test_the_report_finds_the_kind_of_a_seeded_model():
    from dataclasses import replace

    from bench.reports.render import _kinds_used
    from tests.test_results import record

    seeded = [replace(record(name), model=model) for name, model in (("a", f"{TANH}@s1"), ("b", "lmcl_s10_m0.3@s0"))]
    assert _kinds_used(seeded) == {TANH, "lmcl"}


def test_the_clean_table_names_each_seed_and_says_which_kind_trained_behind_its_siblings():
    """Each seed's row carries its run label (O:SOFTMAX:CE@s1), and the line under the table names a kind whose mean
    clean accuracy over its seeds is more than half a point below the best kind's, and only such a kind."""
    from bench.reports.render import _clean_table
    from bench.results.store import Record

    def table(accuracies: dict[str, list[float]]) -> str:
        metas, records = [], []
        for kind, per_seed in accuracies.items():
            for seed, accuracy in enumerate(per_seed):
                spec = make_spec("mnist", kind, "cnn", TrainConfig(epochs=2, seed=seed))
                metas.append({"key": spec.key(), "name": spec.name, "spec": spec.to_dict()})
                metas[-1] |= {"clean_accuracy": accuracy, "n_test": 10000}
                records.append(Record(
                    cell_hash=f"h{seed}{kind}", name=f"mnist/whitebox_untargeted/fgsm[eps=0.1]/{kind}@s{seed}",
                    dataset="mnist", model=f"{kind}@s{seed}", model_key=spec.key(), setting="whitebox_untargeted",
                    source=None, attack="fgsm", param="eps", value=0.1, config={}, clean_accuracy=accuracy, n=10,
                ))  # fmt: skip
        return _clean_table("mnist", metas, {r.model_key for r in records}, records)

    close = table({CE: [0.990, 0.992], TANH: [0.988, 0.990]})  # means 0.991 and 0.989
    rows = [line.split("|")[1].strip() for line in close.splitlines() if line.startswith(("| O:", "| R:"))]
    assert rows == [f"{CE}@s0 [2 epochs] (cnn)", f"{CE}@s1 [2 epochs] (cnn)", f"{TANH}@s0 [2 epochs] (cnn)",
                    f"{TANH}@s1 [2 epochs] (cnn)"]  # fmt: skip
    assert f"the best is {CE}'s 0.9910; every kind is within 0.5 points of it." in close
    behind = table({CE: [0.990, 0.992], TANH: [0.980, 0.990]})  # TANH's mean 0.985: 0.6 points behind
    assert f"{TANH} (0.9850) trained more than 0.5 points below it" in behind and f"{CE} (" not in behind
