"""Per-example gradients, how coherent they are, and robust ways to add them up.

A step of gradient descent moves along the *sum* of the examples' gradients. Where many examples agree, the step is
large; where one example pushes alone, it is small. `coherence` measures that agreement (Chatterjee 2020;
Chatterjee & Zielinski 2022); `winsorized` and `median_of_means` are aggregates that damp the directions few
examples push (Zielinski, Krishnan & Chatterjee 2020), and `gt.fit(..., gradient=...)` trains with them.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from .data import TensorData
from .losses import per_example_loss
from .models import evaluating

Gradients = dict[str, Tensor]  # parameter name -> per-example gradients, shape (examples, *parameter shape)
Aggregate = Callable[[Gradients], Gradients]


def _trainable(model: nn.Module) -> dict[str, Tensor]:
    return {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}


def per_example(model: nn.Module, x: Tensor, y: Tensor, *, loss: str = "cross_entropy", n_classes: int | None = None,
                chunk_size: int | None = 256) -> tuple[Gradients, Tensor]:
    """The gradient of every example's loss with respect to every trainable parameter, and the losses.

    torch.func's vmap over a one-example loss; `chunk_size` examples at a time bound the memory. Runs the model
    as it is (train or eval mode); in train mode dropout draws its own mask for every example. A model whose
    trainable parameters all sit in nn.Linear layers of their own (no tied weights, flat inputs), without dropout or
    batch normalisation, has its gradients formed from one batched backward pass instead (d_i a_i^T per layer: see
    layer_signals), many times faster.
    """
    each = per_example_loss(loss, n_classes)
    layers = linear_layers(model)
    mixing = (nn.modules.dropout._DropoutNd, nn.modules.batchnorm._BatchNorm)  # random per example, or batch statistics
    if layers is not None and not any(isinstance(m, mixing) for m in model.modules()):
        try:
            return _per_example_linear(model, layers, x, y, each)
        except ValueError:  # shared layers or sequence inputs: vmap below
            pass
    buffers = dict(model.named_buffers())

    def one(params: dict[str, Tensor], xi: Tensor, yi: Tensor) -> tuple[Tensor, Tensor]:
        value = each(functional_call(model, (params, buffers), (xi.unsqueeze(0),)), yi.unsqueeze(0)).sum()
        return value, value

    grads, losses = vmap(grad(one, has_aux=True), in_dims=(None, 0, 0), chunk_size=chunk_size,
                          randomness="different")(_trainable(model), x, y)
    return grads, losses.detach()


def _per_example_linear(model: nn.Module, layers: list[nn.Module], x: Tensor, y: Tensor, each) -> tuple[Gradients, Tensor]:
    names = {id(p): name for name, p in model.named_parameters()}
    kept: dict[str, Tensor] = {}

    def summed_loss(out: Tensor) -> list[Tensor]:
        kept["losses"] = each(out, y)
        return [kept["losses"].sum()]

    grads: Gradients = {}
    for layer, a, (d,) in layer_signals(model, layers, x, summed_loss):
        grads[names[id(layer.weight)]] = d[:, :, None] * a[:, None, :]
        if layer.bias is not None:
            grads[names[id(layer.bias)]] = d
    return {name: grads[name] for name in _trainable(model)}, kept["losses"].detach()


@dataclass(frozen=True)
class Coherence:
    """alpha = ||E g||^2 / E ||g||^2 over the m examples' gradients g: 1 if all are identical, 1/m if they are
    orthogonal and of equal norm. m_coherence = m * alpha runs from 1 (orthogonal) to m (identical): roughly, how many
    examples a step along one example's gradient helps."""

    alpha: float
    m: int

    @property
    def m_coherence(self) -> float:
        return self.m * self.alpha


def linear_layers(model: nn.Module, kinds: tuple[type, ...] = (nn.Linear,)) -> list[nn.Module] | None:
    """The model's layers of the given kinds (exactly those classes, whose output is a linear map of the input plus a
    bias) if they own every trainable parameter, each layer its own, and all of theirs train, else None."""
    layers = [module for module in model.modules() if type(module) in kinds]
    params = [p for layer in layers for p in layer.parameters(recurse=False)]
    owned = {id(p) for p in params}
    trainable = [p for p in model.parameters() if p.requires_grad]
    shared = len(owned) < len(params)  # tied weights: a parameter's gradient would gather several layers' terms
    frozen = any(not p.requires_grad for p in params)
    return None if not trainable or shared or frozen or any(id(p) not in owned for p in trainable) else layers


def layer_signals(model: nn.Module, layers: list[nn.Module], x: Tensor,
                  objectives: Callable[[Tensor], list[Tensor]]) -> list[tuple[nn.Module, Tensor, list[Tensor]]]:
    """What the gradients of linear layers are made of, without forming them: for each layer, in the order the
    forward pass runs them, its input a (one row per example) and, for each scalar objective of the model's output
    (a sum over the examples), the signal d = d objective / d (layer output). Example i's gradient of the layer's
    weight is the outer product of d_i and a_i (its bias gradient is d_i), so squared per-example gradient norms,
    summed gradients and tangent kernels follow from a and d (Goodfellow 2015). Examples must not interact (no
    batch statistics, one dropout mask per example). Raises ValueError if a layer runs twice or not at all, or sees more than one dimension per example."""
    calls: list[tuple[nn.Module, Tensor, Tensor]] = []

    def keep(layer, args, out):
        if args[0].dim() != 2:
            raise ValueError("inputs with more than one dimension per example")
        calls.append((layer, args[0].detach(), out))

    hooks = [layer.register_forward_hook(keep) for layer in layers]
    try:
        with torch.enable_grad():
            scalars = objectives(model(x))
            if sorted(id(layer) for layer, _, _ in calls) != sorted(id(layer) for layer in layers):
                raise ValueError("a linear layer ran twice, or not at all, in one forward pass")
            outputs = [out for _, _, out in calls]
            signals = [torch.autograd.grad(scalar, outputs, retain_graph=k < len(scalars) - 1)
                       for k, scalar in enumerate(scalars)]
    finally:
        for hook in hooks:
            hook.remove()
    return [(layer, a, [signal[i] for signal in signals]) for i, (layer, a, _) in enumerate(calls)]


def _norms_and_sum_linear(model: nn.Module, layers: list[nn.Linear], x: Tensor, y: Tensor, each) -> tuple[Tensor, Tensor]:
    """Per-example squared gradient norms and the summed gradient, from one backward pass: example i's weight
    gradient is d_i a_i^T, so its squared norm is |d_i|^2 |a_i|^2 (the bias adds |d_i|^2)."""
    norms = torch.zeros(len(y), device=x.device)
    total = []
    for layer, a, (d,) in layer_signals(model, layers, x, lambda out: [each(out, y).sum()]):
        d2 = d.pow(2).sum(1)
        norms += d2 * a.pow(2).sum(1) + (d2 if layer.bias is not None else 0)
        total += [(d.T @ a).flatten()] + ([d.sum(0)] if layer.bias is not None else [])
    return norms, torch.cat(total)


def coherence(model: nn.Module, split: TensorData, *, loss: str = "cross_entropy", n_classes: int | None = None,
              batch_size: int = 1024) -> Coherence:
    """The coherence of the per-example gradients of `model` over all of `split` (Chatterjee & Zielinski 2022).

    Measured in eval mode. For networks whose parameters all sit in nn.Linear layers the per-example gradients are
    never formed (their norms come from one backward pass a batch); for others they are formed 64 at a time.
    """
    each = per_example_loss(loss, n_classes)
    sum_sq = torch.zeros((), device=split.device, dtype=torch.float64)
    total: Tensor | None = None
    layers = linear_layers(model)
    with evaluating(model):
        for x, y in split.batches(batch_size, shuffle=False):
            if layers is not None:
                try:
                    norms, batch_total = _norms_and_sum_linear(model, layers, x, y, each)
                except ValueError:  # shared layers or sequence inputs: form the gradients instead
                    layers = None
            if layers is None:  # 64 examples' gradients at a time: memory of 64 copies of the parameters
                norms, batch_total = torch.zeros(len(y), device=x.device), 0
                for start in range(0, len(y), 64):
                    grads, _ = per_example(model, x[start:start + 64], y[start:start + 64], loss=loss, n_classes=n_classes)
                    flat = torch.cat([g.reshape(len(g), -1) for g in grads.values()], 1)
                    norms[start:start + 64], batch_total = flat.pow(2).sum(1), batch_total + flat.sum(0)
            sum_sq += norms.double().sum()
            total = batch_total.double() if total is None else total + batch_total.double()
    m = len(split)
    return Coherence(alpha=float(total.pow(2).sum() / m ** 2 / (sum_sq / m)), m=m)


# --- aggregates: how a batch's per-example gradients become one step -------------------------------------------

def aggregate(combine: Callable[[Gradients], Gradients]) -> Aggregate:
    """Mark `combine` (a batch's per-example gradients -> the step's gradients) as a rule gt.fit(..., gradient=)
    trains with. It gains backward(model, x, y, loss=..., n_classes=...), which forms the batch's per-example
    gradients, puts their combination in the parameters' .grad and returns the per-example losses; so the training
    loop knows nothing of per-example gradients."""
    def backward(model: nn.Module, x: Tensor, y: Tensor, *, loss: str, n_classes: int | None) -> Tensor:
        grads, losses = per_example(model, x, y, loss=loss, n_classes=n_classes)
        for name, step in combine(grads).items():
            model.get_parameter(name).grad = step
        return losses

    combine.backward = backward
    return combine


@aggregate
def mean(grads: Gradients) -> Gradients:
    """The ordinary mini-batch gradient."""
    return {name: g.mean(0) for name, g in grads.items()}


def winsorized(c: int) -> Aggregate:
    """Clip every coordinate to the range of its (c+1)-th smallest and (c+1)-th largest values over the batch,
    then average: a direction pushed by at most c examples moves little (Chatterjee 2020's winsorized gradient
    descent). c = 0 is the mean."""
    if c < 0:
        raise ValueError(f"c must be at least 0, got {c}")

    @aggregate
    def winsorize(grads: Gradients) -> Gradients:
        result = {}
        for name, g in grads.items():
            if 2 * c >= len(g):
                raise ValueError(f"winsorizing {c} values at each end needs batches of more than {2 * c} examples")
            if c == 0:
                result[name] = g.mean(0)
                continue
            high = g.topk(c + 1, 0).values[-1]  # the (c+1)-th largest value of every coordinate
            low = g.topk(c + 1, 0, largest=False).values[-1]
            result[name] = g.clamp(low, high).mean(0)
        return result

    winsorize.__qualname__ = f"winsorized({c})"
    return winsorize


def median_of_means(groups: int = 3) -> Aggregate:
    """Split the batch into `groups` parts, average each, and take every coordinate's median over the parts (with 3
    parts, Zielinski et al.'s "M3"): a direction needs a majority of the parts to move."""
    if groups < 1 or groups % 2 == 0:
        raise ValueError(f"groups must be an odd number (the median is then one of the means), got {groups}")

    @aggregate
    def median(grads: Gradients) -> Gradients:
        return {name: torch.stack([part.mean(0) for part in g.tensor_split(groups)]).median(0).values
                for name, g in grads.items()}

    median.__qualname__ = f"median_of_means({groups})"
    return median
