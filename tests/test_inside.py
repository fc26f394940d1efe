"""Inside the network (vu2018 Figures 1-4): layer outputs, relative change per layer, change in rank, plots."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from bench.analyses.inside import (
    layer_names,
    layer_outputs,
    rank_change,
    rank_histogram,
    relative_change,
    relative_change_per_example,
    uniform_noise_like,
)
from bench.analyses.inside_plots import plot_rank_histograms, plot_relative_change
from models.architectures import DenseNetBC
from models.heads import LinearHead
from models.network import Network, build_network
from tests.conftest import tiny_spec

TABLE_I_LAYERS = {
    "backbone.conv1": (32, 28, 28),
    "backbone.conv2": (64, 14, 14),
    "backbone.fc1": (1024,),
    "scores": (10,),
}


def table_i_cnn(model: str = "O:SOFTMAX:CE") -> Network:
    torch.manual_seed(0)
    return build_network(tiny_spec(model), (1, 28, 28), 10)


def images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def toy() -> nn.Sequential:
    """Linear(3, 2) -> ReLU -> Linear(2, 2) with the weights used in the hand computation below."""
    net = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0, -1.0], [0.0, 1.0, 1.0]]))
        net[0].bias.copy_(torch.tensor([0.0, 1.0]))
        net[2].weight.copy_(torch.tensor([[1.0, 1.0], [2.0, -1.0]]))
        net[2].bias.zero_()
    return net


# Two examples, clean and perturbed, worked by hand:
#   a: x = (1, 2, 0), x' = (1, 2, 1)
#      layer 0: y = (1 - 0, 2 + 0 + 1) = (1, 3), y' = (1 - 1, 2 + 1 + 1) = (0, 4); ||y' - y|| = ||(-1, 1)|| = sqrt 2
#               ||x|| = sqrt(1 + 4) = sqrt 5                                     -> sqrt(2 / 5)
#      layer 2: input relu(y) = (1, 3), relu(y') = (0, 4)
#               y = (1 + 3, 2 - 3) = (4, -1), y' = (0 + 4, 0 - 4) = (4, -4); ||y' - y|| = ||(0, -3)|| = 3
#               ||x|| = ||(1, 3)|| = sqrt 10                                    -> 3 / sqrt 10
#   b: x = (0, 0, 3), x' = (2, 0, 3)
#      layer 0: y = (-3, 4), y' = (-1, 4); ||y' - y|| = 2; ||x|| = 3             -> 2 / 3
#      layer 2: input relu(y) = relu(y') = (0, 4), so y = y' = (4, -4)           -> 0 / 4 = 0
TOY_X = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 3.0]])
TOY_XP = torch.tensor([[1.0, 2.0, 1.0], [2.0, 0.0, 3.0]])
TOY_PER_EXAMPLE = {"0": [math.sqrt(2 / 5), 2 / 3], "2": [3 / math.sqrt(10), 0.0]}


def toy_numpy_check() -> dict[str, list[float]]:
    """The same numbers with explicit numpy, independent of the code under test."""
    w1, b1 = np.array([[1.0, 0, -1], [0, 1, 1]]), np.array([0.0, 1])
    w2 = np.array([[1.0, 1], [2, -1]])
    x, xp = TOY_X.numpy().astype(float), TOY_XP.numpy().astype(float)
    y0, y0p = x @ w1.T + b1, xp @ w1.T + b1
    h, hp = np.maximum(y0, 0), np.maximum(y0p, 0)
    y2, y2p = h @ w2.T, hp @ w2.T
    return {
        "0": list(np.linalg.norm(y0p - y0, axis=1) / np.linalg.norm(x, axis=1)),
        "2": list(np.linalg.norm(y2p - y2, axis=1) / np.linalg.norm(h, axis=1)),
    }


# ---------------------------------------------------------------------------------------------- layer outputs


def test_layer_outputs_of_the_table_i_cnn_in_forward_order_with_table_i_shapes():
    net, x = table_i_cnn(), images(3)
    outs = layer_outputs(net, x)
    assert list(outs) == list(TABLE_I_LAYERS)
    for name, shape in TABLE_I_LAYERS.items():
        assert tuple(outs[name].shape) == (3, *shape), name
    with torch.no_grad():
        net.eval()
        assert torch.equal(outs["backbone.conv1"], net.backbone.conv1(x))  # before the ReLU
        assert torch.equal(outs["scores"], net(x))


def test_layer_outputs_of_a_cosine_head_model_end_at_the_scores():
    outs = layer_outputs(table_i_cnn("lmcl"), images(2))
    assert list(outs) == list(TABLE_I_LAYERS)
    assert tuple(outs["scores"].shape) == (2, 10)


def test_explicit_layers_include_each_call_of_a_reused_module_and_keep_forward_order():
    net, x = table_i_cnn(), images(2)
    names = ["scores", "head.fc", "backbone.pool", "backbone.conv2"]
    assert layer_names(net, x, names) == ["backbone.pool", "backbone.conv2", "backbone.pool#2", "head.fc", "scores"]
    outs = layer_outputs(net, x, names)
    assert tuple(outs["backbone.pool"].shape) == (2, 32, 14, 14)
    assert tuple(outs["backbone.pool#2"].shape) == (2, 64, 7, 7)
    assert torch.equal(outs["head.fc"], outs["scores"])  # a linear head's logits are its scores
    with pytest.raises(ValueError, match="no layer named"):
        layer_outputs(net, x, ["backbone.conv9"])


def test_layer_outputs_restore_each_modules_train_eval_mode():
    net = table_i_cnn()
    net.train()
    net.head.eval()
    layer_outputs(net, images(2))
    assert net.training and net.backbone.training and not net.head.training and not net.head.fc.training


def test_layer_outputs_of_a_densenet_list_every_conv_then_the_scores():
    torch.manual_seed(0)
    backbone = DenseNetBC(1, depth=10, growth_rate=4)
    net = Network(backbone, LinearHead(backbone.feature_dim, 10))
    outs = layer_outputs(net, images(2))
    convs = [name for name, m in net.named_modules() if isinstance(m, nn.Conv2d)]
    assert list(outs) == [*convs, "scores"]


# -------------------------------------------------------------------------------------------- relative change


def test_relative_change_is_zero_for_identical_inputs_in_every_layer():
    net, x = table_i_cnn(), images(5)
    change = relative_change(net, x, x.clone(), batch_size=2)
    assert list(change) == list(TABLE_I_LAYERS)
    assert all(value == 0.0 for value in change.values())


def test_relative_change_of_the_toy_network_matches_the_hand_computation():
    by_numpy = toy_numpy_check()
    per_example = relative_change_per_example(toy(), TOY_X, TOY_XP, layers=["0", "2"])
    assert list(per_example) == ["0", "2"]
    for layer, expected in TOY_PER_EXAMPLE.items():
        assert by_numpy[layer] == pytest.approx(expected)
        assert per_example[layer].tolist() == pytest.approx(expected)
    means = relative_change(toy(), TOY_X, TOY_XP, layers=["0", "2"], batch_size=1)
    assert means == pytest.approx({"0": (math.sqrt(2 / 5) + 2 / 3) / 2, "2": 3 / math.sqrt(10) / 2})


def test_by_default_the_toy_networks_last_linear_is_reported_once_as_the_scores():
    """The last Linear's output is the network's output, so it is the ``scores`` layer, with its own input."""
    means = relative_change(toy(), TOY_X, TOY_XP)
    assert means == pytest.approx({"0": (math.sqrt(2 / 5) + 2 / 3) / 2, "scores": 3 / math.sqrt(10) / 2})


def test_examples_whose_layer_input_is_zero_are_left_out_of_that_layers_mean():
    x = torch.cat([TOY_X, torch.zeros(1, 3)])  # c: x = 0, so ||x_0|| = 0; layer 2 gets relu((0, 1)) = (0, 1)
    xp = torch.cat([TOY_XP, torch.tensor([[0.0, 1.0, 0.0]])])  # c': layer 2 gets (0, 2), y = (1, -1) -> (2, -2)
    per_example = relative_change_per_example(toy(), x, xp, layers=["0", "2"])
    assert math.isnan(per_example["0"][2])
    assert per_example["2"][2].item() == pytest.approx(math.sqrt(2) / 1)
    means = relative_change(toy(), x, xp, layers=["0", "2"])
    assert means["0"] == pytest.approx((math.sqrt(2 / 5) + 2 / 3) / 2)  # c left out
    assert means["2"] == pytest.approx((3 / math.sqrt(10) + 0 + math.sqrt(2)) / 3)
    assert math.isnan(relative_change(toy(), torch.zeros(2, 3), torch.ones(2, 3), layers=["0"])["0"])


def test_relative_change_rejects_inputs_of_different_shapes():
    with pytest.raises(ValueError, match="differ in shape"):
        relative_change(toy(), TOY_X, TOY_XP[:1])


# ---------------------------------------------------------------------------------------------- uniform noise


def test_uniform_noise_stays_within_the_radius_and_the_unit_box_and_is_seeded():
    x = images(4)
    noisy = uniform_noise_like(x, 0.3, seed=7)
    assert noisy.shape == x.shape and noisy.dtype == x.dtype
    assert (noisy - x).abs().max() <= 0.3 + 1e-6
    assert noisy.min() >= 0 and noisy.max() <= 1
    assert (noisy != x).float().mean() > 0.9  # every value is perturbed (except where clipping undoes it)
    assert torch.equal(noisy, uniform_noise_like(x, 0.3, seed=7))
    assert not torch.equal(noisy, uniform_noise_like(x, 0.3, seed=8))
    assert torch.equal(uniform_noise_like(x, 0.0, seed=7), x)


# --------------------------------------------------------------------------------------------- change in rank


def test_identical_scores_give_rank_zero():
    scores = torch.randn(6, 10, generator=torch.Generator().manual_seed(0))
    assert rank_change(scores, scores.clone()).tolist() == [0] * 6


def test_a_clean_top_class_that_drops_to_last_has_rank_k_minus_1():
    clean = torch.tensor([[5.0, 1.0, 0.0, -1.0], [0.0, 3.0, 1.0, 2.0]])
    adv = torch.tensor([[-9.0, 1.0, 0.0, -1.0], [1.0, 2.5, 3.0, 0.0]])  # example 1: class 1 is now 2nd
    assert rank_change(clean, adv).tolist() == [3, 1]


def test_ties_count_only_strictly_higher_scores_and_the_clean_argmax_is_the_lowest_tied_index():
    clean = torch.tensor([[2.0, 2.0, 0.0]])  # tied top: the clean prediction is class 0
    assert rank_change(clean, torch.tensor([[1.0, 1.0, 1.0]])).tolist() == [0]
    assert rank_change(clean, torch.tensor([[0.0, 1.0, 0.0]])).tolist() == [1]


def test_rank_histogram_counts_every_example():
    ranks = torch.tensor([0, 3, 3, 1, 9, 0, 0])
    hist = rank_histogram(ranks, 10)
    assert hist == [3, 1, 0, 2, 0, 0, 0, 0, 0, 1]
    assert sum(hist) == len(ranks)
    with pytest.raises(ValueError):
        rank_histogram(torch.tensor([10]), 10)


# ---------------------------------------------------------------------------------------------------- plots


def test_plot_helpers_write_png_files(tmp_path):
    change = {
        "CE": {"pgd": {"conv1": 0.9, "conv2": 0.7, "fc1": 1.2, "scores": 2.0}, "noise": {"conv1": 0.3, "scores": 0.2}},
        "codeword": {"pgd": {"conv1": 0.5, "fc1": 0.4, "head.fc": 0.6, "scores": 0.0}},  # 0 is left out (log axis)
    }
    path = plot_relative_change(change, tmp_path / "fig" / "change.png", "Relative change per layer")
    assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 1000
    ranks = {"CE": rank_histogram(torch.tensor([9, 8, 8, 0]), 10), "LMCL": [5, 1, 0, 0, 0, 0, 0, 0, 0, 0]}
    path = plot_rank_histograms(ranks, tmp_path / "ranks.png", "Change in rank")
    assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 1000
