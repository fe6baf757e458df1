"""Early stopping of image fine-tuning: patience P stops after P epochs without a better validation loss,
and the weights kept (in memory, in checkpoints/best and in RUN/model/) are the best epoch's, not the last's.

The validation losses are scripted (``Trainer._validate`` is replaced) so each test knows the best epoch;
the weights evaluated at each call are recorded, so "the best epoch's weights" can be compared exactly.
"""

from __future__ import annotations

import copy

import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import transferkit as tk
import transferkit.training.trainer as trainer_mod
from conftest import TINY
from transferkit.config import DataConfig, FinetuneConfig, FitConfig

pytestmark = pytest.mark.usefixtures("torch_single_thread")

INITIAL = 5.0  # epoch-0 validation loss (before training): worse than every scripted epoch


def _script(monkeypatch, losses: list[float]) -> list[dict[str, torch.Tensor]]:
    """Make validation call k (0 = before training, k = after epoch k) return losses[k]; record the weights it saw."""
    seen: list[dict[str, torch.Tensor]] = []

    def scripted(self, model, loader):
        raw = self.accelerator_.unwrap_model(model)
        seen.append(copy.deepcopy({k: v.detach().clone() for k, v in raw.state_dict().items()}))
        return losses[len(seen) - 1], 0.5

    monkeypatch.setattr(trainer_mod.Trainer, "_validate", scripted)
    return seen


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _toy_loaders():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 4, generator=g)
    y = (x[:, 0] > 0).long()
    ds = TensorDataset(x, y)
    return DataLoader(ds, batch_size=8, shuffle=False), DataLoader(ds, batch_size=16, shuffle=False)


#            epoch: 1    2    3    4     5    6    7    8     9    10
EPOCH_LOSSES = [1.0, 0.5, 0.7, 0.6, 0.55, 0.9, 0.4, 0.45, 0.5, 0.6]


@pytest.mark.parametrize(("patience", "best", "epochs_run", "stopped"), [
    (1, 2, 3, True),    # epoch 3 is not better than epoch 2: stop
    (3, 2, 5, True),    # epochs 3, 4, 5 not better than 0.5: stop after epoch 5
    (5, 7, 10, False),  # epochs 3-6 are 4 < 5 stale epochs, epoch 7 improves; the epoch limit (10) ends the run
])
def test_patience_counts_epochs_without_a_better_validation_loss(monkeypatch, tmp_path, patience, best, epochs_run, stopped):
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    seen = _script(monkeypatch, [INITIAL, *EPOCH_LOSSES])
    cfg = FinetuneConfig(epochs=10, patience=patience, batch_size=8, lr=1e-2, warmup_fraction=0.0, mixed_precision="no")
    train, val = _toy_loaders()
    trainer = trainer_mod.Trainer(model, nn.CrossEntropyLoss(), cfg, device="cpu", progress=False,
                                  checkpoint_dir=tmp_path / "ckpt").fit(train, val)
    assert len(trainer.history_) == epochs_run and [h.epoch for h in trainer.history_] == list(range(1, epochs_run + 1))
    assert len(seen) == epochs_run + 1  # no epoch trained (and validated) after the stop
    assert trainer.best_epoch_ == best and trainer.best_val_loss_ == EPOCH_LOSSES[best - 1]
    assert trainer.stopped_early_ is stopped
    assert [h.val_loss for h in trainer.history_] == EPOCH_LOSSES[:epochs_run]
    # the weights kept are those validated after the best epoch, not the last epoch's (which differ)
    final = trainer.model_.state_dict()
    assert _same(final, seen[best])
    assert not _same(seen[best], seen[epochs_run])
    assert _same(load_file(str(tmp_path / "ckpt" / "best" / "model.safetensors")), seen[best])


def test_a_tie_with_the_best_loss_is_not_an_improvement(monkeypatch):
    torch.manual_seed(0)
    seen = _script(monkeypatch, [INITIAL, 0.5, 0.5, 0.5, 0.1])
    cfg = FinetuneConfig(epochs=4, patience=2, batch_size=8, lr=1e-2, warmup_fraction=0.0, mixed_precision="no")
    trainer = trainer_mod.Trainer(nn.Linear(4, 2), nn.CrossEntropyLoss(), cfg, device="cpu", progress=False).fit(*_toy_loaders())
    assert len(trainer.history_) == 3 and trainer.stopped_early_ and trainer.best_epoch_ == 1  # 0.1 at epoch 4 never reached
    assert _same(trainer.model_.state_dict(), seen[1])


def test_fit_finetune_saves_the_best_epoch_in_the_run_folder(image_folder, tmp_path, monkeypatch):
    # best at epoch 2, then two epochs without improvement: patience 2 stops after epoch 4 of at most 6
    losses = [INITIAL, 1.0, 0.3, 0.8, 0.9, 0.1, 0.1]
    seen = _script(monkeypatch, losses)
    config = FitConfig(data=DataConfig(root=image_folder), backbone=TINY, weights="none", strategy="finetune",
                       finetune=FinetuneConfig(epochs=6, patience=2, batch_size=8, lr=1e-3, unfreeze="last:2", wise_alpha=1.0))  # no WiSE-FT mix
    out = tmp_path / "run"
    r = tk.fit(config=config, out=out, progress=False, report=False)
    tr = r.metrics["training"]
    assert tr["chosen"] == "finetune"
    assert tr["best_epoch"] == 2 and tr["epochs_run"] == 4 and tr["stopped_early"] is True
    assert tr["best_val_loss"] == pytest.approx(0.3)
    assert [h["epoch"] for h in r.history if h.get("stage") == "finetune"] == [1, 2, 3, 4]
    assert len(seen) == 5
    saved = tk.load(out).state_dict()
    assert _same(saved, seen[2]), "RUN/model/ does not hold the best epoch's weights"
    assert not _same(saved, seen[4])  # ... and the last epoch's really were different
