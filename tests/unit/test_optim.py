"""LeanAdam: the same updates and state as torch's fused Adam, with less per-step overhead."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

from augment.core import optim
from augment.core.optim import LeanAdam


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))


def _train(net: torch.nn.Module, optimizer, steps: range, lean: bool) -> None:
    data = torch.Generator().manual_seed(1)
    for _ in range(steps.start):  # the same batches whatever step the run starts at
        torch.randn(16, 5, generator=data)
    for _ in steps:
        optimizer.zero_grad(set_to_none=True)
        net(torch.randn(16, 5, generator=data)).pow(2).mean().backward()
        optimizer.lean_step() if lean else optimizer.step()


def test_lean_steps_equal_torchs_fused_adam_across_a_state_dict_round_trip():
    reference = _net()
    torch_adam = torch.optim.Adam(reference.parameters(), lr=1e-2, betas=(0.5, 0.9), fused=True)
    _train(reference, torch_adam, range(12), lean=False)

    ours = _net()
    lean = LeanAdam(ours.parameters(), lr=1e-2, betas=(0.5, 0.9))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no silent fallback to step()
        _train(ours, lean, range(5), lean=True)
    assert lean._cache is not None and lean._fast  # later steps go straight to the kernel
    # copies: a loaded optimizer may share (and update) the state dict's tensors
    saved = copy.deepcopy((ours.state_dict(), lean.state_dict()))

    # a checkpoint taken by LeanAdam resumes in LeanAdam (the cache follows the new state) ...
    resumed = _net()
    resumed.load_state_dict(saved[0])
    again = LeanAdam(resumed.parameters(), lr=1e-2, betas=(0.5, 0.9))
    again.load_state_dict(copy.deepcopy(saved[1]))
    assert again._cache is None
    _train(resumed, again, range(5, 12), lean=True)
    # ... and in torch's Adam
    plain = _net()
    plain.load_state_dict(saved[0])
    torch_again = torch.optim.Adam(plain.parameters(), lr=1e-2, betas=(0.5, 0.9), fused=True)
    torch_again.load_state_dict(copy.deepcopy(saved[1]))
    _train(plain, torch_again, range(5, 12), lean=False)

    for a, b, c in zip(
        reference.parameters(), resumed.parameters(), plain.parameters(), strict=True
    ):
        torch.testing.assert_close(b, a, rtol=0, atol=0)
        torch.testing.assert_close(c, a, rtol=0, atol=0)
    steps = [state["step"].item() for state in again.state.values()]
    assert steps == [12.0] * 4


def test_lean_step_refuses_a_parameter_without_gradient():
    net = _net()
    lean = LeanAdam(net.parameters())
    net(torch.randn(4, 5)).sum().backward()
    lean.lean_step()
    lean.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net[0](torch.randn(4, 5)).sum().backward()  # the last layer gets no gradient
    with pytest.raises(RuntimeError, match="no gradient"):
        lean.lean_step()


def _reference_run() -> list[torch.Tensor]:
    net = _net()
    _train(net, torch.optim.Adam(net.parameters(), lr=1e-2, fused=True), range(8), lean=False)
    return list(net.parameters())


def _assert_same_as_torch(net: torch.nn.Module, lean: LeanAdam) -> None:
    for ours, theirs in zip(net.parameters(), _reference_run(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    assert [state["step"].item() for state in lean.state.values()] == [8.0] * 4


def test_without_the_private_op_lean_step_is_torchs_fused_adam(monkeypatch):
    monkeypatch.setattr(optim, "_FUSED_ADAM", None)
    net = _net()
    lean = LeanAdam(net.parameters(), lr=1e-2)
    assert not lean._fast
    _train(net, lean, range(8), lean=True)
    _assert_same_as_torch(net, lean)


def test_a_changed_private_signature_falls_back_to_step_with_the_same_updates(monkeypatch):
    calls = []

    def changed_signature(*args, **kwargs):  # what a torch whose op changed would raise
        calls.append(1)
        raise TypeError("_fused_adam_() received an invalid combination of arguments")

    monkeypatch.setattr(optim, "_FUSED_ADAM", changed_signature)
    net = _net()
    lean = LeanAdam(net.parameters(), lr=1e-2)
    with pytest.warns(RuntimeWarning, match="falling back") as caught:
        _train(net, lean, range(8), lean=True)
    assert len(caught) == 1 and len(calls) == 1  # tried once, then step() for good
    assert not lean._fast
    # the refused call's step count was undone: every step counted once
    _assert_same_as_torch(net, lean)
