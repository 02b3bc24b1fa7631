"""An Adam for small networks whose steps are bound by Python overhead, not arithmetic.

The tabular GAN takes four optimizer steps per training step on networks of a few hundred
thousand weights. There, torch's ``Adam(fused=True).step()`` spends about twice as long in its
Python bookkeeping (step hooks, profiler labels, grouping the tensors by device and dtype,
re-reading the state of every parameter) as in the fused kernel itself: measured on
breast_cancer, 0.37 ms a call of which the kernel was 0.11 ms.

:class:`LeanAdam` is that same optimizer, with the same state and ``state_dict`` (checkpoints move
freely between the two), plus :meth:`LeanAdam.lean_step`. The first call is an ordinary
``step()``, which creates the state and checks the parameters; later calls hand the cached lists
of parameters and state straight to the fused kernel. Loading a state dict drops the cache.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

# The fused Adam kernel that ``Adam(fused=True)`` calls (an ATen op); if a torch build lacks it,
# lean_step is a plain step().
_FUSED_ADAM = getattr(torch, "_fused_adam_", None)


class LeanAdam(torch.optim.Adam):
    """``torch.optim.Adam(fused=True)`` with a low-overhead :meth:`lean_step` (one param group)."""

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, fused=True)
        if len(self.param_groups) != 1:
            raise ValueError("LeanAdam takes a single parameter group")
        self._cache: tuple[list[torch.Tensor], ...] | None = None
        self.register_load_state_dict_post_hook(LeanAdam._forget)

    @staticmethod
    def _forget(optimizer: LeanAdam) -> None:
        optimizer._cache = None  # the state tensors were replaced

    def zero_grad(self, set_to_none: bool = True) -> None:
        if self._cache is None or not set_to_none:
            super().zero_grad(set_to_none)
            return
        for param in self._cache[0]:
            param.grad = None

    @torch.no_grad()
    def lean_step(self) -> None:
        """One Adam update; every parameter must have a gradient."""
        if self._cache is None or _FUSED_ADAM is None:
            self.step()
            self._remember()
            return
        params, exp_avgs, exp_avg_sqs, steps, ones = self._cache
        grads = [param.grad for param in params]
        if any(grad is None for grad in grads):
            raise RuntimeError("LeanAdam.lean_step: a parameter has no gradient; use step()")
        group = self.param_groups[0]
        beta1, beta2 = group["betas"]
        torch._foreach_add_(steps, ones)  # a list of tensors: 3x faster here than a scalar 1
        _FUSED_ADAM(
            params,
            grads,
            exp_avgs,
            exp_avg_sqs,
            [],
            steps,
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            amsgrad=False,
            maximize=False,
        )

    def _remember(self) -> None:
        group = self.param_groups[0]
        params = list(group["params"])
        states = [self.state.get(param, {}) for param in params]
        plain = not (group["amsgrad"] or group["maximize"] or group["differentiable"])
        same_kind = len({(param.device, param.dtype) for param in params}) == 1
        if plain and same_kind and all("exp_avg" in state for state in states):
            self._cache = (
                params,
                [state["exp_avg"] for state in states],
                [state["exp_avg_sq"] for state in states],
                [state["step"] for state in states],
                [torch.ones_like(state["step"]) for state in states],
            )
