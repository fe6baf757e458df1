"""Layer 1: the one-line calls. Each is a thin composition of the pieces underneath."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .backbones import load_backbone
from .config import DataConfig, FitConfig, HeadConfig, HeadTrainConfig
from .data import ImageSplits, load_image_folder, load_labelled_folder
from .evaluation import classification_metrics
from .features import ExtractionStats, FeatureCache, extract_features, resolve_device
from .model import TransferModel, load
from .training import HeadTrainer, seed_everything


@dataclass
class FitResult:
    """What :func:`fit` returns: the model, its metrics and where the run was saved."""

    model: TransferModel
    metrics: dict[str, Any]
    config: FitConfig
    run_dir: Path | None
    splits: ImageSplits
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def test(self) -> dict[str, Any]:
        return self.metrics["test"]


def library_versions() -> dict[str, str]:
    import sklearn
    import timm
    import torch
    import torchvision

    from . import __version__

    return {
        "transferkit": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "timm": timm.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
    }


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    os.replace(tmp, path)


def fit(
    data: str | os.PathLike,
    *,
    model: str = "mobilenet_v2",
    weights: str | None = "auto",
    out: str | os.PathLike | None = None,
    seed: int = 0,
    positive: str | None = None,
    hidden_dim: int | None = None,
    dropout: float = 0.0,
    epochs: int = 200,
    lr: float = 1e-3,
    batch_size: int = 32,
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
    cache_dir: str | os.PathLike | None = None,
    device: str = "auto",
    progress: bool = True,
    config: FitConfig | None = None,
) -> FitResult:
    """Frozen pretrained base + a new Dense head, trained on cached features, evaluated.

    >>> result = transferkit.fit("data/pneumonia", model="mobilenet_v2", positive="PNEUMONIA", out="runs/pneu")
    >>> result.test["roc_auc"]

    Pass ``config`` (a :class:`FitConfig`) to set everything at once; the keyword arguments
    are the common subset. Saves ``out/config.json``, ``out/metrics.json`` and ``out/model/``.
    """
    if config is None:
        config = FitConfig(
            data=DataConfig(root=Path(data), val_fraction=val_fraction, test_fraction=test_fraction, seed=seed),
            backbone=model,
            weights=weights,
            head=HeadConfig(hidden_dim=hidden_dim, dropout=dropout),
            train=HeadTrainConfig(epochs=epochs, lr=lr, seed=seed),
            positive=positive,
            batch_size=batch_size,
            device=device,
            cache_dir=Path(cache_dir) if cache_dir else None,
            seed=seed,
        )
    t0 = time.perf_counter()
    d = config.data
    splits = load_image_folder(d.root, val_fraction=d.val_fraction, test_fraction=d.test_fraction, seed=d.seed, max_pixels=d.max_pixels, progress=progress)
    seed_everything(config.seed)  # random-init backbones (weights='none') are seeded too
    backbone = load_backbone(config.backbone, config.weights)
    cache = FeatureCache(config.cache_dir)
    stats = ExtractionStats()
    t_feat = time.perf_counter()
    feats = {
        s: extract_features(backbone, splits.split(s), cache=cache, batch_size=config.batch_size, num_workers=config.num_workers,
                            device=config.device, progress=progress, description=f"{s} features", stats=stats)
        for s in ("train", "val", "test")
    }
    t_feat = time.perf_counter() - t_feat
    y = {s: np.array([r.label for r in splits.split(s)], dtype=np.int64) for s in ("train", "val", "test")}

    t_head = time.perf_counter()
    trainer = HeadTrainer(config.head, config.train, progress=progress).fit(feats["train"], y["train"], feats["val"], y["val"], len(splits.classes))
    t_head = time.perf_counter() - t_head
    tm = TransferModel(backbone, trainer.head_, splits.classes, positive=config.positive)

    metrics: dict[str, Any] = {}
    for s in ("val", "test"):
        metrics[s] = classification_metrics(y[s], trainer.predict_proba(feats[s]), splits.classes, positive=config.positive, threshold=tm.threshold)
    metrics["training"] = {
        "strategy": "linear-probe (frozen base + head on cached features)",
        "best_epoch": trainer.best_epoch_,
        "epochs_run": len(trainer.history_),
        "best_val_loss": trainer.best_val_loss_,
    }
    metrics["timing_s"] = {
        "total": time.perf_counter() - t0,
        "features": t_feat,
        "head_training": t_head,
        "features_cached": stats.num_cached,
        "features_computed": stats.num_computed,
    }
    metrics["data"] = {k: v for k, v in splits.summary().items() if k != "skipped"}
    history = [vars(h) for h in trainer.history_]

    run_dir = Path(out) if out is not None else None
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        tm.save_pretrained(run_dir / "model")
        _write_json(run_dir / "config.json", {
            "fit": json.loads(config.model_dump_json()),
            "backbone": {"name": backbone.name, "weights": backbone.weights_record, "preprocessing": backbone.data_cfg},
            "data": splits.summary(),
            "device": str(resolve_device(config.device)),
            "versions": library_versions(),
        })
        _write_json(run_dir / "metrics.json", {**metrics, "history": history})
    return FitResult(tm, metrics, config, run_dir, splits, history)


def evaluate(model: str | os.PathLike | TransferModel, data: str | os.PathLike, *, positive: str | None = None,
             threshold: float | None = None, batch_size: int = 32, device: str = "auto", progress: bool = True) -> dict[str, Any]:
    """Metrics of a saved model on a labelled folder (class sub-folders, or a root with test/)."""
    tm = model if isinstance(model, TransferModel) else load(model)
    records, skipped = load_labelled_folder(data, tm.classes, progress=progress)
    if not records:
        from .errors import DataError

        raise DataError(f"no usable images in '{data}' ({len(skipped)} skipped).")
    proba = _predict_records(tm, records, batch_size=batch_size, device=device, progress=progress)
    pos = positive or (tm.classes[tm.positive_index] if tm.positive_index is not None else None)
    out = classification_metrics(np.array([r.label for r in records]), proba, tm.classes, positive=pos,
                                 threshold=tm.threshold if threshold is None else threshold)
    out["skipped"] = [{"path": str(s.path), "reason": s.reason} for s in skipped]
    return out


def _predict_records(tm: TransferModel, records, *, batch_size: int, device: str, progress: bool) -> np.ndarray:
    import torch
    from torch.utils.data import DataLoader

    from .data import make_transforms
    from .features import ImageRecordDataset
    from .progress import track

    dev = resolve_device(device)
    tm.eval().to(dev)
    loader = DataLoader(ImageRecordDataset(records, make_transforms(tm.data_cfg)), batch_size=batch_size)
    chunks = []
    with track("predicting", len(records), unit="img", enabled=progress) as advance, torch.inference_mode():
        for x, _ in loader:
            chunks.append(tm(x.to(dev)).softmax(1).float().cpu().numpy())
            advance(len(x))
    return np.concatenate(chunks)


def predict(model: str | os.PathLike | TransferModel, paths: list[str | os.PathLike]) -> list[dict[str, Any]]:
    """Labels and class probabilities for image files (bad files get an ``error`` entry)."""
    tm = model if isinstance(model, TransferModel) else load(model)
    return tm.predict(paths)
