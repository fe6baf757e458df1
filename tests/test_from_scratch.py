"""Fine-tuning a random-init backbone (``--weights none``): the no-transfer baseline must train, not collapse.

A deep random-init network with BatchNorm placeholder statistics computes features of about 1e-7 in eval mode
(mobilenet_v2 at width 0.1; 1e-9 at full width). Stage one's head standardises them, i.e. multiplies by about 1e8, so
before the fix the first fine-tuning step blew the loss up to 1e4-1e6 and the model ended predicting one class.
"""

from functools import partial

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

import transferkit as tk
from transferkit.backbones import BackboneSpec, WeightsCfg, register_backbone
from transferkit.backbones import _registry
from transferkit.config import AugmentConfig, FinetuneConfig
from transferkit.training.finetune import from_scratch_config, prepare_from_scratch, trains_from_scratch

pytestmark = pytest.mark.usefixtures("torch_single_thread")

DEEP = "deep_tiny_scratch"  # a name no registry wildcard of the other tests matches (e.g. "mobilenet*")
if DEEP not in _registry._REGISTRY:
    register_backbone(BackboneSpec(
        name=DEEP, family="mobilenet", library="torchvision", arch="mobilenet_v2",
        build=partial(torchvision.models.mobilenet_v2, weights=None, width_mult=0.1),
        weights=WeightsCfg(tag="test", input_size=(3, 64, 64), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_pct=1.0),
        num_features=1280, num_params=1_367_080, tags=("test",),
    ))


def _model(classes, weights="none"):
    torch.manual_seed(0)
    backbone = tk.load_backbone(DEEP, weights=weights)
    return tk.TransferModel(backbone, tk.DenseHead(backbone.num_features, len(classes)), classes)


def test_prepare_from_scratch_estimates_batchnorm_statistics_and_starts_a_fresh_head(image_folder):
    splits = tk.load_image_folder(image_folder, seed=0)
    model = _model(splits.classes)
    model.eval()
    images = torch.stack([tk.data.make_transforms(model.backbone.data_cfg)(tk.data.open_image(r.path)) for r in splits.train])
    with torch.no_grad():
        placeholder = model.backbone(images)
    assert placeholder.abs().max() < 1e-4  # the failure's premise: eval-mode features of a random deep network vanish
    model.head.set_feature_stats(placeholder)  # what stage one fitted on them
    assert model.head.feature_std.median() < 1e-4  # most features: scaled up by 1e4 or more
    stage_one = [p.detach().clone() for p in model.head.parameters()]

    prepare_from_scratch(model, splits.train, batch_size=8, device="cpu")
    assert not model.training
    bns = [m for m in model.backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(not torch.all(m.running_mean == 0) for m in bns)  # estimated, not the placeholders
    with torch.no_grad():
        features = model.backbone(images)
        logits = model(images)
    assert features.abs().mean() > 1e-3  # the signal now reaches the end of the network
    assert torch.all(model.head.feature_mean == 0) and torch.all(model.head.feature_std == 1)  # no amplification
    assert all(not torch.equal(p, q) for p, q in zip(model.head.parameters(), stage_one))  # re-initialised
    assert logits.abs().max() < 20  # an ordinary start: the loss is that of a fresh head


def test_from_scratch_config_lifts_the_settings_that_protect_pretrained_weights(image_folder, tmp_path):
    splits = tk.load_image_folder(image_folder, seed=0)
    scratch = _model(splits.classes)
    assert trains_from_scratch(scratch)
    used, record = from_scratch_config(scratch, FinetuneConfig())
    assert used.freeze_bn is False and used.wise_alpha == 1.0
    assert record["changed"] == {"freeze_bn": {"requested": True, "used": False}, "wise_alpha": {"requested": 0.5, "used": 1.0}}
    assert from_scratch_config(scratch, used)[1]["changed"] == {}  # already from-scratch settings: nothing to change

    from safetensors.torch import save_file

    torch.manual_seed(3)
    net = torchvision.models.mobilenet_v2(width_mult=0.1)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "random.safetensors"))
    saved_random = _model(splits.classes, weights=str(tmp_path / "random.safetensors"))
    assert saved_random.backbone.weights_record["source"] != "none"
    assert trains_from_scratch(saved_random)  # a random init saved to a file (selection's controls): BN never estimated
    with torch.no_grad():
        net.train()(torch.rand(4, 3, 64, 64))  # statistics estimated, as in any pretrained file
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "trained.safetensors"))
    pretrained = _model(splits.classes, weights=str(tmp_path / "trained.safetensors"))
    assert not trains_from_scratch(pretrained)
    config = FinetuneConfig()
    assert from_scratch_config(pretrained, config) == (config, None)  # pretrained weights: the defaults stand
    scratch.backbone.weights_record = {**scratch.backbone.weights_record, "fine_tuned": True}
    assert not trains_from_scratch(scratch)  # trained once already: its statistics are no placeholders


def test_fit_finetunes_a_random_init_deep_backbone_without_blowing_up(image_folder, tmp_path):
    res = tk.fit(image_folder, model=DEEP, weights="none", strategy="finetune", finetune_epochs=2, seed=0, device="cpu",
                 progress=False, report=False, out=tmp_path / "run")
    ft = res.metrics["stages"]["finetune"]["training"]
    losses = [h["train_loss"] for h in res.history if h.get("stage") == "finetune"]
    assert len(losses) == 2
    assert max(losses) < 5 * np.log(2), losses  # before the fix: 1e4-1e6 in the first epoch
    assert ft["best_val_loss"] < 5 * np.log(2)
    assert ft["from_scratch"]["changed"]["wise_alpha"] == {"requested": 0.5, "used": 1.0}
    assert "wise_ft" not in ft  # no mix with the random start
    proba = res.model.predict_proba_tensor(torch.stack([
        tk.data.make_transforms(res.model.data_cfg)(tk.data.open_image(r.path)) for r in res.splits.test]))
    assert np.isfinite(proba).all()


def test_finetune_image_model_used_alone_prepares_a_random_init_backbone(image_folder):
    from transferkit.training.finetune import finetune_image_model

    splits = tk.load_image_folder(image_folder, seed=0)
    model = _model(splits.classes)
    trainer = finetune_image_model(model, splits, FinetuneConfig(epochs=1, batch_size=8), AugmentConfig(enabled=False), seed=0,
                                   device="cpu", progress=False)
    assert trainer.history_[0].train_loss < 5 * np.log(2)
    assert trainer.config.freeze_bn is False and trainer.config.wise_alpha == 1.0


def test_cli_summary_says_the_backbone_trained_from_scratch(image_folder, tmp_path):
    from typer.testing import CliRunner

    from transferkit.cli.app import app

    res = CliRunner().invoke(app, ["fit", str(image_folder), "--model", DEEP, "--weights", "none", "--strategy", "finetune",
                                   "--ft-epochs", "1", "--out", str(tmp_path / "run"), "--quiet", "--no-report", "--device", "cpu"],
                             env={"COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"})
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.replace("│", " ").split())  # the summary panel wraps long lines
    assert "from scratch: random-init backbone trained from scratch" in text
    assert "wise_alpha 0.5 -> 1.0" in text and "WiSE-FT:" not in text


def test_auto_from_scratch_compares_with_stage_ones_probe_not_the_fresh_head(image_folder, tmp_path):
    """Fine-tuning from scratch starts from a fresh head, so the trainer's starting loss is not the probe's: auto used it
    as the probe's validation loss (1.10 where the probe scored 0.49) while its interval came from the real probe."""
    res = tk.fit(image_folder, model=DEEP, weights="none", strategy="auto", auto_rule="lower-val-loss", finetune_epochs=1, seed=0,
                 device="cpu", progress=False, report=False, out=tmp_path / "run")
    ev = res.metrics["training"]["auto"]
    ft = res.metrics["stages"]["finetune"]["training"]
    assert ev["val_loss_linear_probe"] != pytest.approx(ft["initial_val_loss"], abs=1e-6)  # the fresh head's start
    assert ev["difference"] == pytest.approx(ev["val_loss_finetune"] - ev["val_loss_linear_probe"], abs=1e-3)
    expected = "finetune" if ev["val_loss_finetune"] < ev["val_loss_linear_probe"] else "linear-probe"
    assert ev["chosen"] == res.metrics["training"]["chosen"] == expected
