"""Per-layer Lipschitz bounds against operator norms computed from explicit matrices."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.analyses.lipschitz import (
    conv_operator_norm_fft,
    layer_bounds,
    linear_operator_norm,
    operator_norm_power_iteration,
    product_bound,
)
from models.network import build_network
from tests.conftest import tiny_spec

GEN = torch.Generator().manual_seed(0)
WEIGHT = torch.randn(3, 2, 3, 3, generator=GEN, dtype=torch.float64)  # c_out 3, c_in 2, 3x3
N = 6


def explicit_norm(fn, input_shape) -> float:
    """Largest singular value of the matrix whose columns are fn applied to each basis vector."""
    basis = torch.eye(math.prod(input_shape), dtype=torch.float64).reshape(-1, *input_shape)
    columns = fn(basis).reshape(len(basis), -1)
    return torch.linalg.matrix_norm(columns.T, ord=2).item()


def circular_conv(weight, pad):
    return lambda x: F.conv2d(F.pad(x, (pad,) * 4, mode="circular"), weight)


def test_fft_norm_equals_the_explicit_matrix_norm_of_a_circular_conv():
    exact = explicit_norm(circular_conv(WEIGHT, 1), (2, N, N))
    assert conv_operator_norm_fft(WEIGHT, (N, N)) == pytest.approx(exact, rel=1e-4)


def test_fft_norm_wraps_a_kernel_larger_than_the_input():
    weight = torch.randn(2, 2, 5, 5, generator=GEN, dtype=torch.float64)
    exact = explicit_norm(circular_conv(weight, 2), (2, 3, 3))
    assert conv_operator_norm_fft(weight, (3, 3)) == pytest.approx(exact, rel=1e-4)


def test_zero_padded_conv_is_bounded_by_the_fft_norm_at_the_padded_size_and_found_by_power_iteration():
    def zero_padded(x):
        return F.conv2d(x, WEIGHT, padding=1)

    exact = explicit_norm(zero_padded, (2, N, N))
    assert exact <= conv_operator_norm_fft(WEIGHT, (N + 2, N + 2)) + 1e-5
    estimate = operator_norm_power_iteration(zero_padded, (1, 2, N, N), dtype=torch.float64)
    assert estimate == pytest.approx(exact, rel=1e-3)


def test_fft_norm_at_the_input_size_is_no_bound_for_zero_padding():
    """Why layer_bounds uses the padded size: here the zero-padded layer's norm exceeds the circular one's."""
    checkerboard = torch.tensor([[1.0, -1, 1], [-1, 0, -1], [1, -1, 1]], dtype=torch.float64).reshape(1, 1, 3, 3)
    exact = explicit_norm(lambda x: F.conv2d(x, checkerboard, padding=1), (1, 3, 3))
    assert exact == pytest.approx(2 + 2 * math.sqrt(2))
    assert conv_operator_norm_fft(checkerboard, (3, 3)) == pytest.approx(3.0)
    assert exact <= conv_operator_norm_fft(checkerboard, (5, 5)) + 1e-9


def test_power_iteration_on_a_linear_layer_matches_its_spectral_norm():
    layer = nn.Linear(30, 20).double()
    with torch.no_grad():
        layer.weight.copy_(torch.randn(20, 30, generator=GEN, dtype=torch.float64))
    weight = layer.weight.detach()
    estimate = operator_norm_power_iteration(lambda x: F.linear(x, weight), (30,), dtype=torch.float64)
    assert estimate == pytest.approx(torch.linalg.matrix_norm(weight, ord=2).item(), rel=1e-4)
    assert linear_operator_norm(weight) == pytest.approx(torch.linalg.svdvals(weight)[0].item())


def test_table_i_cnn_layers_in_forward_order_each_bounded():
    torch.manual_seed(0)
    network = build_network(tiny_spec("O:SOFTMAX:CE"), (1, 28, 28), 10)
    network.train()
    bounds = layer_bounds(network, (1, 28, 28))
    assert [(b.name, b.kind, b.input_shape) for b in bounds] == [
        ("backbone.conv1", "conv", (1, 28, 28)),
        ("backbone.conv2", "conv", (32, 14, 14)),
        ("backbone.fc1", "linear", (64 * 7 * 7,)),
        ("head.fc", "linear", (1024,)),
    ]
    for b in bounds:
        assert 0 < b.as_run <= b.bound * (1 + 1e-3), b
    assert bounds[0].bound == pytest.approx(conv_operator_norm_fft(network.backbone.conv1.weight, (32, 32)))
    assert bounds[0].fft_at_input == pytest.approx(conv_operator_norm_fft(network.backbone.conv1.weight, (28, 28)))
    assert bounds[3].bound == pytest.approx(linear_operator_norm(network.head.fc.weight), rel=1e-6)
    assert product_bound(bounds) == pytest.approx(math.prod(b.bound for b in bounds))
    assert network.training


def test_eval_batchnorm_bound_is_its_largest_slope_and_running_stats_are_untouched():
    bn = nn.BatchNorm2d(4)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, -3.0, 0.5, 2.0]))
        bn.running_var.copy_(torch.tensor([1.0, 4.0, 0.25, 16.0]))
    network = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), bn, nn.ReLU(), nn.AvgPool2d(2))
    before = bn.running_mean.clone()
    bounds = layer_bounds(network, (1, 8, 8))
    assert [b.kind for b in bounds] == ["conv", "batchnorm", "other"]
    expected = 3.0 / math.sqrt(4.0 + bn.eps)
    assert bounds[1].bound == pytest.approx(expected)
    assert bounds[1].as_run == pytest.approx(expected, rel=1e-4)
    assert torch.equal(bn.running_mean, before)
    assert bounds[2].bound is None and "AvgPool2d" in bounds[2].note
    with pytest.raises(ValueError, match="for 3;"):  # the AvgPool2d, named by its index
        product_bound(bounds)
