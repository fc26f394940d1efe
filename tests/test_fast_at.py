"""FGSM-RS adversarial training (Wong, Rice and Kolter 2020): the step, the one-cycle learning rate, the guard
against catastrophic overfitting, determinism and resume, the store keys of the default PGD recipe, and that a
short FGSM-RS training on real MNIST resists PGD at eps 0.3 where a plainly trained model does not."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from bench.errors import ConfigError
from models import fast_at, training
from models.fast_at import cyclic, pgd_accuracy
from models.network import build_loss, build_network
from models.pgd import fgsm_rs
from models.spec import AdversarialTraining, ModelSpec, TrainConfig, make_spec
from models.training import train_model

FGSM = AdversarialTraining(eps=0.3, eps_step=0.1, max_iter=3, method="fgsm_rs")  # a cheap guard PGD for tests
VU2018 = TrainConfig(epochs=1, n_train=40000, batch_size=50, lr=1e-4, schedule="constant")


def _network(model: str = "O:SOFTMAX:CE"):
    spec = make_spec("mnist", model, "cnn", TrainConfig())
    torch.manual_seed(0)
    return build_network(spec, (1, 28, 28), 10), build_loss(spec)


def _fgsm_rs_by_hand(network, loss, x, y, seed: int, clip_start: bool) -> torch.Tensor:
    """A uniform start drawn from the same seed, clipped to [0, 1] or not, one alpha-sign step, projected."""
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(seed))
    lower, upper = (x - 0.3).clamp_min(0), (x + 0.3).clamp_max(1)
    start = x + (2 * noise - 1) * 0.3
    start = (torch.minimum(torch.maximum(start, lower), upper) if clip_start else start).requires_grad_(True)
    (grad,) = torch.autograd.grad(loss.per_example(network(start), y).sum(), start)
    return torch.minimum(torch.maximum(start.detach() + 0.375 * grad.sign(), lower), upper)


def test_fgsm_rs_is_one_signed_step_from_a_seeded_start_inside_the_ball_and_the_box(mnist_small):
    network, loss = _network()
    x, y = mnist_small.x[:32], mnist_small.y[:32]
    x_adv = fgsm_rs(network, loss, x, y, 0.3, 0.375, generator=torch.Generator().manual_seed(7))
    assert (x_adv - x).abs().max() <= 0.3 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    assert torch.equal(x_adv, _fgsm_rs_by_hand(network, loss, x, y, 7, clip_start=False))  # Wong et al.'s start
    clipped = fgsm_rs(network, loss, x, y, 0.3, 0.375, generator=torch.Generator().manual_seed(7), clip_start=True)
    assert torch.equal(clipped, _fgsm_rs_by_hand(network, loss, x, y, 7, clip_start=True))
    # on MNIST the clipped start lands more pixels on the ball's edge (the step alpha > eps erases the start)
    on_edge = [float(((a - x).abs() > 0.3 - 1e-6).float().mean()) for a in (x_adv, clipped)]
    assert on_edge[1] > on_edge[0]
    again = fgsm_rs(network, loss, x, y, 0.3, 0.375, generator=torch.Generator().manual_seed(7))
    other = fgsm_rs(network, loss, x, y, 0.3, 0.375, generator=torch.Generator().manual_seed(8))
    assert torch.equal(x_adv, again) and not torch.equal(x_adv, other)
    assert loss.per_example(network(x_adv), y).sum() > loss.per_example(network(x), y).sum()


def test_fgsm_rs_models_stored_before_clip_start_keep_their_keys_and_read_back_clipped():
    clipped = AdversarialTraining(method="fgsm_rs", clip_start=True)
    assert "clip_start" not in clipped.to_dict()  # the stored form of every FGSM-RS model trained before the option
    assert AdversarialTraining.from_stored(clipped.to_dict()) == clipped
    wong = AdversarialTraining(method="fgsm_rs")
    assert wong.clip_start is False and wong.to_dict()["clip_start"] is False
    assert AdversarialTraining.from_stored(wong.to_dict()) == wong
    with pytest.raises(ConfigError, match="clip_start=0.5 belongs to method fgsm_rs"):
        AdversarialTraining(clip_start=0.5)
    with pytest.raises(ConfigError, match="clip_start='yes' must be true or false"):
        AdversarialTraining(method="fgsm_rs", clip_start="yes")


def test_the_recipe_defaults_to_wong_et_al_and_refuses_what_does_not_fit():
    a = AdversarialTraining(method="fgsm_rs")
    assert (a.eps, a.alpha, a.guard_drop) == (0.3, 0.375, 0.2)
    assert a.passes == 1 + 41 / training.CURVE_EVERY  # one FGSM step, and the guard's PGD-40 on a batch per point
    assert AdversarialTraining().passes == 40 and AdversarialTraining().alpha is None
    with pytest.raises(ConfigError, match="method='fgsm'; expected pgd or fgsm_rs"):
        AdversarialTraining(method="fgsm")
    with pytest.raises(ConfigError, match="alpha=0.4 belongs to method fgsm_rs"):
        AdversarialTraining(alpha=0.4)
    with pytest.raises(ConfigError, match="unknown; expected some of eps"):
        TrainConfig(adversarial={"method": "fgsm_rs", "step": 0.1})
    with pytest.raises(ConfigError, match="schedule='triangle'"):
        TrainConfig(schedule="triangle")


def test_the_cyclic_rate_rises_to_its_peak_at_two_fifths_and_falls_to_zero():
    factor = cyclic(10)
    assert [factor(k) for k in range(10)] == pytest.approx([0.25, 0.5, 0.75, 1, 5 / 6, 2 / 3, 0.5, 1 / 3, 1 / 6, 0])
    spec = make_spec("mnist", "hinge", "cnn", TrainConfig(lr=1e-2, schedule="cyclic"))
    network, _ = _network("hinge")
    optimizer = torch.optim.Adam(network.parameters(), lr=spec.train.lr)
    scheduler = training._schedule(optimizer, "cyclic", 10)
    rates = []
    for _ in range(10):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([1e-2 * factor(k) for k in range(10)])


def test_pgd_keys_are_unchanged_and_fgsm_rs_is_in_the_key_only_when_chosen():
    """The store keys of vu2018's PGD-40 models (and of a plain model) as they were before the method existed."""
    pgd = replace(VU2018, adversarial=AdversarialTraining())
    keys = {m: make_spec("mnist", m, "cnn", pgd).key() for m in ("hinge", "O:SOFTMAX:CE", "lmcl_s10_m0.3")}
    assert keys == {
        "hinge": "d5a202c2642de1cb",
        "O:SOFTMAX:CE": "19a47e8c8fcc9e21",
        "lmcl_s10_m0.3": "06b531620b0bc48a",
    }
    assert make_spec("mnist", "O:SOFTMAX:CE", "cnn").key() == "d082142d37428386"
    spec = make_spec("mnist", "hinge", "cnn", pgd)
    assert set(spec.to_dict()["train"]["adversarial"]) == {"eps", "eps_step", "max_iter"}
    fast = make_spec("mnist", "hinge", "cnn", TrainConfig(schedule="cyclic", adversarial={"method": "fgsm_rs"}))
    adv = fast.to_dict()["train"]["adversarial"]
    assert adv["method"] == "fgsm_rs" and adv["alpha"] == 0.375 and adv["guard_drop"] == 0.2
    assert ModelSpec.from_dict(fast.to_dict()) == fast and fast.key() != spec.with_train(schedule="cyclic").key()
    assert fast.name == "mnist/cnn+fgsm_rs_at/hinge" and spec.name == "mnist/cnn+pgd_at/hinge"


def test_fgsm_rs_training_is_deterministic_for_a_seed_and_records_the_guard(mnist_test):
    train, test = mnist_test.subset(256, seed=0), mnist_test.subset(50, seed=1)
    config = TrainConfig(epochs=1, n_train=256, batch_size=64, seed=5, schedule="cyclic", adversarial=FGSM)
    spec = make_spec("mnist", "lmcl", "cnn", config)
    a, b = (train_model(spec, train, test, progress=False) for _ in range(2))
    c = train_model(spec.with_train(seed=6), train, test, progress=False)
    sa, sb, sc = (r.network.state_dict() for r in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa) and a.curve == b.curve
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert [p["step"] for p in a.curve] == [4] and 0 <= a.curve[0]["pgd_accuracy"] <= 1


def _scripted(monkeypatch, accuracies: list[float], weights: list[dict]) -> None:
    """The guard's PGD check replaced by a script of accuracies; the weights it saw at each check are kept."""

    def fake(network, loss, x, y, adversarial, generator):
        weights.append({k: v.detach().clone() for k, v in network.state_dict().items()})
        return accuracies.pop(0)

    monkeypatch.setattr(fast_at, "pgd_accuracy", fake)


def _small_fgsm(mnist_test, epochs: int = 2):
    config = TrainConfig(epochs=epochs, n_train=128, batch_size=32, schedule="cyclic", adversarial=FGSM)
    spec = make_spec("mnist", "O:SOFTMAX:CE", "cnn", config)
    return spec, mnist_test.subset(128, seed=0), mnist_test.subset(50, seed=1)


def _same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def test_the_guard_stops_a_collapse_and_keeps_the_last_good_weights(mnist_test, monkeypatch):
    """A check every step (8 steps); the PGD accuracy climbs 0.5, 0.6, then falls to 0 at step 3: the training
    stops there with the weights of step 2. A fall of 0.15 (under Wong et al.'s 0.2) stops nothing."""
    spec, train, test = _small_fgsm(mnist_test)
    monkeypatch.setattr(training, "CURVE_EVERY", 1)
    seen: list[dict] = []
    _scripted(monkeypatch, [0.5, 0.6, 0.0], seen)
    result = train_model(spec, train, test, progress=False)
    assert [p["step"] for p in result.curve] == [1, 2, 3] and result.curve[-1]["restored_step"] == 2
    assert [p["pgd_accuracy"] for p in result.curve] == [0.5, 0.6, 0.0]
    kept = result.network.state_dict()
    assert _same(kept, seen[1]) and not _same(kept, seen[2])
    seen = []
    _scripted(monkeypatch, [0.5, 0.6, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7], seen)
    result = train_model(spec, train, test, progress=False)
    assert len(result.curve) == 8 and not any("restored_step" in p for p in result.curve)
    assert not _same(result.network.state_dict(), seen[1])


def test_with_two_checks_in_a_row_a_swing_passes_and_a_fall_that_holds_stops(mnist_test, monkeypatch):
    """guard_checks = 2, a check every step (8 steps): 0.35 after 0.6 is a fall, but 0.65 next is back, so it goes
    on; 0.3 then 0.2 fall twice below 0.65: stopped at step 6 with the weights of step 4. A fall at the last step,
    where no check follows, stops it too. guard_checks = 1 is Wong et al.'s guard and keeps the keys it had."""
    spec, train, test = _small_fgsm(mnist_test)
    two = replace(spec.train.adversarial, guard_checks=2)
    spec = spec.with_train(adversarial=two)
    monkeypatch.setattr(training, "CURVE_EVERY", 1)
    seen: list[dict] = []
    _scripted(monkeypatch, [0.5, 0.6, 0.35, 0.65, 0.3, 0.2], seen)
    result = train_model(spec, train, test, progress=False)
    assert [p["step"] for p in result.curve] == [1, 2, 3, 4, 5, 6] and result.curve[-1]["restored_step"] == 4
    assert not any("restored_step" in p for p in result.curve[:-1])
    assert _same(result.network.state_dict(), seen[3]) and not _same(result.network.state_dict(), seen[4])
    seen = []
    _scripted(monkeypatch, [0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.1], seen)
    result = train_model(spec, train, test, progress=False)
    assert (
        len(result.curve) == 8
        and result.curve[-1]["restored_step"] == 7
        and _same(result.network.state_dict(), seen[6])
    )
    one = AdversarialTraining(method="fgsm_rs")
    assert replace(one, guard_checks=1).to_dict() == one.to_dict() and "guard_checks" not in one.to_dict()
    assert two.to_dict()["guard_checks"] == 2
    with pytest.raises(ConfigError, match="guard_checks=0"):
        AdversarialTraining(method="fgsm_rs", guard_checks=0)
    with pytest.raises(ConfigError, match="guard_checks=2 belongs to method fgsm_rs"):
        AdversarialTraining(guard_checks=2)


def test_an_interrupted_fgsm_rs_training_resumes_its_guard(mnist_test, tmp_path, monkeypatch):
    """Checks every 2 steps; killed after the checkpoint of step 4 (written only just after a check that passed),
    resumed, the guard sees the collapse at step 6 and puts back step 4's weights: those of the run never killed."""
    from models import checkpoint

    spec, train, test = _small_fgsm(mnist_test)
    monkeypatch.setattr(training, "CURVE_EVERY", 2)
    seen: list[dict] = []
    _scripted(monkeypatch, [0.5, 0.6, 0.0], seen)
    whole = train_model(spec, train, test, progress=False)
    assert whole.curve[-1]["restored_step"] == 4 and _same(whole.network.state_dict(), seen[1])
    real_save, saved_at = checkpoint.save, []

    def save_then_die(folder, key, network, optimizer, generator, order, progress):
        real_save(folder, key, network, optimizer, generator, order, progress)
        saved_at.append(progress.epoch * 4 + progress.batch)
        if len(saved_at) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(training.checkpoint, "save", save_then_die)
    _scripted(monkeypatch, [0.5, 0.6], [])
    with pytest.raises(KeyboardInterrupt):
        train_model(spec, train, test, progress=False, checkpoint_dir=tmp_path, checkpoint_every=0)
    assert saved_at == [2, 4]
    monkeypatch.setattr(training.checkpoint, "save", real_save)
    _scripted(monkeypatch, [0.0], [])
    resumed = train_model(spec, train, test, progress=False, checkpoint_dir=tmp_path, checkpoint_every=0)
    assert resumed.curve == whole.curve and _same(resumed.network.state_dict(), whole.network.state_dict())


def test_a_short_fgsm_rs_training_resists_pgd_at_eps_0_3_where_plain_training_does_not(mnist_test):
    """60 steps of batch 50 on 1,000 real MNIST training images with Wong et al.'s MNIST recipe (eps 0.3, alpha
    0.375, one cycle peaking at Adam 5e-3), against the same training without the attack: PGD-20 (step 0.02) at
    eps 0.3 on 200 test images. Measured: 0.25 against 0.00, at a clean accuracy of 0.87 against 0.95."""
    from bench.data.datasets import load

    train, test = load("mnist", "train").subset(1000, seed=0), mnist_test.subset(200, seed=1)
    config = TrainConfig(epochs=3, n_train=1000, batch_size=50, lr=5e-3, schedule="cyclic")
    evaluation = AdversarialTraining(eps=0.3, eps_step=0.02, max_iter=20)
    robust = {}
    for name, adversarial in (("plain", None), ("fgsm_rs", AdversarialTraining(method="fgsm_rs"))):
        spec = make_spec("mnist", "O:SOFTMAX:CE", "cnn", replace(config, adversarial=adversarial))
        result = train_model(spec, train, test, progress=False)
        assert result.clean_accuracy > 0.8, (name, result.clean_accuracy)
        generator = torch.Generator().manual_seed(0)
        robust[name] = pgd_accuracy(result.network, build_loss(spec), test.x, test.y, evaluation, generator)
    assert robust["plain"] < 0.03 and robust["fgsm_rs"] > robust["plain"] + 0.1, robust


def test_the_training_section_shows_the_guards_pgd_accuracy_and_where_it_stopped(tmp_path):
    """A hand-made FGSM-RS curve that climbs, plateaus and collapses at step 400 (weights of step 300 kept), beside
    a PGD-40 model: the table reads PGD-train accuracy from the guard's check, not from the FGSM-RS examples."""
    from bench.reports.training import training_section

    fast = make_spec("mnist", "hinge", "cnn", TrainConfig(schedule="cyclic", adversarial={"method": "fgsm_rs"}))
    pgd = make_spec("mnist", "O:SOFTMAX:CE", "cnn", TrainConfig(adversarial=AdversarialTraining()))
    points = [(100, 0.40, 0.31), (200, 0.80, 0.72), (300, 0.85, 0.74), (400, 0.99, 0.02)]
    curve = [{"step": s, "loss": 1.0, "train_accuracy": f, "pgd_accuracy": p} for s, f, p in points]
    curve[-1]["restored_step"] = 300
    metas = [
        {"name": fast.name, "spec": fast.to_dict(), "curve": curve, "train_seconds": 60, "clean_accuracy": 0.97},
        {
            "name": pgd.name,
            "spec": pgd.to_dict(),
            "curve": [
                {"step": 100, "loss": 2.0, "train_accuracy": 0.06},
                {"step": 200, "loss": 1.5, "train_accuracy": 0.2},
            ],
            "train_seconds": 600,
            "clean_accuracy": 0.9,
        },
    ]
    text = training_section(metas, tmp_path)
    row = next(line for line in text.splitlines() if line.startswith("| hinge"))
    assert "FGSM-RS alpha 0.375, eps 0.3 (guard: PGD k=40, step 0.01, drop 0.2)" in row
    assert "stopped by the guard at step 400, weights of step 300 kept" in row
    assert "0.310 (FGSM-RS 0.400" in row and "0.740 (FGSM-RS 0.850" in row  # the kept weights' check, not 0.02
    row = next(line for line in text.splitlines() if line.startswith("| O:SOFTMAX:CE"))
    assert "PGD k=40, step 0.01, eps 0.3" in row and "0.200 (loss 1.500)" in row
    assert (tmp_path / "plots" / "training_curve.png").is_file()


def test_the_training_section_puts_each_models_pgd_accuracy_at_eps_0_3_beside_madry_et_al_s(tmp_path):
    """Hand-made PGD cells at eps 0.3: an interval that reaches 0.89-0.92 is within, one under it is below and says
    how long the model trained and that the guard stopped it; cells at another eps or setting are not read."""
    from bench.reports.training import training_section
    from bench.results.store import Record

    fast = make_spec("mnist", "hinge", "cnn", TrainConfig(schedule="cyclic", adversarial={"method": "fgsm_rs"}))
    pgd = make_spec("mnist", "O:SOFTMAX:CE", "cnn", TrainConfig(adversarial=AdversarialTraining()))
    stopped = [{"step": 300, "loss": 1.0, "train_accuracy": 0.9, "pgd_accuracy": 0.7}]
    stopped.append({"step": 400, "loss": 1.0, "train_accuracy": 0.99, "pgd_accuracy": 0.0, "restored_step": 300})
    metas = [
        {
            "key": "k-fast",
            "name": fast.name,
            "spec": fast.to_dict(),
            "curve": [{"step": 6000, "loss": 0.1, "train_accuracy": 0.97, "pgd_accuracy": 0.9}],
            "train_seconds": 60,
            "clean_accuracy": 0.98,
        },
        {
            "key": "k-pgd",
            "name": pgd.name,
            "spec": pgd.to_dict(),
            "curve": stopped,
            "train_seconds": 600,
            "clean_accuracy": 0.9,
        },
    ]

    def cell(key, model, setting, eps, rate, low, high):
        config = {"params": {"eps": eps, "eps_step": 0.01, "max_iter": 100}}
        return Record(
            f"h-{key}-{setting}-{eps}",
            "n",
            "mnist",
            model,
            key,
            setting,
            None,
            "pgd",
            "eps",
            eps,
            config,
            rate=rate,
            ci_low=low,
            ci_high=high,
            n=1000,
        )

    worst = cell("k-fast", "hinge", "whitebox_untargeted", 0.3, 0.75, 0.72, 0.78)
    worst.attack = "worst_case"
    records = [
        worst,
        cell("k-fast", "hinge", "whitebox_untargeted", 0.3, 0.905, 0.886, 0.922),
        cell("k-fast", "hinge", "whitebox_untargeted", 0.1, 0.2, 0.18, 0.22),
        cell("k-pgd", "O:SOFTMAX:CE", "whitebox_untargeted", 0.3, 0.35, 0.32, 0.38),
        cell("k-pgd", "O:SOFTMAX:CE", "transfer", 0.3, 0.95, 0.93, 0.96),
    ]
    text = training_section(metas, tmp_path, records)
    line = next(x for x in text.splitlines() if x.startswith("- **hinge**"))
    assert "PGD-100 accuracy at eps 0.3 0.905 [0.886, 0.922] on 1000 test images, clean 0.9800: within" in line
    assert line.endswith(
        "Its worst case over every attack at eps 0.3: 0.750 [0.720, 0.780] on 1000 images, below its PGD accuracy: "
        "PGD on its loss overstates its robustness, and by the worst case it is below Madry et al.'s region."
    )
    line = next(x for x in text.splitlines() if x.startswith("- **O:SOFTMAX:CE**"))
    assert "0.350 [0.320, 0.380]" in line and "below Madry et al.'s 0.89-0.92" in line
    assert "trained 400 steps (0.4% of vu2018's), stopped by the guard at step 400" in line
    assert "0.89-0.92" not in training_section(metas, tmp_path)  # without records, no comparison


def test_the_vu2018_fast_preset_trains_wong_et_al_s_recipe_and_runs_vu2018_s_groups():
    from pathlib import Path

    from bench.matrix.plan import MatrixOptions, make_plan
    from bench.matrix.preset import load_preset

    path = str(Path(__file__).parent.parent / "bench" / "matrix" / "presets" / "vu2018_fast.toml")
    fast, vu2018 = load_preset(path), load_preset("vu2018")
    guarded = AdversarialTraining(method="fgsm_rs", guard_checks=2)  # Wong et al.'s, the fall held over two checks
    assert fast.train_config() == TrainConfig(
        epochs=10, batch_size=100, lr=5e-3, schedule="cyclic", adversarial=guarded
    )
    assert fast.groups == vu2018.groups and fast.samples == vu2018.samples
    plan = make_plan(MatrixOptions(dataset="mnist", preset=path))
    assert sorted(s.name for s in plan.specs.values()) == [
        "mnist/cnn+fgsm_rs_at/O:SOFTMAX:CE",
        "mnist/cnn+fgsm_rs_at/hinge",
        "mnist/cnn+fgsm_rs_at/lmcl_s10_m0.3",
    ]


def test_the_clean_table_names_each_models_recipe_and_compares_both_with_vu2018_s_pgd_trained_numbers():
    """An FGSM-RS model reads cnn+fgsm_rs_at, a PGD one cnn+pgd_at; both are set beside vu2018 Table II's clean
    accuracy of its PGD-trained model of the same loss, the only adversarial training the paper published."""
    from bench.reports.reference import lookup
    from bench.reports.render import _clean_table

    fast = make_spec("mnist", "hinge", "cnn", TrainConfig(schedule="cyclic", adversarial={"method": "fgsm_rs"}))
    pgd = make_spec("mnist", "hinge", "cnn", TrainConfig(adversarial=AdversarialTraining()))
    metas = [
        {"key": s.key(), "name": s.name, "spec": s.to_dict(), "clean_accuracy": 0.97, "n_test": 10000}
        for s in (fast, pgd)
    ]
    text = _clean_table("mnist", metas, {fast.key(), pgd.key()}, [])
    rows = [line for line in text.splitlines() if line.startswith("| hinge")]
    assert len(rows) == 2 and "(cnn+fgsm_rs_at)" in rows[0] and "(cnn+pgd_at)" in rows[1]
    paper = lookup("vu2018:II", "clean", "mnist", "hinge", "none", "", None, arch="cnn+pgd_at")
    papers = [float(row.split("|")[4]) for row in rows]  # columns: model, measured, images, paper, delta
    assert paper is not None and papers == [pytest.approx(paper, abs=0.005)] * 2


def test_a_model_without_stored_metadata_is_called_adversarially_trained_only_where_its_cells_say_so():
    """vu2018 Tables II and III hold only adversarially trained models: a model whose cells carry those tags is one,
    even where the store lacks its metadata; a model of the papers' other tables is not."""
    from bench.reports.render import _clean_table
    from bench.results.store import Record

    def record(model: str, tables: list[str]) -> Record:
        return Record(
            cell_hash=f"h-{model}", name=f"mnist/whitebox_untargeted/pgd[eps=0.3]/{model}", dataset="mnist",
            model=model, model_key=f"key-{model}", setting="whitebox_untargeted", source=None, attack="pgd",
            param="eps", value=0.3, config={"tables": tables}, clean_accuracy=0.9, n=100,
        )  # fmt: skip

    adversarial = _clean_table("mnist", [], {"key-hinge"}, [record("hinge", ["vu2018:II", "robustness"])])
    assert "### vu2018 Table II: clean test accuracy of the adversarially trained models" in adversarial
    assert "hinge (adversarially trained, as its vu2018:II cells say;" in adversarial
    for tables in (["saito2019:3"], ["vu2018:II", "vu2018:III-A"]):  # the second: how older stores tagged PGD k=100
        plain = _clean_table("mnist", [], {"key-hinge"}, [record("hinge", tables)])
        assert "### saito2019 Table 4: clean test accuracy" in plain and "adversarially" not in plain
