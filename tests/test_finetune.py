"""The fine-tuning engine on the tiny backbone: freezing, LR groups, BN, augmentation, LP-FT/auto."""

import json

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import transferkit as tk
from conftest import TINY
from transferkit.config import AugmentConfig, DataConfig, FinetuneConfig, FitConfig
from transferkit.data import make_transforms, open_image
from transferkit.training import (
    EpochSampler,
    layerwise_param_groups,
    make_train_transform,
    parse_unfreeze,
    set_train_mode,
    unfreeze_blocks,
    warmup_cosine,
    warmup_decay,
)
from transferkit.training.image_data import DecodedImageDataset
from transferkit.training.unfreeze import UnfreezeSpecError


def _tiny_backbone():
    return tk.load_backbone(TINY, weights="none")


def test_unfreeze_last_n_freezes_the_rest_and_keeps_frozen_bn_in_eval():
    bb = _tiny_backbone()
    blocks = bb.blocks()
    trainable = unfreeze_blocks(bb, blocks, "last:2")
    assert trainable == blocks[-2:]
    for b in blocks[:-2]:
        assert not any(p.requires_grad for p in b.parameters())
    for b in blocks[-2:]:
        assert all(p.requires_grad for p in b.parameters())
    set_train_mode(bb, freeze_bn=False)
    frozen_bn = [m for b in blocks[:-2] for m in b.modules() if isinstance(m, nn.BatchNorm2d)]
    live_bn = [m for b in blocks[-2:] for m in b.modules() if isinstance(m, nn.BatchNorm2d)]
    assert frozen_bn and live_bn
    assert not any(m.training for m in frozen_bn)
    assert all(m.training for m in live_bn)
    set_train_mode(bb, freeze_bn=True)
    assert not any(m.training for m in live_bn)
    assert all(unfreeze_blocks(bb, blocks, "all")[i] is blocks[i] for i in range(len(blocks)))
    assert all(p.requires_grad for p in bb.parameters())


@pytest.mark.parametrize("spec", ["last:0", "first:2", "last:x", ""])
def test_bad_unfreeze_spec_says_what_is_expected(spec):
    with pytest.raises(UnfreezeSpecError, match="'all' or 'last:N'"):
        parse_unfreeze(spec, 5)


def test_layerwise_lrs_decay_towards_the_input_and_skip_weight_decay_on_norms():
    bb = _tiny_backbone()
    blocks = bb.blocks()
    trainable = unfreeze_blocks(bb, blocks, "last:3")
    head = nn.Linear(bb.num_features, 2)
    groups = layerwise_param_groups(head, trainable, lr=1e-3, decay=0.5, weight_decay=0.01)
    lr_of = {g["name"]: g["lr"] for g in groups}
    assert lr_of["head"] == pytest.approx(1e-3)
    assert lr_of["block2"] == pytest.approx(5e-4)  # names index the blocks passed: block2 = the last
    assert lr_of["block0"] == pytest.approx(1.25e-4)
    assert all(g["weight_decay"] == 0 for g in groups if g["name"].endswith("no_decay"))
    # given the first unfrozen block's index, the names are the blocks' indices in the backbone
    named = layerwise_param_groups(head, trainable, lr=1e-3, decay=0.5, weight_decay=0.01, first_index=len(blocks) - 3)
    assert {g["name"] for g in named if g["name"].startswith("block") and "." not in g["name"]} == {
        f"block{i}" for i in range(len(blocks) - 3, len(blocks))}
    assert {g["name"]: g["lr"] for g in named}[f"block{len(blocks) - 1}"] == pytest.approx(5e-4)
    in_groups = {id(p) for g in groups for p in g["params"]}
    assert in_groups == {id(p) for p in [*head.parameters(), *(p for b in trainable for p in b.parameters())]}


def test_warmup_then_cosine():
    opt = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = warmup_cosine(opt, total_steps=20, warmup_steps=4)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] < lrs[1] < lrs[3] <= 1.0  # ramps up
    assert lrs[4] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))  # then decays monotonically
    assert lrs[-1] < 0.05


def test_warmup_then_linear_decay_is_a_straight_line_to_zero():
    opt = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = warmup_decay(opt, total_steps=12, warmup_steps=2, shape="linear")
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[2] == pytest.approx(1.0)
    steps = [a - b for a, b in zip(lrs[2:], lrs[3:])]
    assert steps == pytest.approx([0.1] * len(steps))  # equal steps: 1.0, 0.9, ..., 0.1
    with pytest.raises(ValueError, match="cosine"):
        warmup_decay(opt, 10, 1, shape="step")


def test_epoch_sampler_is_a_function_of_seed_and_epoch():
    s = EpochSampler(50, seed=3)
    s.set_epoch(1)
    a = list(s)
    s.set_epoch(2)
    b = list(s)
    s.set_epoch(1)
    assert list(s) == a and a != b and sorted(a) == list(range(50))
    w = np.r_[np.full(45, 1 / 45), np.full(5, 1 / 5)]  # 45 of class 0, 5 of class 1
    bal = EpochSampler(2000, seed=0, weights=np.resize(w, 2000))
    drawn = np.array(list(bal)) % 50
    assert 0.35 < np.mean(drawn >= 45) < 0.65  # minority drawn about half the time


def test_augmentation_is_train_only_and_eval_matches_the_predict_path(image_folder):
    splits = tk.load_image_folder(image_folder, progress=False)
    cfg = _tiny_backbone().data_cfg
    records = splits.train[:3]
    eval_ds = DecodedImageDataset(records, make_transforms(cfg), cfg)
    direct = torch.stack([make_transforms(cfg)(open_image(r.path)) for r in records])
    assert torch.allclose(torch.stack([eval_ds[i][0] for i in range(3)]), direct)
    train_ds = eval_ds.with_transform(make_train_transform(cfg, AugmentConfig()))
    train_ds.set_epoch(1)
    a = train_ds[0][0]
    assert a.shape == direct[0].shape
    assert torch.equal(a, train_ds[0][0])  # same (seed, epoch, index): same augmentation
    train_ds.set_epoch(2)
    assert not torch.equal(a, train_ds[0][0])  # new epoch: new draw
    off = make_train_transform(cfg, AugmentConfig(enabled=False))
    assert torch.allclose(off(open_image(records[0].path)), direct[0])


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic", "nearest"])
def test_augmentation_works_for_every_backbone_interpolation(image_folder, interpolation):
    # EfficientNet-Lite's pretrained config is bicubic; torchvision cannot rotate tensors bicubically.
    cfg = {**_tiny_backbone().data_cfg, "interpolation": interpolation}
    splits = tk.load_image_folder(image_folder, progress=False)
    out = make_train_transform(cfg, AugmentConfig(rotation=15))(open_image(splits.train[0].path))
    assert tuple(out.shape) == (3, *cfg["input_size"][-2:]) and torch.isfinite(out).all()


def _config(image_folder, strategy, weights="none", **ft):
    return FitConfig(data=DataConfig(root=image_folder), backbone=TINY, weights=weights, strategy=strategy,
                     finetune=FinetuneConfig(**{"epochs": 2, "batch_size": 8, **ft}))


def test_finetune_saves_a_loadable_transfer_model_with_both_stages(image_folder, tmp_path):
    out = tmp_path / "run"
    r = tk.fit(config=_config(image_folder, "finetune", unfreeze="last:2"), out=out, progress=False)
    tr = r.metrics["training"]
    assert tr["chosen"] == "finetune" and tr["unfreeze"] == "last:2" and tr["epochs_run"] == 2
    assert set(r.metrics["stages"]) == {"linear_probe", "finetune"}
    assert [h["epoch"] for h in r.history if h.get("stage") == "finetune"] == [1, 2]
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["test"]["accuracy"] == r.test["accuracy"]
    assert json.loads((out / "config.json").read_text())["fit"]["finetune"]["unfreeze"] == "last:2"
    assert (out / "checkpoints" / "latest.json").is_file()
    loaded = tk.load(out)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded(x), r.model.eval()(x), atol=1e-5)
    # the frozen blocks really did not move: same as a fresh random-init backbone with the same seed
    tk.training.seed_everything(0)
    fresh = tk.load_backbone(TINY, weights="none")
    first = dict(fresh.blocks()[0].named_parameters())
    for name, p in loaded.backbone.blocks()[0].named_parameters():
        assert torch.equal(p, first[name])


@pytest.mark.parametrize("lr", [0.5, 1e-3])  # an absurd LR (fine-tuning diverges), and an ordinary one
@pytest.mark.parametrize("rule", ["finetune-unless-worse", "lower-val-loss"])
def test_auto_keeps_the_stage_its_rule_picks(image_folder, tiny_weights, tmp_path, lr, rule):
    # weights from a file (a stand-in for pretrained ones): a random-init backbone trains from scratch, without WiSE-FT
    cfg = _config(image_folder, "auto", weights=str(tiny_weights), lr=lr, grad_clip=None)
    cfg.auto_rule = rule
    r = tk.fit(config=cfg, out=tmp_path / "run", progress=False)
    tr = r.metrics["stages"]["finetune"]["training"]
    # the evidence beside the choice: the paired difference of the two stages' validation losses, from their saved
    # validation probabilities, matches the trainer's own losses, and its interval brackets it
    ev = r.metrics["training"]["auto"]
    kept = tr["wise_ft"]["val_loss"]  # the kept model's: the WiSE-FT mix of stage one and the best epoch (default alpha 0.5)
    assert ev["rule"] == rule and ev["val_loss_finetune"] == kept and ev["val_loss_linear_probe"] == tr["initial_val_loss"]
    gap = kept - tr["initial_val_loss"]
    assert np.sign(ev["difference"]) == np.sign(gap)
    if max(kept, tr["initial_val_loss"]) < 20:  # probabilities clipped at 1e-12 cap one image's loss at 27.6
        assert ev["difference"] == pytest.approx(gap, abs=1e-3)
    low, high = ev["difference_ci95"]
    assert low <= ev["difference"] <= high
    assert ev["decisive"] == (low > 0 or high < 0)
    if rule == "lower-val-loss":
        expected = "finetune" if gap < 0 else "linear-probe"
    else:  # the probe only when validation shows the fine-tuned model worse
        expected = "linear-probe" if low > 0 else "finetune"
    assert r.metrics["training"]["chosen"] == ev["chosen"] == expected
    assert r.metrics["training"]["selection"] == f"auto ({rule})"
    chosen_key = "finetune" if expected == "finetune" else "linear_probe"
    assert r.test == r.metrics["stages"][chosen_key]["test"]
    if expected == "linear-probe":  # the saved model is the frozen base + head
        fresh = tk.load_backbone(TINY, weights=str(tiny_weights))
        assert torch.equal(next(tk.load(tmp_path / "run").backbone.parameters()), next(fresh.parameters()))


def test_auto_rule_decides_from_the_interval_not_the_point_estimate():
    """Fine-tuned loss higher on 8 images, but too few to show it worse: the default keeps the fine-tuned
    model and the point-estimate rule keeps the probe; many such images show it worse and both keep the probe."""
    from transferkit.config import FinetuneConfig
    from transferkit.training.finetune import auto_choice_evidence, describe_auto_choice

    def evidence(n, rule):
        y = np.tile([0, 1], n // 2)
        p_lp = np.full(n, 0.8)  # probability of the true class
        p_ft = np.tile([0.9, 0.9, 0.6, 0.6], n // 4)  # per image -0.118 or +0.288 nats against the probe: +0.085 on average
        as_proba = lambda p: np.where(y[:, None] == 1, np.c_[1 - p, p], np.c_[p, 1 - p])  # noqa: E731
        loss = lambda p: float(-np.log(p).mean())  # noqa: E731
        return auto_choice_evidence(y, as_proba(p_lp), as_proba(p_ft), num_classes=2, y_train=y, config=FinetuneConfig(balance="none"),
                                    lp_val_loss=loss(p_lp), ft_val_loss=loss(p_ft), rule=rule)

    small = {rule: evidence(8, rule) for rule in ("finetune-unless-worse", "lower-val-loss")}
    assert small["lower-val-loss"]["val_loss_finetune"] > small["lower-val-loss"]["val_loss_linear_probe"]
    assert not small["finetune-unless-worse"]["decisive"]
    assert small["finetune-unless-worse"]["chosen"] == "finetune" and small["lower-val-loss"]["chosen"] == "linear-probe"
    assert "cannot show fine-tuning is worse" in describe_auto_choice(small["finetune-unless-worse"])
    assert "coin flip" in describe_auto_choice(small["lower-val-loss"])
    large = evidence(20000, "finetune-unless-worse")
    assert large["decisive"] and large["difference_ci95"][0] > 0 and large["chosen"] == "linear-probe"
    from transferkit.errors import ConfigError

    with pytest.raises(ConfigError, match="auto_rule"):
        evidence(8, "coin")


def test_cli_fit_finetune_and_bad_options(image_folder, tmp_path):
    from transferkit.cli.app import app

    runner = CliRunner()
    out = tmp_path / "cli-run"
    res = runner.invoke(app, ["fit", str(image_folder), "--model", TINY, "--weights", "none", "--strategy", "finetune",
                              "--ft-epochs", "1", "--unfreeze", "last:1", "--balance", "sampler", "--no-augment", "-q", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "fine-tuned" in res.output and (out / "model" / "model.safetensors").is_file()
    cfg = json.loads((out / "config.json").read_text())["fit"]
    assert cfg["finetune"]["balance"] == "sampler" and cfg["augment"]["enabled"] is False
    bad = runner.invoke(app, ["fit", str(image_folder), "--strategy", "finetune", "--unfreeze", "half", "-q"])
    assert bad.exit_code == 1 and "Traceback" not in bad.output and "unfreeze" in bad.output
    bad = runner.invoke(app, ["fit", str(image_folder), "--strategy", "best", "-q"])
    assert bad.exit_code == 1 and "strategy" in bad.output


def test_finetune_image_model_used_alone_is_seeded_mixes_wise_ft_and_is_kept_out_of_the_feature_cache(image_folder, tiny_weights):
    from transferkit.training.finetune import finetune_image_model

    splits = tk.load_image_folder(image_folder, seed=0)

    def run(alpha, global_draws):
        torch.manual_seed(1)  # the same head to start from in every run
        backbone = tk.load_backbone(TINY, weights=str(tiny_weights))
        model = tk.TransferModel(backbone, tk.DenseHead(backbone.num_features, 2, hidden_dim=16, dropout=0.5), splits.classes)
        start = {k: v.detach().clone() for k, v in model.state_dict().items()}
        torch.rand(global_draws)  # whatever the caller drew before: the piece seeds its own run (dropout draws from torch)
        config = FinetuneConfig(epochs=2, batch_size=8, unfreeze="last:2", lr=1e-2, wise_alpha=alpha)
        finetune_image_model(model, splits, config, AugmentConfig(enabled=False), seed=0, device="cpu", progress=False)
        return start, model.state_dict()

    start, plain = run(1.0, 3)
    _, again = run(1.0, 17)
    assert all(torch.equal(plain[k], again[k]) for k in plain)  # one seed, one result
    moved = [k for k in plain if plain[k].is_floating_point() and not torch.equal(plain[k], start[k])]
    assert moved
    _, mixed = run(0.5, 3)  # WiSE-FT: halfway between the start and the plain fine-tuned weights
    for k in moved:
        assert torch.allclose(mixed[k], 0.5 * start[k] + 0.5 * plain[k], atol=1e-6), k

    # the fine-tuned backbone is marked, so the feature cache computes its features instead of serving the file's
    torch.manual_seed(1)
    backbone = tk.load_backbone(TINY, weights=str(tiny_weights))
    model = tk.TransferModel(backbone, tk.DenseHead(backbone.num_features, 2), splits.classes)
    cache = tk.FeatureCache()
    before = tk.extract_features(model.backbone, splits.val, cache=cache, progress=False)
    finetune_image_model(model, splits, FinetuneConfig(epochs=1, batch_size=8, unfreeze="last:2", lr=5e-2), AugmentConfig(enabled=False),
                         seed=0, device="cpu", progress=False)
    assert model.backbone.weights_record["fine_tuned"] is True
    model.eval()
    via_cache = tk.extract_features(model.backbone, splits.val, cache=cache, progress=False)
    fresh = tk.extract_features(model.backbone, splits.val, cache=None, progress=False)
    assert np.allclose(via_cache, fresh, atol=1e-5) and not np.allclose(via_cache, before, atol=1e-3)


def test_finetune_image_model_checks_its_arguments_before_any_work(image_folder):
    """A 3-class model on 2-class splits failed inside torch ("weight tensor should be defined either for all 3
    classes"), config={"epochs": 1} with "'dict' object has no attribute 'batch_size'", a plain nn.Module with "'Linear'
    object has no attribute 'backbone'"."""
    from pydantic import ValidationError

    from transferkit.errors import ConfigError, DataError
    from transferkit.training.finetune import finetune_image_model

    splits = tk.load_image_folder(image_folder, seed=0, progress=False)
    backbone = tk.load_backbone(TINY, weights="none")
    three = tk.TransferModel(backbone, tk.DenseHead(backbone.num_features, 3), ["a", "b", "c"])
    with pytest.raises(ConfigError, match=r"the model's head has 3 outputs \(\['a', 'b', 'c'\]\) but the splits have 2 classes"):
        finetune_image_model(three, splits, FinetuneConfig(epochs=1), device="cpu", progress=False)
    with pytest.raises(ConfigError, match="finetune_image_model takes a TransferModel .*got Linear"):
        finetune_image_model(nn.Linear(4, 2), splits, device="cpu", progress=False)
    swapped = tk.TransferModel(backbone, tk.DenseHead(backbone.num_features, 2), list(reversed(splits.classes)))
    with pytest.raises(ConfigError, match="are not the splits'"):  # same count, other order: outputs trained under wrong names
        finetune_image_model(swapped, splits, FinetuneConfig(epochs=1), device="cpu", progress=False)
    model = tk.TransferModel(backbone, tk.DenseHead(backbone.num_features, 2), splits.classes)
    with pytest.raises(DataError, match=r"splits must be ImageSplits .*got list"):
        finetune_image_model(model, splits.train, device="cpu", progress=False)
    with pytest.raises(ConfigError, match=r"config must be a FinetuneConfig \(or a dict of its fields"):
        finetune_image_model(model, splits, "fast", device="cpu", progress=False)
    with pytest.raises(ValidationError, match="epochs"):
        finetune_image_model(model, splits, {"epochs": 0}, device="cpu", progress=False)
    # a dict of fields is validated into the config (augment too)
    from transferkit.training.finetune import _check_finetune_args

    config, augment = _check_finetune_args(model, splits, {"epochs": 1, "batch_size": 8}, {"enabled": False})
    assert config == FinetuneConfig(epochs=1, batch_size=8) and augment == AugmentConfig(enabled=False)
    trainer = finetune_image_model(model, splits, {"epochs": 1, "batch_size": 8, "unfreeze": "last:1"}, {"enabled": False},
                                   seed=0, device="cpu", progress=False)
    assert len(trainer.history_) == 1
