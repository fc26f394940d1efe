"""Inside the network: how a perturbation travels through the layers (vu2018 section III, Figures 1-4).

Two measurements, both comparing a clean input with a perturbed one (PGD, or uniform noise of the same
L-inf radius as a control):

- **Relative change per layer** (Figures 2 and 3). vu2018: "Let x_il is the input goes into layer l-th of the
  natural test sample i-th, and y_il is the output of that input. x'_il and y'_il is the input and output of
  layer l-th of the corresponding adversarial test sample i-th. [...] we divide l2 norm of the difference to
  l2 norm of natural input x_il [...] with each layer we report ||y'_il - y_il||_2 / ||x_il||_2."
  :func:`relative_change` reports that ratio averaged over the examples (the paper does not say how it
  aggregates over i; the mean is our choice).
- **Change in rank** (Figures 1 and 4). vu2018: "rank(j, y) is a function that outputs the number of
  dimensions in output y has higher value than dimension j [...] First we find j in the output of natural
  test sample that rank(j, y_i) = 0 then we find the rank of dimension j in the output of adversarial test
  sample r = rank(j, y'_i)." See :func:`rank_change`.

Which layers. For a :class:`models.network.Network` the default layers are every ``nn.Conv2d`` and
``nn.Linear`` module, in the order the forward pass calls them, and ``"scores"``, the per-class scores the
network returns (argmax = decision). A layer's *output* is its module's output and its *input* the tensor the
module receives. The Table I CNN (:class:`models.architectures.TableICNN`) applies ReLU and max-pooling
functionally between its modules, so its layers are::

    backbone.conv1  input: image           (N, 1, 28, 28)   output: conv before ReLU  (N, 32, 28, 28)
    backbone.conv2  input: pool1 output    (N, 32, 14, 14)  output: conv before ReLU  (N, 64, 14, 14)
    backbone.fc1    input: pool2 flattened (N, 3136)        output: FC before ReLU    (N, 1024)
    scores          input: FC1 after ReLU  (N, 1024)        output: class scores      (N, 10)

which are the input and output shapes of the Conv1, Conv2, FC1 and FC2 rows of vu2018 Table I (the pooling
rows have no weights and are left out by default; ``layers=["backbone.pool"]`` adds them, one entry per call:
``backbone.pool`` and ``backbone.pool#2``). The outputs are taken before the activation because the ReLU is
not a module the forward pass calls, and because Table I lists the convolution and its pooling as separate
layers. ``"scores"`` takes as input what the output head receives (``network.head``'s input), or, for a
module without a ``head``, the network's own input. When a Conv2d/Linear module's output *is* the tensor the
network returns (a linear head: the logits are the scores; the last ``Linear`` of an ``nn.Sequential``), that
module is reported once, as ``"scores"``, with its own input, rather than twice. So a softmax/hinge model ends
at ``scores`` (FC2 of Table I), the codeword model at ``backbone.fc1, head.fc`` (before tanh) and ``scores``
(minus the distances to the codewords), and the LMCL model at ``scores`` (s * cos theta).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

SCORES = "scores"
DEFAULT_TYPES: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.Linear)


# --------------------------------------------------------------------------------------------- tracing layers


@dataclass(frozen=True)
class _Site:
    """One reported layer: the ``call``-th call (0-based, within one forward pass) of ``module``."""

    name: str
    module: nn.Module
    call: int


@contextmanager
def _eval_mode(network: nn.Module) -> Iterator[None]:
    """Eval mode and no gradients inside; every submodule's own train/eval flag is restored afterwards."""
    modes = [(m, m.training) for m in network.modules()]
    network.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, mode in modes:
            module.training = mode


def _device(network: nn.Module, fallback: torch.device) -> torch.device:
    for tensor in list(network.parameters()) + list(network.buffers()):
        return tensor.device
    return fallback


def _scores_module(network: nn.Module) -> nn.Module:
    head = getattr(network, "head", None)
    return head if isinstance(head, nn.Module) else network


def _run(
    network: nn.Module, x: Tensor, modules: Sequence[nn.Module], fn: Callable[[nn.Module, int, Tensor, Tensor], None]
) -> Tensor:
    """Forward ``x`` with ``fn(module, call, input, output)`` called at each call of each of ``modules``."""
    calls: dict[int, int] = {}

    def hook(module: nn.Module, args: tuple, output: object) -> None:
        call = calls.get(id(module), 0)
        calls[id(module)] = call + 1
        if not args or not isinstance(args[0], Tensor) or not isinstance(output, Tensor):
            raise TypeError(f"{type(module).__name__} does not map one tensor to one tensor; it cannot be a layer")
        fn(module, call, args[0], output)

    handles = [m.register_forward_hook(hook) for m in dict.fromkeys(modules)]  # each module hooked once
    try:
        return network(x)
    finally:
        for handle in handles:
            handle.remove()


def _sites(network: nn.Module, probe: Tensor, layers: Iterable[str] | None) -> list[_Site]:
    """The reported layers in forward order, found by one forward pass of ``probe`` (call in eval mode)."""
    named = {name: module for name, module in network.named_modules() if name}
    scores_module = _scores_module(network)
    if layers is None:
        wanted = {name: m for name, m in named.items() if isinstance(m, DEFAULT_TYPES)}
        want_scores = True
    else:
        layers = list(layers)
        unknown = [name for name in layers if name != SCORES and name not in named]
        if unknown:
            raise ValueError(f"no layer named {unknown}; the network's modules are {list(named)} (and {SCORES!r})")
        wanted = {name: named[name] for name in layers if name != SCORES}
        want_scores = SCORES in layers
    name_of = {id(m): name for name, m in wanted.items()}
    fired: list[tuple[str, nn.Module, int, Tensor]] = []  # (module name, module, call, output)
    scores_seen: list[tuple[nn.Module, int]] = []

    def record(module: nn.Module, call: int, _inp: Tensor, out: Tensor) -> None:
        if module is scores_module:
            scores_seen.append((module, call))
        if id(module) in name_of:
            fired.append((name_of[id(module)], module, call, out))

    final = _run(network, probe, list(wanted.values()) + [scores_module], record)
    missing = sorted(set(wanted) - {name for name, *_ in fired})
    if missing:
        raise ValueError(f"layers {missing} are not called by the network's forward pass")
    if want_scores and not scores_seen:
        raise ValueError("the network's head was not called by its forward pass")

    sites = [_Site(name if call == 0 else f"{name}#{call + 1}", module, call) for name, module, call, _ in fired]
    if want_scores:
        producer = [i for i, (_, _, _, out) in enumerate(fired) if out is final]
        if layers is None and producer:
            i = producer[-1]  # this module's output is the network's output: report it once, as the scores
            sites[i] = _Site(SCORES, sites[i].module, sites[i].call)
        else:
            last_call = scores_seen[-1][1]  # the call that produced the output the network returns
            sites.append(_Site(SCORES, scores_module, last_call))
    return sites


def layer_names(network: nn.Module, x: Tensor, layers: Iterable[str] | None = None) -> list[str]:
    """The names :func:`layer_outputs` and :func:`relative_change` report for ``network``, in forward order."""
    with _eval_mode(network):
        return [s.name for s in _sites(network, x[:1].to(_device(network, x.device)), layers)]


def _traced(network: nn.Module, x: Tensor, sites: Sequence[_Site], fn: Callable[[str, Tensor, Tensor], None]) -> Tensor:
    by_call: dict[tuple[int, int], list[str]] = {}
    for s in sites:
        by_call.setdefault((id(s.module), s.call), []).append(s.name)

    def dispatch(module: nn.Module, call: int, inp: Tensor, out: Tensor) -> None:
        for name in by_call.get((id(module), call), ()):
            fn(name, inp, out)

    return _run(network, x, [s.module for s in sites], dispatch)


def layer_outputs(network: nn.Module, x: Tensor, layers: Iterable[str] | None = None) -> dict[str, Tensor]:
    """The output of each layer of interest on ``x``, in forward order (see the module docstring for which).

    ``layers``: module names as in ``network.named_modules()`` (e.g. ``"backbone.conv2"``) and/or ``"scores"``;
    None for every Conv2d and Linear and the scores. A module called more than once per forward pass gives one
    entry per call (``name``, ``name#2``, ...). Runs in eval mode without gradients and restores each module's
    train/eval mode afterwards; the tensors are detached copies on the network's device.
    """
    device = _device(network, x.device)
    x = x.to(device)
    outputs: dict[str, Tensor] = {}
    with _eval_mode(network):
        sites = _sites(network, x[:1], layers)
        _traced(network, x, sites, lambda name, _inp, out: outputs.__setitem__(name, out.detach().clone()))
    return {s.name: outputs[s.name] for s in sites}


# ------------------------------------------------------------------------------------------- relative change


def _norms(t: Tensor) -> Tensor:
    return torch.linalg.vector_norm(t.detach().reshape(len(t), -1).double(), dim=1).cpu()


def relative_change_per_example(
    network: nn.Module,
    x: Tensor,
    x_perturbed: Tensor,
    layers: Iterable[str] | None = None,
    batch_size: int = 256,
) -> dict[str, Tensor]:
    """Per layer, ``||y'_l - y_l||_2 / ||x_l||_2`` for each example: a float64 CPU tensor of shape (N,).

    ``y_l``/``y'_l`` are the layer's outputs on the clean/perturbed example and ``x_l`` the layer's input on
    the clean example (vu2018's normalisation: "we divide l2 norm of the difference to l2 norm of natural
    input x_il"); norms are over all of one example's values. Where ``||x_l||_2 = 0`` the ratio is undefined
    and the value is NaN (a dead ReLU layer can feed a layer all zeros). Batches of ``batch_size`` examples;
    eval mode, no gradients, the network's train/eval modes restored afterwards.
    """
    if x.shape != x_perturbed.shape:
        raise ValueError(f"clean and perturbed inputs differ in shape: {tuple(x.shape)} vs {tuple(x_perturbed.shape)}")
    if len(x) == 0:
        raise ValueError("no examples")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = _device(network, x.device)
    chunks: dict[str, list[Tensor]] = {}
    clean_out: dict[str, Tensor] = {}  # this batch's clean outputs, consumed by the perturbed pass
    in_norm: dict[str, Tensor] = {}  # this batch's ||x_l||_2 per example

    def on_clean(name: str, inp: Tensor, out: Tensor) -> None:
        clean_out[name] = out.detach().clone()  # a later in-place op must not change it
        in_norm[name] = _norms(inp)

    def on_perturbed(name: str, _inp: Tensor, out: Tensor) -> None:
        diff = _norms(out - clean_out.pop(name))
        den = in_norm.pop(name)
        ratio = torch.where(den > 0, diff / torch.where(den > 0, den, 1.0), torch.nan)
        chunks.setdefault(name, []).append(ratio)

    with _eval_mode(network):
        sites = _sites(network, x[:1].to(device), layers)
        for start in range(0, len(x), batch_size):
            _traced(network, x[start : start + batch_size].to(device), sites, on_clean)
            _traced(network, x_perturbed[start : start + batch_size].to(device), sites, on_perturbed)
    return {s.name: torch.cat(chunks[s.name]) for s in sites}


def relative_change(
    network: nn.Module,
    x: Tensor,
    x_perturbed: Tensor,
    layers: Iterable[str] | None = None,
    batch_size: int = 256,
) -> dict[str, float]:
    """Per layer (forward order), the mean over examples of ``||y'_l - y_l||_2 / ||x_l||_2`` (vu2018 Fig. 2, 3).

    See :func:`relative_change_per_example`. Examples whose clean layer input has zero norm are left out of
    that layer's mean (the ratio is undefined there); a layer where every example is left out gets NaN.
    """
    per_example = relative_change_per_example(network, x, x_perturbed, layers, batch_size)
    out: dict[str, float] = {}
    for name, values in per_example.items():
        finite = values[~torch.isnan(values)]
        out[name] = float(finite.mean()) if len(finite) else math.nan
    return out


def uniform_noise_like(x: Tensor, eps: float, seed: int) -> Tensor:
    """``x + U(-eps, eps)`` drawn independently per value, clipped to [0, 1]: vu2018's noise control.

    vu2018: "we randomly perturb all dimensions of the natural samples with the amount of perturbation never
    passes eps = 0.3", i.e. the L-inf radius of the attack; the uniform distribution is our reading. Drawn
    from a CPU ``torch.Generator`` seeded with ``seed``, so the noise does not depend on the device.
    """
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")
    gen = torch.Generator().manual_seed(seed)
    noise = (2 * torch.rand(x.shape, generator=gen, dtype=x.dtype) - 1) * eps
    return (x + noise.to(x.device)).clamp(0.0, 1.0)


# --------------------------------------------------------------------------------------------- change in rank


def rank_change(scores_clean: Tensor, scores_adv: Tensor) -> Tensor:
    """For each example, the rank among the perturbed scores of the class predicted on the clean input.

    vu2018: "rank(j, y) is a function that outputs the number of dimensions in output y has higher value than
    dimension j"; j is the clean prediction (rank(j, y_i) = 0) and the result is r = rank(j, y'_i). So 0 means
    the decision did not change and K-1 that the clean class is now last. Ties, as that definition gives: the
    rank counts only strictly higher scores, so classes tied with j do not push it down (a tie at the top
    leaves r = 0). The clean prediction is the argmax of the clean scores, the lowest class index among
    tied maxima. Returns an int64 tensor of shape (N,) on the scores' device.
    """
    clean = torch.as_tensor(scores_clean)
    adv = torch.as_tensor(scores_adv).to(clean.device)
    if clean.ndim != 2 or clean.shape != adv.shape:
        raise ValueError(f"expected two (N, K) score tensors of the same shape, got {clean.shape} and {adv.shape}")
    if torch.isnan(clean).any() or torch.isnan(adv).any():
        raise ValueError("scores contain NaN; ranks are undefined")
    is_top = clean == clean.max(dim=1, keepdim=True).values
    j = is_top.to(torch.int64).argmax(dim=1, keepdim=True)  # first True: the lowest index among tied maxima
    return (adv > adv.gather(1, j)).sum(dim=1)


def rank_histogram(ranks: Tensor, n_classes: int) -> list[int]:
    """How many examples have each rank 0 .. n_classes - 1 (a list of ``n_classes`` counts)."""
    ranks = torch.as_tensor(ranks).reshape(-1).to(torch.int64).cpu()
    if len(ranks) and (ranks.min() < 0 or ranks.max() >= n_classes):
        raise ValueError(f"ranks must lie in [0, {n_classes - 1}], got {ranks.min().item()}..{ranks.max().item()}")
    return torch.bincount(ranks, minlength=n_classes).tolist()


# ----------------------------------------------------------------------------------------------------- plots
