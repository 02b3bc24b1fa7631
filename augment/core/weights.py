"""Networks whose first weights come from a given ``torch.Generator``, not from torch's global one.

torch's layers draw their first weights from the process-wide generator while they are being
constructed. Seeding that generator for a model changes the caller's random state, and two models
built side by side in threads (``balance_many_flow``, per-class units) would take each other's
numbers. :func:`build` constructs the network on the meta device instead (no memory, no draw),
then draws every parameter from the generator it is given, with the distributions and in the order
of torch's own constructors: the same weights as ``torch.manual_seed(seed)`` followed by the
constructor, so a seed makes the same models as before::

    generator = torch.Generator().manual_seed(seed)
    critic = build(lambda: Critic(in_dim, hidden, pac), generator).to(device)

The order is the modules' registration order (``module.modules()``), which is the order their
constructors ran in for every network in augment; ``tests/unit/test_weights.py`` checks each of
them bit for bit against the global-generator construction. A module of augment that changes its
children's first weights (zeros, say) does it in its own ``reset_parameters()``, which
:func:`build` calls after its children have been drawn, as its constructor does.

Private API, on purpose: a spectrally normalised layer keeps its power-iteration vectors in the
``_u`` and ``_v`` buffers of torch's private ``_SpectralNorm``, drawn from the global generator
when ``spectral_norm`` is applied. They are drawn again here through its own private
``_reshape_weight_to_matrix`` and ``_power_method`` (no public route takes a generator). Any
parameter or buffer :func:`build` does not know how to fill is refused with a ``TypeError``, never
left empty, so a torch that changes these names fails loudly, and the test above catches a change
of numbers; run it after moving torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _SpectralNorm

ModuleT = TypeVar("ModuleT", bound=nn.Module)

# Layers whose reset_parameters draws kaiming_uniform_(weight, a=sqrt(5)), then a uniform bias.
_KAIMING = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)
# Layers whose reset_parameters draws nothing (ones, zeros, running statistics).
_FIXED = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
# spectral_norm applies one power iteration more when it registers the parametrization (its
# check calls the parametrization once, in training mode) after the 15 of _SpectralNorm.__init__.
_SPECTRAL_ITERATIONS = 15 + 1


def build(make: Callable[[], ModuleT], generator: torch.Generator | None) -> ModuleT:
    """``make()``'s network on the CPU, its first weights drawn from ``generator``.

    Args:
        make: constructs the network (called under ``torch.device("meta")``, thread-local).
        generator: a CPU generator; the weights are those ``torch.manual_seed(s)`` then
            ``make()`` would give when it is ``torch.Generator().manual_seed(s)``. ``None``: the
            tensors are left uninitialised, for a caller that loads a full state dict into them.

    Returns:
        The network, on the CPU; move it with ``.to(device)``.

    Raises:
        TypeError: the network holds a layer whose first weights this module cannot draw.
    """
    with torch.device("meta"):
        module = make()
    module.to_empty(device="cpu")
    if generator is not None:
        with torch.no_grad():
            _draw(module, generator)
    return module


def _draw(module: nn.Module, generator: torch.Generator) -> None:
    """Fill ``module`` and its children, in registration order (see the module docstring)."""
    if isinstance(module, parametrize.ParametrizationList):
        _draw_parametrizations(module, generator)
        return  # its `original` is drawn by the layer that owns it
    if isinstance(module, _KAIMING):
        weight = _weight(module)
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
        if module.bias is not None:
            fan_in = weight.shape[1] * math.prod(weight.shape[2:])
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            nn.init.uniform_(module.bias, -bound, bound, generator=generator)
    elif isinstance(module, nn.Embedding):
        weight = _weight(module)
        nn.init.normal_(weight, generator=generator)
        if module.padding_idx is not None:
            weight[module.padding_idx].fill_(0)
    elif isinstance(module, _FIXED):
        module.reset_parameters()
    elif any(True for _ in module.parameters(recurse=False)) or any(
        True for _ in module.buffers(recurse=False)
    ):
        raise TypeError(
            f"augment.core.weights.build cannot draw the first weights of a "
            f"{type(module).__name__}; add its reset_parameters to augment/core/weights.py"
        )
    for child in module.children():
        _draw(child, generator)
    if not type(module).__module__.startswith("torch.") and hasattr(module, "reset_parameters"):
        module.reset_parameters()  # augment's own module: after its children, as its __init__


def _weight(module: nn.Module) -> torch.Tensor:
    """The tensor the layer's ``weight`` is made from (the original under a parametrization)."""
    if parametrize.is_parametrized(module, "weight"):
        return module.parametrizations.weight.original
    return module.weight


def _draw_parametrizations(
    parametrizations: parametrize.ParametrizationList, generator: torch.Generator
) -> None:
    for parametrization in parametrizations:
        if isinstance(parametrization, _SpectralNorm):
            _draw_spectral_vectors(parametrization, parametrizations.original, generator)
        elif any(True for _ in parametrization.parameters()) or any(
            True for _ in parametrization.buffers()
        ):
            raise TypeError(
                f"augment.core.weights.build cannot draw the state of a "
                f"{type(parametrization).__name__} parametrization; add it to "
                "augment/core/weights.py"
            )


def _draw_spectral_vectors(
    norm: _SpectralNorm, original: torch.Tensor, generator: torch.Generator
) -> None:
    """``_SpectralNorm.__init__``'s draws and power iterations, from ``generator``."""
    if original.ndim <= 1:
        return  # no vectors: a 1-d weight is normalised exactly
    weight_mat = norm._reshape_weight_to_matrix(original)
    h, w = weight_mat.shape
    u = weight_mat.new_empty(h).normal_(0, 1, generator=generator)
    v = weight_mat.new_empty(w).normal_(0, 1, generator=generator)
    norm._u.copy_(F.normalize(u, dim=0, eps=norm.eps))
    norm._v.copy_(F.normalize(v, dim=0, eps=norm.eps))
    norm._power_method(weight_mat, _SPECTRAL_ITERATIONS)
