"""Each loss, written from per-class scores, equals the paper's formula written from the raw outputs."""

import torch
import torch.nn.functional as F

from models.heads import CodewordHead, CosineHead
from models.losses import (
    ModelLoss,
    codeword_cross_entropy,
    codeword_mse,
    cross_entropy,
    hinge,
    lmcl,
    one_hot_tanh_mse,
    softmax_mse,
)

torch.manual_seed(0)
SCORES = torch.randn(6, 10, dtype=torch.float64)
Y = torch.tensor([0, 3, 9, 3, 5, 1])


def test_cross_entropy_is_minus_log_softmax_of_the_true_class():
    expected = -torch.log(SCORES.softmax(1)[torch.arange(6), Y])
    assert torch.allclose(cross_entropy(SCORES, Y), expected)


def test_softmax_mse_is_the_mean_squared_error_to_one_hot():
    expected = torch.stack([((SCORES[i].softmax(0) - F.one_hot(Y[i], 10)) ** 2).mean() for i in range(6)])
    assert torch.allclose(softmax_mse(SCORES, Y), expected)


def test_codeword_mse_from_distances_equals_mse_between_tanh_output_and_codeword():
    head = CodewordHead(16, torch.rand(10, 128) * 2 - 1).double()
    h = torch.randn(6, 16, dtype=torch.float64)
    z = head.raw(h)
    expected = ((z - head.codebook[Y]) ** 2).mean(1)
    assert torch.allclose(codeword_mse(head(h), Y, 128), expected)


def test_codeword_mse_without_tanh_is_the_mse_between_the_linear_output_and_codeword():
    head = CodewordHead(16, torch.rand(10, 32) * 2 - 1, tanh=False).double()
    h = torch.randn(6, 16, dtype=torch.float64) * 10  # outputs well beyond tanh's range
    z = head.fc(h)
    assert torch.equal(head.raw(h), z) and z.abs().max() > 1
    expected = ((z - head.codebook[Y]) ** 2).mean(1)
    assert torch.allclose(codeword_mse(head(h), Y, 32), expected)


def test_one_hot_tanh_mse_is_the_mse_to_plus_a_at_the_class_and_minus_a_elsewhere():
    a = 0.3
    head = CodewordHead(16, a * (2 * torch.eye(10) - 1)).double()
    h = torch.randn(6, 16, dtype=torch.float64)
    z = head.raw(h)
    target = torch.full((6, 10), -a, dtype=torch.float64)
    target[torch.arange(6), Y] = a
    expected = ((z - target) ** 2).mean(1)
    assert torch.allclose(one_hot_tanh_mse(head(h), Y), expected)


def test_codeword_cross_entropy_is_minus_log_softmax_of_minus_the_distances():
    head = CodewordHead(16, torch.rand(10, 128) * 2 - 1).double()
    h = torch.randn(6, 16, dtype=torch.float64)
    distances = torch.stack([torch.stack([(head.raw(h)[i] - c).norm() for c in head.codebook]) for i in range(6)])
    expected = -torch.log((-distances).softmax(1)[torch.arange(6), Y])
    assert torch.allclose(codeword_cross_entropy(head(h), Y), expected)
    assert not torch.allclose(codeword_cross_entropy(head(h), Y), codeword_mse(head(h), Y, 128))


def test_hinge_sums_the_margin_violations_of_the_other_classes():
    expected = torch.stack(
        [sum(max(0.0, SCORES[i, j] - SCORES[i, Y[i]] + 1) for j in range(10) if j != Y[i]) for i in range(6)]
    )
    assert torch.allclose(hinge(SCORES, Y), expected.to(torch.float64))


def test_lmcl_subtracts_the_margin_from_the_true_cosine_only():
    head = CosineHead(16, 10, s=10.0).double()
    h = torch.randn(6, 16, dtype=torch.float64)
    cos = F.normalize(h, dim=1) @ F.normalize(head.weight, dim=1).T
    logits = 10.0 * (cos - 0.3 * F.one_hot(Y, 10))
    expected = -torch.log(logits.softmax(1)[torch.arange(6), Y])
    assert torch.allclose(lmcl(head(h), Y, s=10.0, m=0.3), expected)


def test_model_loss_takes_indices_or_one_hot_rows_and_reduces_as_asked():
    loss = ModelLoss("hinge")
    one_hot = F.one_hot(Y, 10).to(torch.float64)
    assert torch.allclose(loss(SCORES, Y), loss(SCORES, one_hot))
    loss.reduction = "none"
    per_example = loss(SCORES, Y)
    assert per_example.shape == (6,)
    loss.reduction = "sum"
    assert torch.allclose(loss(SCORES, Y), per_example.sum())
