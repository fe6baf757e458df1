"""Gradient clipping in the fine-tuning Trainer (FinetuneConfig.grad_clip).

A loss scaled by 1e4 gives gradients with a global norm in the thousands. A global optimizer
step pre-hook records the global gradient norm the optimizer actually receives: with
``grad_clip=c`` it is c; with ``grad_clip=None`` it is the raw norm, computed independently here.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.utils.data import DataLoader, TensorDataset

from transferkit.config import FinetuneConfig
from transferkit.training.trainer import Trainer

pytestmark = pytest.mark.usefixtures("torch_single_thread")

SCALE = 1e4


def huge_loss(logits, y):
    return nn.functional.cross_entropy(logits, y) * SCALE


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 6, generator=g)
    y = (x[:, 0] > 0).long()
    return x, y


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))


def _norms_seen_by_the_optimizer(grad_clip, epochs=1):
    """Global grad norms at each optimizer step of a Trainer run with this grad_clip."""
    norms: list[float] = []

    def hook(optimizer, args, kwargs):
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))

    x, y = _data()
    ds = TensorDataset(x, y)
    cfg = FinetuneConfig(epochs=epochs, batch_size=8, lr=1e-6, grad_clip=grad_clip, mixed_precision="no", patience=10)
    handle = register_optimizer_step_pre_hook(hook)
    try:
        Trainer(_model(), huge_loss, cfg, device="cpu", progress=False, evaluate_initial=False).fit(
            DataLoader(ds, batch_size=8, shuffle=False), DataLoader(ds, batch_size=24))
    finally:
        handle.remove()
    return norms


def _raw_first_step_norm() -> float:
    """The unclipped global gradient norm of the first batch, computed without the Trainer."""
    model = _model()
    x, y = _data()
    huge_loss(model(x[:8]), y[:8]).backward()
    return float(torch.nn.utils.get_total_norm([p.grad for p in model.parameters()]))


def test_without_clipping_the_optimizer_gets_the_raw_gradient():
    norms = _norms_seen_by_the_optimizer(None)
    assert len(norms) == 3  # 24 samples / batch 8
    raw = _raw_first_step_norm()
    assert raw > 100  # the scenario: gradients far above any clip value used below
    assert norms[0] == pytest.approx(raw, rel=1e-5)
    assert all(n > 100 for n in norms)


@pytest.mark.parametrize("clip", [1.0, 3.0])
def test_clipping_caps_the_global_gradient_norm_at_the_clip_value(clip):
    norms = _norms_seen_by_the_optimizer(clip, epochs=2)
    assert len(norms) == 6
    assert norms == pytest.approx([clip] * 6, rel=1e-4)


def test_a_clip_above_the_gradient_norm_leaves_it_unchanged():
    unclipped = _norms_seen_by_the_optimizer(None)
    loose = _norms_seen_by_the_optimizer(1e9)
    assert loose == pytest.approx(unclipped, rel=1e-6)


def test_a_step_whose_gradient_norm_is_not_finite_is_skipped_and_counted_not_zeroed_silently(capsys):
    """Clipping an inf norm multiplies every gradient by 0 (the step then only decays weights): all-MiniLM-L6-v2's full
    fine-tuning trained nothing that way. Such a step is now skipped, counted per epoch and reported."""
    calls = {"n": 0}

    def inf_on_first_batch(logits, y):
        calls["n"] += 1
        loss = nn.functional.cross_entropy(logits, y)
        return loss * float("inf") if calls["n"] == 1 else loss

    x, y = _data()
    ds = TensorDataset(x, y)
    model = _model()
    start = [p.detach().clone() for p in model.parameters()]
    cfg = FinetuneConfig(epochs=1, batch_size=8, lr=1e-2, weight_decay=0.0, grad_clip=1.0, mixed_precision="no", patience=10)
    trainer = Trainer(model, inf_on_first_batch, cfg, device="cpu", progress=False, evaluate_initial=False).fit(
        DataLoader(ds, batch_size=8, shuffle=False), DataLoader(ds, batch_size=24))
    assert trainer.history_[0].skipped_steps == 1
    assert "1 of 3 step(s) in epoch 1 skipped" in capsys.readouterr().out
    params = list(trainer.model_.parameters())
    assert all(torch.isfinite(p).all() for p in params)
    assert any(not torch.equal(p, s) for p, s in zip(params, start))  # the two finite steps trained


def test_an_epoch_with_no_finite_gradient_is_an_error_that_says_what_to_try():
    from transferkit.errors import TrainingError

    x, y = _data()
    ds = TensorDataset(x, y)
    cfg = FinetuneConfig(epochs=2, batch_size=8, lr=1e-2, grad_clip=1.0, mixed_precision="no", patience=10)
    with pytest.raises(TrainingError, match=r"every step of fine-tuning epoch 1 \(3\) had a gradient norm that is not finite.*--ft-lr"):
        Trainer(_model(), lambda logits, y: nn.functional.cross_entropy(logits, y) * float("inf"), cfg, device="cpu", progress=False,
                evaluate_initial=False).fit(DataLoader(ds, batch_size=8, shuffle=False), DataLoader(ds, batch_size=24))
