"""Your own network, wrapped as it is: checked on one image, keyed by its code, weights and loss, and every bad
input refused in one line that names it."""

from __future__ import annotations

import functools

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from bench.errors import ConfigError, StoreError
from models.external import external_model, from_factory
from models.losses import hinge

SHAPE = (1, 28, 28)


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))


class NoWeights(nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :10]


class Broken(nn.Module):
    def forward(self, x):
        raise RuntimeError("boom")


def small() -> nn.Module:
    torch.manual_seed(0)
    return Small()


def wrap(module, loss=None, label="mine"):
    return external_model(module, label, "mnist", SHAPE, 10, loss)


def test_any_module_with_one_score_per_class_is_accepted_even_without_weights():
    assert wrap(NoWeights()).key().startswith("ext-")
    est = wrap(small(), "hinge").estimator()
    assert est.predict(torch.zeros(2, *SHAPE).numpy()).shape == (2, 10)


def test_bad_modules_are_refused_by_name():
    with pytest.raises(ConfigError, match="model 'mine' failed on one zero mnist image.*boom"):
        wrap(Broken())
    with pytest.raises(ConfigError, match=r"returns \(1, 784\).*expected \(1, 10\)"):
        wrap(nn.Flatten())
    with pytest.raises(ConfigError, match="is a str; expected a torch.nn.Module"):
        wrap("not a module")


def test_losses_that_need_their_models_parameters_are_refused():
    with pytest.raises(ConfigError, match="loss 'lmcl' cannot be used alone; expected one of: cross_entropy"):
        wrap(small(), "lmcl")
    with pytest.raises(ConfigError, match="loss 'nope'"):
        wrap(small(), "nope")


def test_the_key_follows_weights_and_loss_with_its_bound_arguments():
    base = wrap(small()).key()
    assert wrap(small()).key() == base  # the same weights and loss
    changed = small()
    with torch.no_grad():
        changed.fc.bias.add_(1.0)
    assert wrap(changed).key() != base
    assert wrap(small(), hinge).key() != base
    two = wrap(small(), functools.partial(hinge, margin=2.0)).key()
    five = wrap(small(), functools.partial(hinge, margin=5.0)).key()
    assert two != five


def test_a_factory_and_safetensors_weights(tmp_path, monkeypatch):
    weights = tmp_path / "small.safetensors"
    save_file({k: v.contiguous() for k, v in small().state_dict().items()}, weights)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "mynets.py").write_text(
        "from torch import nn\n\n"
        "class Small(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(784, 10)\n\n"
        "    def forward(self, x):\n        return self.fc(x.flatten(1))\n\n"
        "def small():\n    return Small()\n\n"
        "def broken():\n    raise ValueError('no GPU here')\n"
    )
    network, origin = from_factory("mynets:small", weights)
    assert torch.equal(network.fc.bias, small().fc.bias) and origin == "mynets:small + small.safetensors"
    with pytest.raises(ConfigError, match="expected package.module:function"):
        from_factory("mynets", weights)
    with pytest.raises(ConfigError, match="'mynets:broken' failed to build the network: no GPU here"):
        from_factory("mynets:broken", weights)
    pickled = tmp_path / "small.pt"
    torch.save(small().state_dict(), pickled)
    with pytest.raises(StoreError, match="expected an existing .safetensors file"):
        from_factory("mynets:small", pickled)


def test_your_own_network_runs_in_the_cells_and_has_its_row_in_the_clean_table(tmp_path):
    import bench
    from tests.conftest import tiny_preset

    preset = tiny_preset(tmp_path, ["O:SOFTMAX:CE"], "fgsm")  # with your network, the preset's models are left out
    run = bench.evaluate(small(), "mnist", preset, name="mine", out=tmp_path / "r", reports_dir=tmp_path / "rep")
    assert run.summary.done == 1 and not run.summary.failed
    readme = (tmp_path / "rep" / "mnist" / "README.md").read_text()
    clean = readme.split("### saito2019 Table 4")[1].split("###")[0]
    (row,) = [line for line in clean.splitlines() if line.startswith("| mine")]
    label, measured, images = (cell.strip() for cell in row.split("|")[1:4])
    assert "no stored model metadata" in label and images == "10"  # measured on the cell's 10 images
    stored = bench.load_results(tmp_path / "r", dataset="mnist")
    assert float(measured) == pytest.approx(stored[stored.attack == "fgsm"].clean_accuracy.iloc[0], abs=1e-4)
