"""The kinds that change one factor of R:TANH:MSE at a time (docs/model-kinds.md): O:TANH:MSE (the representation),
R:TANH:CE (the loss), R:LINEAR:MSE (the saturating activation) and R:TANH:MSE_dN (the codeword length).

Their gradients and decision rules are checked with every kind in test_estimator.py; here: the names and store keys,
that each sibling shares what it does not vary, what attacks may see of each, and that each learns on MNIST."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from attacks_ext.margin_pgd import MarginPGD
from bench.errors import ConfigError
from bench.matrix.plan import MatrixOptions, make_plan
from bench.results.diagnostics import gradient_health
from bench.results.store import read_records
from models.codebook import ONE_HOT_SCALE
from models.estimator import make_estimator
from models.kinds import KINDS
from models.network import build_loss, build_network
from models.spec import make_spec
from models.zoo import obtain
from tests.conftest import preset_text, tiny_spec

NEW = ("O:TANH:MSE", "R:TANH:CE", "R:LINEAR:MSE")
CODEWORD_KINDS = ("R:TANH:MSE", "R:TANH:CE", "R:LINEAR:MSE")
COMMITTED_MNIST = Path(__file__).parent.parent / "reports" / "mnist" / "store"


def fresh(name: str, seed: int = 0):
    """(spec, network, estimator) of an untrained ``name``, initialised from ``seed``."""
    spec = tiny_spec(name)
    torch.manual_seed(seed)
    network = build_network(spec, (1, 28, 28), 10).eval()
    return spec, network, make_estimator(spec, network, (1, 28, 28), 10)


@pytest.mark.parametrize("kind", CODEWORD_KINDS)
@pytest.mark.parametrize("length", [16, 64, 256, 1024])
def test_a_codeword_length_is_named_with_its_d_suffix_both_ways(kind, length):
    spec = make_spec("mnist", f"{kind}_d{length}")
    assert spec.model == kind and spec.codeword_length == length
    assert spec.loss_label == f"{kind}_d{length}" and spec.name == f"mnist/cnn/{kind}_d{length}"
    assert make_spec("mnist", spec.loss_label).key() == spec.key()  # the label parses back to the same model
    assert make_spec("mnist", kind, codeword_length=length).key() == spec.key()  # --codeword-length agrees
    assert spec.key() != make_spec("mnist", kind).key()


def test_the_default_length_keeps_the_bare_name_and_the_committed_store_key():
    spec = make_spec("mnist", "R:TANH:MSE")
    assert spec.codeword_length == 128 and spec.loss_label == "R:TANH:MSE" and spec.name == "mnist/cnn/R:TANH:MSE"
    assert make_spec("mnist", "R:TANH:MSE_d128").key() == spec.key()
    assert make_spec("mnist", "tanh_mse_d64").key() == make_spec("mnist", "R:TANH:MSE_d64").key()  # aliases too
    assert spec.key() in {r.model_key for r in read_records(COMMITTED_MNIST)}


def test_a_codeword_length_below_the_classes_is_refused():
    with pytest.raises(ConfigError, match="codeword length 4 is below the number of classes"):
        make_spec("mnist", "R:TANH:MSE_d4")


def test_a_preset_names_lengths_as_models(tmp_path):
    groups = [{"setting": "whitebox_untargeted", "attack": "fgsm", "sweep": {"eps": [0.1]}}]
    path = tmp_path / "lengths.toml"
    path.write_text(preset_text("lengths", ["R:TANH:MSE", "R:TANH:MSE_d64"], {"fgsm": 10}, groups))
    plan = make_plan(MatrixOptions(dataset="mnist", preset=str(path)))
    assert list(plan.specs) == ["R:TANH:MSE", "R:TANH:MSE_d64"]
    assert [s.codeword_length for s in plan.specs.values()] == [128, 64]


def test_the_loss_and_activation_siblings_keep_r_tanh_mse_s_codebook_and_initialisation(mnist_small):
    x, y = mnist_small.x[:16], mnist_small.y[:16]
    mse_spec, mse_net, _ = fresh("R:TANH:MSE")
    ce_spec, ce_net, _ = fresh("R:TANH:CE")
    linear_spec, linear_net, _ = fresh("R:LINEAR:MSE")
    assert mse_spec.codebook == ce_spec.codebook == linear_spec.codebook  # the same secret codewords
    with torch.no_grad():
        assert torch.equal(ce_net(x), mse_net(x))  # R:TANH:CE: the same head, the same scores...
        assert not torch.allclose(build_loss(ce_spec)(ce_net(x), y), build_loss(mse_spec)(mse_net(x), y))  # ...loss
        pre = linear_net.head.fc(linear_net.backbone(x))
        assert torch.equal(linear_net.raw_outputs(x), pre)  # R:LINEAR:MSE: no tanh...
        torch.testing.assert_close(torch.tanh(pre), mse_net.raw_outputs(x))  # ...where R:TANH:MSE has one


def test_o_tanh_mse_keeps_the_tanh_head_with_one_hot_targets(mnist_small):
    spec, network, est = fresh("O:TANH:MSE")
    targets = ONE_HOT_SCALE * (2 * torch.eye(10) - 1)
    assert spec.codebook is None and spec.codeword_length is None  # fixed targets, no secret key
    assert torch.equal(network.head.codebook, targets) and network.head.tanh
    x = mnist_small.x[:16]
    with torch.no_grad():
        outputs, rows = est.target_outputs(x)
        assert outputs.shape == (16, 10) and torch.equal(rows, targets)
        torch.testing.assert_close(network(x), -torch.cdist(outputs, targets))


def test_the_views_say_which_kinds_the_pre_tanh_attack_may_run_on(tmp_path):
    assert all("codewords" in KINDS.get(name).views for name in NEW)
    assert {name for name in NEW if "pretanh" in KINDS.get(name).views} == {"O:TANH:MSE", "R:TANH:CE"}
    groups = [{"setting": "whitebox_untargeted", "attack": "pgd_margin_pretanh", "sweep": {"eps": [0.1]}}]
    path = tmp_path / "pretanh.toml"
    path.write_text(preset_text("pretanh", ["R:TANH:CE", "R:LINEAR:MSE"], {"pgd_margin_pretanh": 10}, groups))
    with pytest.raises(ConfigError, match="needs the model's 'pretanh' view, and R:LINEAR:MSE offers"):
        make_plan(MatrixOptions(dataset="mnist", preset=str(path)))


def test_the_pre_tanh_attack_refuses_a_linear_head_and_decides_as_the_model_on_tanh_heads(mnist_small):
    with pytest.raises(ValueError, match="view='pretanh' needs .* its codebook is not behind a tanh"):
        MarginPGD(fresh("R:LINEAR:MSE")[2], view="pretanh")
    x = mnist_small.x[:8]
    for name in ("O:TANH:MSE", "R:TANH:CE"):
        _, network, est = fresh(name)
        attack = MarginPGD(est, eps=0.1, eps_step=0.05, max_iter=2, num_random_init=1, view="pretanh")
        with torch.no_grad():
            surrogate, decision = attack._views(x)
            torch.testing.assert_close(decision, network(x))  # success is judged on the model's own scores
        assert surrogate.shape == (8, 10) and torch.isfinite(surrogate).all()
        np.random.seed(0)
        x_adv = attack.generate(x.numpy(), y=mnist_small.y[:8].numpy())
        assert np.abs(x_adv - x.numpy()).max() <= 0.1 + 1e-6


def test_a_linear_output_is_never_counted_as_saturated(mnist_small):
    x, y = mnist_small.x[:8], mnist_small.y[:8]
    for name, saturates in (("R:TANH:MSE", True), ("R:LINEAR:MSE", False)):
        _, network, est = fresh(name)
        with torch.no_grad():
            network.head.fc.weight.mul_(1e4)  # outputs far beyond +-1: tanh flat, a linear output just large
        assert bool(gradient_health(est, x, y)["output_saturated"].all()) is saturates, name


@pytest.fixture(scope="module")
def short_length_model(store):
    return obtain(tiny_spec("R:TANH:MSE_d16"), store, progress=False)


@pytest.mark.parametrize("name", NEW)
def test_each_new_kind_learns_mnist(name, tiny_models):
    """2 epochs on 3,000 MNIST images (the fixture's tiny recipe); chance is 0.1. O:TANH:MSE with targets +-1 stayed
    at 0.098 here (every tanh output saturated at -1), which this test would catch."""
    stored = tiny_models[name]
    assert stored.spec.model == name and stored.meta["n_test"] == 10_000
    assert stored.meta["clean_accuracy"] > 0.8, f"{name}: {stored.meta['clean_accuracy']:.3f}"


def test_a_short_codeword_length_learns_and_loads_with_its_own_codebook(short_length_model):
    assert short_length_model.network.head.codebook.shape == (10, 16)
    assert short_length_model.spec.loss_label == "R:TANH:MSE_d16"
    assert short_length_model.meta["clean_accuracy"] > 0.8
