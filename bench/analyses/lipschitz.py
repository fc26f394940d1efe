"""Per-layer Lipschitz upper bounds (saito2019 section 3.4 and Figure 4).

For a chain of layers the Lipschitz constant (l2 to l2) of layer ``l`` composed on the layers before it is
at most ``Lambda^l = ||theta^l|| * Lambda^(l-1)``, so the network's constant is at most the product of the
operator norms of its layers. Biases do not change a Lipschitz constant, so only the linear part counts.
ReLU and tanh are 1-Lipschitz elementwise, and max-pooling with non-overlapping windows (stride >= kernel,
as in the Table I CNN) is 1-Lipschitz because ``|max a - max b| <= max |a - b|`` within each window; these
contribute a factor 1 and are not listed.

The paper computes the norm of a convolution with the FFT method of Sedghi, Gupta & Long (2018), which is
exact for circular padding. The networks here use zero padding, for which the FFT value at the input size
is *not* an upper bound (see :func:`conv_operator_norm_fft`); :func:`layer_bounds` therefore reports both
that value (as in the paper) and the FFT value at the zero-padded size, which is an upper bound, next to a
power-iteration estimate of the norm of the layer as run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.architectures import _Bottleneck
from models.heads import CodewordHead, CosineHead

_ONE_LIPSCHITZ = (nn.ReLU, nn.Tanh, nn.Flatten, nn.Identity, nn.Dropout)


@dataclass(frozen=True)
class LayerBound:
    """One layer's operator norm.

    ``bound`` is an upper bound on the Lipschitz constant of the layer as run (None where none is known);
    ``fft_at_input`` is, for convolutions, the paper's value: the FFT norm at the layer's input size, exact for
    circular padding; ``as_run`` is a power-iteration estimate of the norm of the layer as run (a lower
    estimate that converges to it); ``rel_diff`` is ``(bound - as_run) / as_run``.
    """

    name: str
    kind: str
    input_shape: tuple[int, ...]
    bound: float | None
    as_run: float | None = None
    fft_at_input: float | None = None
    note: str = ""

    @property
    def rel_diff(self) -> float | None:
        if self.bound is None or not self.as_run:
            return None
        return (self.bound - self.as_run) / self.as_run


def conv_operator_norm_fft(weight: Tensor, input_hw: tuple[int, int]) -> float:
    """Largest singular value of the stride-1 CIRCULAR convolution with ``weight`` on ``input_hw`` images.

    Sedghi, Gupta & Long (2018): the circular convolution is block-diagonalised by the 2-D DFT, so its singular
    values are those of the c_out x c_in matrices of the kernel's DFT, zero-padded to the image size, at every
    frequency. Kernels larger than the image wrap around modulo its size, as the circular map does.

    Exact only for circular padding. A zero-padded layer on an n x n input equals the circular convolution on
    the (n + 2p) x (n + 2p) zero-padded grid, embedded and restricted, so the value at the padded size bounds
    it; the value at n does not (a 3x3 checkerboard kernel on a 3x3 input has norm 2 + 2*sqrt(2) with zero
    padding but 3 here). A 'valid' convolution (p = 0) and a strided one (a subsampling of the outputs) are
    restrictions of the circular map at the size given, so they are bounded by it. To see how far the bound is
    from the layer as run, apply :func:`operator_norm_power_iteration` to the bias-free layer.
    """
    h, w = input_hw
    kernel = _wrap(_wrap(weight.detach(), h, dim=-2), w, dim=-1)
    per_frequency = torch.fft.fft2(kernel, s=(h, w)).permute(2, 3, 0, 1)  # (h, w, c_out, c_in)
    return torch.linalg.matrix_norm(per_frequency, ord=2).max().item()


def _wrap(kernel: Tensor, n: int, dim: int) -> Tensor:
    """Fold a kernel longer than ``n`` along ``dim`` modulo ``n`` (fft2's ``s`` would crop it instead)."""
    k = kernel.shape[dim]
    if k <= n:
        return kernel
    reps = -(-k // n)
    moved = F.pad(kernel.movedim(dim, -1), (0, reps * n - k))
    return moved.reshape(*moved.shape[:-1], reps, n).sum(-2).movedim(-1, dim)


def operator_norm_power_iteration(
    fn: Callable[[Tensor], Tensor],
    input_shape: Sequence[int],
    iters: int = 200,
    seed: int = 0,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> float:
    """Largest singular value of the LINEAR map ``fn`` on tensors of ``input_shape``, by power iteration.

    Iterates v <- J^T J v with the adjoint from autograd, so it needs only ``fn`` itself, for instance a conv
    layer with its own padding and stride but no bias: the norm of the layer as run. Returns ||J v|| for the
    last unit v, which approaches the norm from below.
    """
    generator = torch.Generator().manual_seed(seed)
    v = torch.randn(tuple(input_shape), generator=generator, dtype=dtype).to(device)
    sigma = torch.zeros(())
    for _ in range(iters):
        norm = torch.linalg.vector_norm(v)
        if norm == 0:
            return 0.0
        out, adjoint = torch.func.vjp(fn, v / norm)
        sigma = torch.linalg.vector_norm(out)
        (v,) = adjoint(out)
    return sigma.item()


def linear_operator_norm(weight: Tensor) -> float:
    """Largest singular value of a weight matrix: the operator norm of a fully connected layer."""
    return torch.linalg.matrix_norm(weight.detach(), ord=2).item()


def product_bound(bounds: Sequence[LayerBound]) -> float:
    """Product of the layers' bounds: the Lipschitz bound of the chain, Lambda^L = prod ||theta^l||.

    Valid only when the listed layers are composed one after the other with 1-Lipschitz operations between
    them (the Table I CNN); raises where a layer has no bound (DenseNet's concatenating blocks, for instance).
    """
    missing = [b.name for b in bounds if b.bound is None]
    if missing:
        raise ValueError(f"no Lipschitz bound for {', '.join(missing)}; the product would not be a bound")
    return math.prod(b.bound for b in bounds)


def layer_bounds(
    network: nn.Module, input_shape: tuple[int, int, int], *, iters: int = 200, seed: int = 0
) -> list[LayerBound]:
    """Every layer's bound, in forward order, found by running a dummy (1, *input_shape) input through.

    Forward hooks record each module's actual input size. Conv2d, Linear, BatchNorm (eval mode: running
    statistics) and the output heads get a bound; the 1-Lipschitz modules listed in the module docstring are
    left out; any other leaf module is listed with bound None and a note. Only modules are seen: operations
    written inline in a ``forward`` (``torch.relu`` in the Table I CNN) must be 1-Lipschitz for
    :func:`product_bound` to hold. The network is left in the train/eval mode it came in.
    """
    calls: list[tuple[str, nn.Module, tuple[int, ...]]] = []
    hooks = [
        module.register_forward_hook(lambda m, args, _out, name=name: calls.append((name, m, tuple(args[0].shape))))
        for name, module in network.named_modules()
    ]
    param = next(network.parameters())
    was_training = network.training
    try:
        network.eval()
        with torch.no_grad():
            network(torch.zeros((1, *input_shape), dtype=param.dtype, device=param.device))
    finally:
        network.train(was_training)
        for hook in hooks:
            hook.remove()
    found = [_bound_of(name, module, shape, iters, seed) for name, module, shape in calls]
    return [b for b in found if b is not None]


def _bound_of(name: str, module: nn.Module, shape: tuple[int, ...], iters: int, seed: int) -> LayerBound | None:
    """The bound of one recorded call; None for modules that are 1-Lipschitz or mere containers."""
    if isinstance(module, nn.Conv2d):
        return _conv_bound(name, module, shape, iters, seed)
    if isinstance(module, nn.Linear):
        weight = module.weight.detach()
        as_run = _power(lambda x: F.linear(x, weight), shape, weight, iters, seed)
        return LayerBound(name, "linear", shape[1:], linear_operator_norm(weight), as_run)
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return _batchnorm_bound(name, module, shape, iters, seed)
    if isinstance(module, CosineHead):
        return _cosine_head_bound(name, module, shape, iters, seed)
    if isinstance(module, CodewordHead):
        note = "tanh is 1-Lipschitz; each score -||z - c_i|| is 1-Lipschitz in z, so the K scores are sqrt(K)-Lipschitz"
        return LayerBound(name, "codeword", shape[1:], math.sqrt(module.codebook.shape[0]), note=note)
    if isinstance(module, _Bottleneck):
        note = "dense connection x -> [x, f(x)]: Lipschitz <= sqrt(1 + Lip(f)^2), not a link of a chain"
        return LayerBound(name, "dense", shape[1:], None, note=note)
    if _is_one_lipschitz(module) or next(module.children(), None) is not None:
        return None
    return LayerBound(name, "other", shape[1:], None, note=f"{type(module).__name__}: no bound implemented")


def _is_one_lipschitz(module: nn.Module) -> bool:
    if isinstance(module, nn.MaxPool2d):
        pairs = zip(_pair(module.kernel_size), _pair(module.stride), strict=True)
        return _pair(module.dilation) == (1, 1) and all(stride >= kernel for kernel, stride in pairs)
    return isinstance(module, _ONE_LIPSCHITZ)


def _pair(value: int | tuple[int, ...]) -> tuple[int, ...]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _power(fn: Callable[[Tensor], Tensor], shape: tuple[int, ...], like: Tensor, iters: int, seed: int) -> float:
    return operator_norm_power_iteration(fn, shape, iters, seed, dtype=like.dtype, device=like.device)


def _conv_bound(name: str, conv: nn.Conv2d, shape: tuple[int, ...], iters: int, seed: int) -> LayerBound:
    """FFT bound at the size on which the layer is a restriction of a circular convolution; see the FFT docstring."""
    weight = conv.weight.detach()
    as_run = _power(lambda x: conv._conv_forward(x, weight, None), shape, weight, iters, seed)
    input_hw = (shape[-2], shape[-1])
    at_input = conv_operator_norm_fft(weight, input_hw)
    if conv.groups != 1 or _pair(conv.dilation) != (1, 1):
        return LayerBound(name, "conv", shape[1:], None, as_run, at_input, "groups or dilation: not implemented")
    circular_hw = _circular_size(conv, input_hw)
    if circular_hw is None:
        note = f"padding_mode {conv.padding_mode!r} with this padding is no restriction of a circular convolution"
        return LayerBound(name, "conv", shape[1:], None, as_run, at_input, note)
    bound = conv_operator_norm_fft(weight, circular_hw)
    note = f"FFT at {circular_hw[0]}x{circular_hw[1]}" + (", stride > 1" if _pair(conv.stride) != (1, 1) else "")
    return LayerBound(name, "conv", shape[1:], bound, as_run, at_input, note)


def _circular_size(conv: nn.Conv2d, input_hw: tuple[int, int]) -> tuple[int, int] | None:
    """Grid size whose circular convolution the layer restricts: input + zero padding, or input if circular."""
    kernel = _pair(conv.kernel_size)
    if conv.padding == "valid":
        total = (0, 0)
    elif conv.padding == "same":
        total = (kernel[0] - 1, kernel[1] - 1)
    else:
        total = tuple(2 * p for p in _pair(conv.padding))
    if conv.padding_mode == "zeros":
        return input_hw[0] + total[0], input_hw[1] + total[1]
    if conv.padding_mode == "circular" and all(t <= k - 1 for t, k in zip(total, kernel, strict=True)):
        return input_hw
    return None


def _batchnorm_bound(
    name: str, bn: nn.modules.batchnorm._BatchNorm, shape: tuple[int, ...], iters: int, seed: int
) -> LayerBound:
    """In eval mode BatchNorm is a diagonal affine map with slopes gamma / sqrt(running_var + eps)."""
    if bn.running_var is None:
        return LayerBound(name, "batchnorm", shape[1:], None, note="no running statistics: uses batch statistics")
    scale = bn.running_var.detach().add(bn.eps).rsqrt()
    if bn.weight is not None:
        scale = scale * bn.weight.detach()
    as_run = _power(lambda x: x * scale.view(1, -1, *[1] * (x.dim() - 2)), shape, scale, iters, seed)
    return LayerBound(name, "batchnorm", shape[1:], scale.abs().max().item(), as_run)


def _cosine_head_bound(name: str, head: CosineHead, shape: tuple[int, ...], iters: int, seed: int) -> LayerBound:
    """s times the norm of the row-normalised weights: the head's constant for unit-norm features only."""
    weight = head.s * F.normalize(head.weight.detach(), dim=1)
    as_run = _power(lambda h: F.linear(h, weight), shape, weight, iters, seed)
    note = (
        "data dependent: features are normalised first, and h/||h|| is (1/r)-Lipschitz on ||h|| >= r "
        "(Dunkl-Williams), so the head's constant is this value / min ||h||"
    )
    return LayerBound(name, "cosine", shape[1:], linear_operator_norm(weight), as_run, note=note)
