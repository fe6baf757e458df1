"""WiSE-FT: the kept model's weights lie on the line between stage one and the fine-tuned weights."""

import json

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import transferkit as tk
from conftest import TINY
from transferkit.config import DataConfig, FinetuneConfig, FitConfig
from transferkit.errors import ConfigError
from transferkit.training import apply_wise_ft, interpolate_weights


def _states():
    torch.manual_seed(0)
    a, b = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)), nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    b[1].num_batches_tracked += 7
    return a, b


def test_interpolation_ends_are_the_two_models_and_the_middle_is_their_mean():
    a, b = _states()
    sa, sb = a.state_dict(), b.state_dict()
    for alpha, expect in ((0.0, sa), (1.0, sb)):
        mixed = interpolate_weights(sa, sb, alpha)
        assert all(torch.equal(mixed[k], expect[k]) for k in sa if sa[k].is_floating_point())
    mid = interpolate_weights(sa, sb, 0.5)
    assert torch.allclose(mid["0.weight"], (sa["0.weight"] + sb["0.weight"]) / 2)
    # integer buffers are not mixed: they keep the fine-tuned value
    assert mid["1.num_batches_tracked"].item() == sb["1.num_batches_tracked"].item() == 7


def test_a_linear_model_mixed_in_weight_space_mixes_its_outputs():
    torch.manual_seed(1)
    start, end = nn.Linear(5, 2), nn.Linear(5, 2)
    x = torch.randn(10, 5)
    with torch.no_grad():
        y0, y1 = start(x), end(x)
    model = apply_wise_ft(end, start.state_dict(), 0.3)
    with torch.no_grad():
        assert torch.allclose(model(x), 0.7 * y0 + 0.3 * y1, atol=1e-6)


def test_half_precision_weights_are_mixed_in_float32():
    start = {"w": torch.tensor([1.0, 2.0], dtype=torch.float16)}
    end = {"w": torch.tensor([1.0009765625, 2.0], dtype=torch.float16)}  # one float16 step above 1 apart
    mixed = interpolate_weights(start, end, 1.0)
    assert mixed["w"].dtype == torch.float16 and torch.equal(mixed["w"], end["w"])


@pytest.mark.parametrize("alpha", [-0.1, 1.5])
def test_alpha_outside_0_1_is_refused(alpha):
    a, b = _states()
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        interpolate_weights(a.state_dict(), b.state_dict(), alpha)


def test_states_of_different_models_are_refused():
    a, _ = _states()
    other = nn.Sequential(nn.Linear(4, 3))
    with pytest.raises(ValueError, match="not of one model"):
        interpolate_weights(other.state_dict(), a.state_dict(), 0.5)
    wider = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5))
    with pytest.raises(ValueError, match="shape"):
        interpolate_weights(wider.state_dict(), a.state_dict(), 0.5)


def _fit(image_folder, out, alpha, report=False, weights="none"):
    cfg = FitConfig(data=DataConfig(root=image_folder), backbone=TINY, weights=weights, strategy="finetune",
                    finetune=FinetuneConfig(epochs=2, batch_size=8, lr=3e-3, wise_alpha=alpha))
    return tk.fit(config=cfg, out=out, progress=False, report=report)


def test_fit_keeps_the_mix_of_stage_one_and_the_fine_tuned_weights(image_folder, tiny_weights, tmp_path):
    # weights from a file, as pretrained ones would be: a random-init backbone trains from scratch, without a mix
    runs = {alpha: _fit(image_folder, tmp_path / f"a{alpha}", alpha, report=alpha == 0.5, weights=str(tiny_weights)) for alpha in (0.0, 0.5, 1.0)}
    states = {alpha: tk.load(tmp_path / f"a{alpha}" / "model").state_dict() for alpha in runs}
    moved = [k for k in states[1.0] if states[1.0][k].is_floating_point() and not torch.equal(states[0.0][k], states[1.0][k])]
    assert moved, "fine-tuning changed no weight: the test would not see a mix"
    for k in moved:
        assert torch.allclose(states[0.5][k], (states[0.0][k] + states[1.0][k]) / 2, atol=1e-6), k
    # alpha = 0 is the probe that fine-tuning started from: the same test predictions as stage one
    assert runs[0.0].test["accuracy"] == runs[0.0].metrics["stages"]["linear_probe"]["test"]["accuracy"]
    wf = runs[0.5].metrics["training"]["wise_ft"]
    assert wf["alpha"] == 0.5 and wf["val_loss_fine_tuned"] == runs[1.0].metrics["training"]["best_val_loss"]
    assert "wise_ft" not in runs[1.0].metrics["training"]
    # the recorded validation loss is the mixed model's: recomputed from its saved validation predictions
    from transferkit.evaluation import load_predictions
    from transferkit.training import class_weights

    pred = load_predictions(tmp_path / "a0.5", "val")
    y_train = [r.label for r in runs[0.5].splits.train]
    loss_fn = nn.CrossEntropyLoss(weight=class_weights(torch.tensor(y_train).numpy(), 2))
    expected = float(loss_fn(torch.tensor(pred.proba, dtype=torch.float64).log().float(), torch.tensor(pred.y_true)))
    assert wf["val_loss"] == pytest.approx(expected, rel=1e-4)
    assert json.loads((tmp_path / "a0.5" / "config.json").read_text())["fit"]["finetune"]["wise_alpha"] == 0.5
    assert "WiSE-FT" in (tmp_path / "a0.5" / "report.html").read_text()  # the model card says what was kept


def test_image_and_text_fine_tuning_mix_by_default():
    from transferkit.text import text_finetune_defaults

    assert FinetuneConfig().wise_alpha == 0.5  # chosen on validation loss (bench/RESULTS.md, tenth session)
    assert text_finetune_defaults("finetune").wise_alpha == 0.5  # the same, on text (eleventh session)
    assert text_finetune_defaults("lora").wise_alpha == 0.5


def test_cli_wise_ft_option_reaches_the_run_and_bad_values_are_refused(image_folder, tiny_weights, tmp_path):
    from transferkit.cli.app import app

    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["fit", str(image_folder), "--model", TINY, "--weights", str(tiny_weights), "--strategy", "finetune",
                                   "--ft-epochs", "1", "--wise-ft", "0.5", "--out", str(out), "--quiet", "--no-report"],
                                env={"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
    assert res.exit_code == 0, res.output
    assert "WiSE-FT" in res.output
    assert json.loads((out / "metrics.json").read_text())["training"]["wise_ft"]["alpha"] == 0.5
    bad = CliRunner().invoke(app, ["fit", str(image_folder), "--model", TINY, "--wise-ft", "2"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert bad.exit_code != 0 and "--wise-ft" in bad.output


def test_resuming_a_run_from_before_wise_ft_keeps_the_fine_tuned_weights(image_folder, tmp_path):
    """A run folder whose config has no wise_alpha (written before the option existed) resumes with alpha = 1."""
    out = tmp_path / "run"
    _fit(image_folder, out, 1.0)
    whole = json.loads((out / "config.json").read_text())
    del whole["fit"]["finetune"]["wise_alpha"]
    whole["status"] = "running"  # as if it had been stopped before the end (a finished run is not resumed)
    (out / "config.json").write_text(json.dumps(whole))
    r = tk.fit(resume=out, progress=False, report=False)
    assert r.config.finetune.wise_alpha == 1.0 and "wise_ft" not in r.metrics["training"]
