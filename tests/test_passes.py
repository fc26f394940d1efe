"""Pass counting sees every view of a model, so that cost ratios are not divided by zero passes."""

import torch

from bench.matrix.passes import count_passes, measure_throughput
from models.network import build_network
from tests.conftest import tiny_spec


def test_forward_and_backward_passes_are_counted_through_every_view():
    network = build_network(tiny_spec("R:TANH:MSE"), (1, 28, 28), 10)
    x = torch.rand(6, 1, 28, 28, requires_grad=True)
    with count_passes(network) as passes:
        network(x[:2])
        raw = network.raw_outputs(x)  # what cw_l2 and the codeword attack call
        torch.autograd.grad(raw.sum(), x)
        with torch.no_grad():
            network.raw_outputs(x[:1])
    assert (passes.forward, passes.backward) == (2 + 6 + 1, 6)


def test_a_backward_pass_counts_only_when_it_reaches_the_input_and_once_per_pass():
    network = build_network(tiny_spec("O:SOFTMAX:CE"), (1, 28, 28), 10)  # its parameters need gradients
    with count_passes(network) as passes:
        network(torch.rand(4, 1, 28, 28)).sum().backward()  # a training step: the input needs none
        x = torch.rand(3, 1, 28, 28, requires_grad=True)
        scores = network(x)
        for k in range(2):  # one gradient per class, as DeepFool takes them
            torch.autograd.grad(scores[:, k].sum(), x, retain_graph=True)
    assert (passes.forward, passes.backward, passes.calls) == (4 + 3, 2 * 3, 2)


def test_hooks_are_removed_afterwards():
    network = build_network(tiny_spec("O:SOFTMAX:CE"), (1, 28, 28), 10)
    with count_passes(network) as passes:
        network(torch.rand(3, 1, 28, 28))
    network(torch.rand(5, 1, 28, 28))
    assert passes.forward == 3


def test_throughput_is_positive_per_image():
    network = build_network(tiny_spec("O:SOFTMAX:CE"), (1, 28, 28), 10)
    tp = measure_throughput(network, torch.rand(8, 1, 28, 28), rounds=1)
    assert tp.forward_s > 0 and tp.backward_s >= 0 and tp.batch_size == 8
