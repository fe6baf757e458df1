"""Layer 1: the one-line calls. Each is a thin composition of the pieces underneath."""

from __future__ import annotations

import json
import os
import platform
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .backbones import load_backbone
from .config import DEFAULT_FEATURE_STAGES, AugmentConfig, DataConfig, FinetuneConfig, FitConfig, HeadConfig, HeadTrainConfig
from .data import ImageSplits, load_image_folder, load_labelled_folder
from .evaluation import classification_metrics, resolve_positive
from .evaluation.calibration import calibrate_on_validation
from .features import ExtractionStats, FeatureCache, extract_features, resolve_device
from .launch import is_main_process, on_main_process, refuse_several_processes
from .model import TransferModel, load
from .run_folder import check_run_folder, clear_previous_run, holds_run
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
    from .json_files import write_json

    write_json(path, payload)  # strict JSON: an undefined metric (NaN) is written as null


def _train_views_record(config: FitConfig, trainer: HeadTrainer) -> dict[str, Any]:
    """metrics.json ``training.train_views``: the copies per image the head trained on, and under 'auto' what the CV chose."""
    used = trainer.augmented_rows_ > 0
    record = {"copies_per_image": config.train_view_copies if used else 0, "rows": trainer.augmented_rows_}
    if config.train_views == "auto":
        record.update(requested="auto", compared=config.train_view_copies, chosen_by="head cross-validation on train + val (test not read)")
    return record


def fit(
    data: str | os.PathLike | None = None,
    *,
    model: str = "mobilenet_v2",
    weights: str | None = "auto",
    out: str | os.PathLike | None = None,
    seed: int = 0,
    positive: str | None = None,
    hidden_dim: int | str | None = "auto",
    dropout: float = 0.3,
    epochs: int = 200,
    lr: float = 1e-3,
    batch_size: int = 32,
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
    groups: str | None = None,
    groups_file: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    device: str = "auto",
    progress: bool = True,
    config: FitConfig | None = None,
    strategy: str = "linear-probe",
    unfreeze: str = "all",
    finetune_epochs: int | None = None,
    finetune_lr: float | None = None,
    augment: bool | AugmentConfig | dict = True,
    balance: str = "weights",
    freeze_bn: bool = True,
    resume: str | os.PathLike | None = None,
    max_params: int | None = None,
    max_size_mb: float | None = None,
    max_latency_ms: float | None = None,
    max_memory_mb: float | None = None,
    report: bool | None = None,
    tta: str = "none",
    feature_stages: int = DEFAULT_FEATURE_STAGES,
    auto_rule: str = "finetune-unless-worse",
    train_views: int | str = 0,
    wise_alpha: float | None = None,
) -> FitResult:
    """Frozen pretrained base + a new Dense head (``strategy="linear-probe"``), optionally
    followed by fine-tuning (``"finetune"``: LP-FT) or a choice between the two on validation
    (``"auto"``); evaluated on the test split.

    >>> result = transferkit.fit("data/pneumonia", model="mobilenet_v2", positive="PNEUMONIA", out="runs/pneu")
    >>> result.test["roc_auc"]
    >>> transferkit.fit("data/plants", strategy="auto", unfreeze="last:6", out="runs/plants")
    >>> transferkit.fit(resume="runs/plants")     # after a crash or Ctrl-C

    Pass ``config`` (a :class:`FitConfig`) to set everything at once; the keyword arguments
    are the common subset. Saves ``out/config.json``, ``out/metrics.json`` and ``out/model/``;
    fine-tuning also writes ``out/checkpoints/`` (one per epoch, used by ``resume``).
    Under ``accelerate launch`` every process runs this; only the main process writes.

    ``tta="flips"`` averages each image's features over four views (itself, two mirror images, its transpose) wherever
    the model runs outside training: features, evaluation, ``predict`` and export all cost 4x (``Backbone.test_views``).
    ``feature_stages=3`` gives the head the pooled outputs of the backbone's last three stages, not only the last
    (``Backbone.feature_stages``): wider features at no extra compute.
    ``train_views=4`` trains the frozen-base head also on the features of 4 augmented copies of each training image
    (``augment``'s crop, flip, rotation and colour jitter, applied offline and cached like the clean features);
    ``train_views="auto"`` computes 4 and lets the head's cross-validation inside train + val decide whether to use them.
    ``strategy="auto"`` keeps the fine-tuned model unless validation shows it worse than the probe (a paired bootstrap
    interval wholly above 0); ``auto_rule="lower-val-loss"`` keeps the lower validation loss however small the gap.
    ``wise_alpha`` (fine-tuning, WiSE-FT) keeps ``(1 - wise_alpha)`` x the stage-one weights + ``wise_alpha`` x the
    fine-tuned ones (``FinetuneConfig.wise_alpha``; 1 = the fine-tuned weights alone).

    ``groups`` (a pattern in file names) or ``groups_file`` (a CSV of file -> subject) keeps each subject's images on one
    side of the validation carve and of the head's cross-validation (:mod:`transferkit.data.subjects`).

    ``model="auto"`` ranks the offline candidates first (:func:`transferkit.selection.choose_backbone`,
    train images only) under the ``max_*`` limits and fits the top one; the ranking is saved
    as ``out/ranking.json``. ``report=True`` (the default for a new run) ends by writing ``out/report.html``; a resumed
    run writes one if the run was started with it, unless ``report`` says otherwise.
    """
    from .errors import DataError, FinishedRunError

    if isinstance(weights, os.PathLike) or (isinstance(weights, str) and weights.lower() not in ("auto", "none") and Path(weights).expanduser().is_file()):
        weights = str(Path(weights).expanduser().absolute())  # recorded in config.json: valid from any working directory
    if config is not None and resume is None:
        _refuse_ignored_arguments(config, data, {k: v for k, v in locals().items() if k in _CONFIG_ARGUMENTS})
    if resume is not None:
        _refuse_options_on_resume(config, {k: v for k, v in locals().items() if k in _CONFIG_ARGUMENTS})
        out = Path(resume).expanduser()
        try:
            whole = json.loads((out / "config.json").read_text())
        except (OSError, ValueError):
            raise DataError(f"cannot resume '{out}': no readable config.json from an earlier `fit --out {out}`.") from None
        if isinstance(whole, dict) and "fit_text" in whole:
            raise DataError(f"'{out}' is a text run (fit-text): resume it with `transferkit fit-text --resume {out}`.")
        if not isinstance(whole, dict) or "fit" not in whole:
            raise DataError(f"cannot resume '{out}': its config.json has no 'fit' section (not written by `transferkit fit`).")
        if whole.get("status") == "done":
            raise FinishedRunError(out, "fit", report_expected=bool(whole.get("report", True)))  # older runs: with one
        if report is None:
            report = bool(whole.get("report", True))  # as the run was started (runs from before this was recorded: with one)
        saved = whole["fit"]
        if isinstance(saved, dict) and saved.get("strategy") == "auto":
            saved.setdefault("auto_rule", "lower-val-loss")  # the rule of runs started before auto_rule existed
        if isinstance(saved, dict) and isinstance(saved.get("finetune"), dict):
            saved["finetune"].setdefault("wise_alpha", 1.0)  # runs started before WiSE-FT existed kept the fine-tuned weights
        config = FitConfig.model_validate(saved)
        if data is not None:  # the data folder has moved: the run reads it there (the check below makes sure it is the same data)
            config = config.model_copy(update={"data": config.data.model_copy(update={"root": Path(data).expanduser().absolute()})})
    elif config is None:
        if data is None:
            raise DataError("pass a data folder (or resume=RUN to continue an interrupted run).")
        if strategy == "linear-probe":  # fine-tuning options would be recorded in config.json as if they had acted
            ft_only = {"unfreeze (--unfreeze)": (unfreeze, "all"), "finetune_epochs (--ft-epochs)": (finetune_epochs, None),
                       "finetune_lr (--ft-lr)": (finetune_lr, None), "balance (--balance)": (balance, "weights"),
                       "freeze_bn (--train-bn)": (freeze_bn, True), "wise_alpha (--wise-ft)": (wise_alpha, None)}
            unused = [n for n, (v, d) in ft_only.items() if v != d]
            if train_views in (0, "0") and _augment_config(augment) != _augment_config(True):
                unused.append("augment (--no-augment, --crop-scale, --hflip, --rotation, --color-jitter; used by fine-tuning and --train-views)")
            if unused:
                from .errors import ConfigError

                raise ConfigError(f"{', '.join(unused)} only act when fine-tuning, and strategy is 'linear-probe' (a frozen base): pass "
                                  "strategy='finetune' or 'auto' (CLI: --strategy finetune|auto), or drop them.")
        if _single_layer(hidden_dim):  # the single Dense layer is a logistic regression (lbfgs)
            head_only = {"epochs (--epochs)": (epochs, 200), "lr": (lr, 1e-3), "dropout (--dropout)": (dropout, 0.3)}
            unused = [n for n, (v, d) in head_only.items() if v != d]
            if unused:
                from .errors import ConfigError

                raise ConfigError(f"{', '.join(unused)} only act on a head with a hidden layer, and hidden_dim=0 (--hidden-dim 0) asks "
                                  "for a single Dense layer, which is fitted as a logistic regression (lbfgs; its regularisation C is "
                                  "chosen by cross-validation): drop them, or pass a hidden width (e.g. --hidden-dim 256) or "
                                  "--hidden-dim auto.")
        ft = FinetuneConfig(unfreeze=unfreeze, balance=balance, freeze_bn=freeze_bn,  # 0 reaches the config, which refuses it
                            **({"epochs": finetune_epochs} if finetune_epochs is not None else {}),
                            **({"lr": finetune_lr} if finetune_lr is not None else {}),
                            **({"wise_alpha": wise_alpha} if wise_alpha is not None else {}))
        config = FitConfig(
            # absolute paths: config.json must resume (and reproduce) from any working directory
            data=DataConfig(root=Path(data).expanduser().absolute(), val_fraction=val_fraction, test_fraction=test_fraction, seed=seed,
                            groups=groups, groups_file=Path(groups_file).expanduser().absolute() if groups_file is not None else None),
            backbone=model,
            weights=weights,
            head=HeadConfig(hidden_dim=hidden_dim, dropout=dropout),
            train=HeadTrainConfig(epochs=epochs, lr=lr, seed=seed),
            positive=positive,
            batch_size=batch_size,
            device=device,
            cache_dir=Path(cache_dir).expanduser().absolute() if cache_dir else None,
            seed=seed,
            strategy=strategy,
            finetune=ft,
            augment=_augment_config(augment),
            tta=tta,
            feature_stages=feature_stages,
            auto_rule=auto_rule,
            train_views=train_views,
        )
    if resume is None:  # absolute paths in config.json: the run resumes (and reproduces) from any working directory
        d = config.data
        config = config.model_copy(update={"data": d.model_copy(update={
            "root": Path(d.root).expanduser().absolute(),
            "groups_file": Path(d.groups_file).expanduser().absolute() if d.groups_file is not None else None})})
    limits = {"max_params (--max-params)": max_params, "max_size_mb (--max-size-mb)": max_size_mb,
              "max_latency_ms (--max-latency-ms)": max_latency_ms, "max_memory_mb (--max-memory-mb)": max_memory_mb}
    given = [n for n, v in limits.items() if v is not None]
    if given and config.backbone != "auto":  # they choose among candidates: beside a fixed model they would be ignored
        from .errors import ConfigError

        raise ConfigError(f"the limits {', '.join(given)} choose among the candidates only with model='auto' (--model auto); "
                          f"this run trains {config.backbone!r} (given, or the default), so they would not be checked. Drop them, "
                          f"use --model auto, or check {config.backbone} first with `transferkit rank DATA --candidates "
                          f"{config.backbone} --max-...`.")
    from .data.subjects import subject_rule

    subject_rule(config.data.groups, config.data.groups_file)  # a bad pattern or table fails before any ranking or run folder
    if config.train_views and not config.augment.enabled:
        from .errors import ConfigError

        raise ConfigError(f"train_views={config.train_views} asks for augmented copies, but augmentation is off (augment.enabled=False, "
                          "--no-augment): turn augmentation on, or pass train_views=0 (--train-views 0).")
    report = True if report is None else bool(report)
    if out is not None and resume is None:
        check_run_folder(out)
    t0 = time.perf_counter()
    tuning = config.strategy != "linear-probe"
    accelerator = None
    if not tuning:
        refuse_several_processes("a linear probe (a head trained on cached features)",
                                 "Run `transferkit fit` without `accelerate launch`, or launch --strategy finetune or auto.")
    if tuning:
        from .training import make_accelerator

        accelerator = make_accelerator(config.device, config.finetune.mixed_precision)
    is_main = accelerator is None or accelerator.is_main_process
    run_dir = Path(out).expanduser() if out is not None else None

    d = config.data
    splits = load_image_folder(d.root, val_fraction=d.val_fraction, test_fraction=d.test_fraction, seed=d.seed, max_pixels=d.max_pixels,
                               groups=d.groups, groups_file=d.groups_file, progress=progress and is_main)
    resolve_positive(splits.classes, config.positive)  # a wrong --positive fails now, not after ranking, features and training
    if resume is not None:
        _check_same_data(Path(out), splits)
    ranking = None
    if config.backbone == "auto" and str(config.weights).lower() != "auto":
        from .errors import ConfigError

        raise ConfigError(f"model='auto' ranks the pretrained candidates, so weights={config.weights!r} would train something the "
                          "ranking did not score. Rank that file with `transferkit rank DATA --candidates NAME:PATH` (or NAME:none), "
                          "then fit --model NAME --weights PATH.")
    if config.backbone == "auto":  # ranked on the same splits the fit uses (train + val; test is never read)
        from .selection import choose_backbone

        # under `accelerate launch`: ranked once, by the main process (latencies measured per process could differ), and
        # its choice given to every process
        chosen_name, ranking = on_main_process(
            lambda: choose_backbone(splits, max_params=max_params, max_size_mb=max_size_mb, max_latency_ms=max_latency_ms,
                                    max_memory_mb=max_memory_mb, device=config.device, seed=config.seed, cache_dir=config.cache_dir,
                                    progress=progress, modality="image", strategy=config.strategy, feature_stages=config.feature_stages),
            share=lambda chosen: (chosen[0], None))
        config = config.model_copy(update={"backbone": chosen_name})
    seed_everything(config.seed)  # random-init backbones (weights='none') are seeded too
    backbone = load_backbone(config.backbone, config.weights)
    backbone.test_views = config.tta
    backbone.feature_stages = config.feature_stages
    if run_dir is not None and is_main and resume is None:  # only now: a failed check leaves no half-made run
        run_dir.mkdir(parents=True, exist_ok=True)
        _replace_previous_run(run_dir, progress)
        _write_json(run_dir / "config.json", {"status": "running", "fit": json.loads(config.model_dump_json()), "report": report})
        _write_json(run_dir / SPLITS_FILE, _splits_record(splits))  # now, so that a resume can check it reads the same data
        if ranking is not None:
            ranking.save_json(run_dir / "ranking.json")
    cache = FeatureCache(config.cache_dir)
    stats = ExtractionStats()
    t_feat = time.perf_counter()
    with (accelerator.main_process_first() if accelerator is not None else nullcontext()):
        feats = {
            s: extract_features(backbone, splits.split(s), cache=cache, batch_size=config.batch_size, num_workers=config.num_workers,
                                device=config.device, progress=progress and is_main, description=f"{s} features", stats=stats)
            for s in ("train", "val", "test")
        }
        augmented = None
        if config.train_views:  # augmented copies of the head's training images; of val too when the head refits on it
            from .features import extract_train_views
            from .training.head_trainer import views_as_augmented

            copies = {s: extract_train_views(backbone, splits.split(s), config.train_view_copies, augment=config.augment, cache=cache,
                                             batch_size=config.batch_size, num_workers=config.num_workers, device=config.device,
                                             progress=progress and is_main, stats=stats)
                      for s in (("train",) if tuning else ("train", "val"))}
            augmented = views_as_augmented(copies["train"], copies.get("val"), num_train=len(feats["train"]))
    t_feat = time.perf_counter() - t_feat
    y = {s: np.array([r.label for r in splits.split(s)], dtype=np.int64) for s in ("train", "val", "test")}

    t_head = time.perf_counter()
    subjects = None
    if splits.subjects is not None:  # the head's CV (width, C) keeps subjects together too
        subjects = splits.subjects.subject_ids(r.path for r in [*splits.split("train"), *splits.split("val")])
    # fine-tuning stops on the validation split and `auto` compares on it: its first stage must not have fitted it
    head_train = config.train.model_copy(update={"linear_refit": False}) if tuning else config.train
    trainer = HeadTrainer(config.head, head_train, progress=progress and is_main).fit(feats["train"], y["train"], feats["val"], y["val"],
                                                                                      len(splits.classes), groups=subjects, augmented=augmented,
                                                                                      choose_copies=config.train_views == "auto")
    t_head = time.perf_counter() - t_head
    tm = TransferModel(backbone, trainer.head_, splits.classes, positive=config.positive)

    metrics: dict[str, Any] = {}
    # refitted on train + val: the validation numbers are out-of-fold
    proba = {"val": trainer.val_proba_ if trainer.val_proba_ is not None else trainer.predict_proba(feats["val"]),
             "test": trainer.predict_proba(feats["test"])}
    for s in ("val", "test"):
        metrics[s] = classification_metrics(y[s], proba[s], splits.classes, positive=config.positive, threshold=tm.threshold)
    metrics["training"] = {
        "strategy": "linear-probe (frozen base + head on cached features)",
        "best_epoch": trainer.best_epoch_,
        "epochs_run": len(trainer.history_),
        "best_val_loss": trainer.best_val_loss_,
        "head": trainer.head_config_.hidden_dim or "linear",
        **({"head_solver": "logistic regression (lbfgs)", "C": trainer.C_} if trainer.solver_ == "lbfgs" else {}),
        **({"train_views": _train_views_record(config, trainer)} if config.train_views else {}),
    }
    if trainer.refit_ is not None:
        metrics["training"]["refit"] = {**trainer.refit_, "val_predictions": "out-of-fold"}
        del metrics["training"]["best_val_loss"]  # there is none: the CV log loss per C is in refit.cv_log_loss
    if trainer.head_choice_ is not None:
        metrics["training"]["head_selection"] = trainer.head_choice_.as_dict()
    metrics["timing_s"] = {
        "total": time.perf_counter() - t0,
        "features": t_feat,
        "head_training": t_head,
        "features_cached": stats.num_cached,
        "features_computed": stats.num_computed,
    }
    history = [vars(h) for h in trainer.history_]
    if tuning:
        tm, history, proba = _finetune_stage(tm, splits, config, y, metrics, history, proba, accelerator=accelerator, run_dir=run_dir,
                                             resume=resume is not None, progress=progress)
    calibration = calibrate_on_validation(y["val"], proba["val"], classes=splits.classes)  # saved with the model, report or not
    if calibration is not None:
        tm.temperature = float(calibration["temperature"])
        metrics["calibration"] = calibration
    # a resumed run also counts the fine-tuning seconds before the interruption (as timing_s.finetune does)
    before = ((metrics.get("stages") or {}).get("finetune", {}).get("training", {}).get("resumed_from") or {}).get("seconds_before", 0.0)
    metrics["timing_s"]["total"] = time.perf_counter() - t0 + before
    metrics["data"] = {k: v for k, v in splits.summary().items() if k != "skipped"}

    # evaluate(result.model, ...) leaves out the images this model trained on, as it does for the saved run
    tm.trained_on = ({r.sha256 for s in ("train", "val") for r in splits.split(s)}, "the train/val splits of the fit that returned this model")
    if run_dir is not None and is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        tm.save_pretrained(run_dir / "model")
        _write_json(run_dir / "metrics.json", {**metrics, "history": history})
        _write_json(run_dir / SPLITS_FILE, _splits_record(splits))
        from .evaluation import save_predictions

        for s in ("val", "test"):
            save_predictions(run_dir, s, [str(r.path) for r in splits.split(s)], y[s], proba[s], classes=splits.classes)
        # "done" once every result is on disk (a run stopped before this resumes); the report, which `transferkit report
        # RUN` can write again at any time, comes after it
        _write_json(run_dir / "config.json", {
            "status": "done",
            "fit": json.loads(config.model_dump_json()),
            "report": bool(report),
            "backbone": {"name": backbone.name, "weights": tm.backbone.weights_record, "preprocessing": backbone.data_cfg},
            "data": splits.summary(),
            "device": str(accelerator.device if accelerator is not None else resolve_device(config.device)),
            "versions": library_versions(),
        })
        if report:
            from .report import write_report

            result = write_report(run_dir, splits=splits, progress=progress)
            metrics["report"] = {"path": str(result.path), "warnings": list(result.warnings)}
            tm.temperature = _saved_temperature(run_dir, tm.temperature)
    if accelerator is not None:
        accelerator.wait_for_everyone()
    return FitResult(tm, metrics, config, run_dir, splits, history)


SEED_METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "roc_auc", "roc_auc_ovr_macro", "sensitivity", "specificity")


def summarize_seeds(metrics: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Mean, std (ddof=1) and values of each scalar metric over runs, per split."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for split in ("val", "test"):
        for name in SEED_METRICS:
            vals = [m[split].get(name, m[split].get("binary", {}).get(name)) for m in metrics]
            vals = [float(v) for v in vals if v is not None and not np.isnan(v)]
            if vals:
                out.setdefault(split, {})[name] = {"mean": float(np.mean(vals)), "std": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
                                                    "values": vals}
    return out


@dataclass
class SeedsResult:
    """What :func:`fit_seeds` returns: one :class:`FitResult` per seed and mean ± std of every metric."""

    runs: list[FitResult]
    summary: dict[str, dict[str, dict[str, float]]]
    run_dir: Path | None


def fit_seeds(data: str | os.PathLike, *, seeds: list[int] | int, out: str | os.PathLike | None = None, **kwargs: Any) -> SeedsResult:
    """:func:`fit` once per seed (``out/seed-<k>/``), then mean ± std of every metric in ``out/seeds.json``.

    ``seeds``: a list of seeds, or a count N meaning N seeds from ``seed`` on (``seed``, ``seed + 1``, ...; ``seed`` is
    the keyword argument, else the config's seed, else 0), as the CLI's ``fit --seeds N [--seed S]``.
    Small data sets vary by seed (split, initialisation, batch order): report this, not one run.
    """
    import numbers
    from collections.abc import Iterable

    from .errors import ConfigError

    config = kwargs.pop("config", None)
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ConfigError(f"fit_seeds needs at least one seed: seeds={seeds} (a count, or a list such as [0, 1, 2]).")
        start = kwargs.pop("seed", None)
        start = start if start is not None else (config.seed if config is not None else 0)
        seeds = list(range(start, start + int(seeds)))
    elif isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise ConfigError(f"seeds must be a list of integer seeds (e.g. [0, 1, 2]) or a count (3 = seeds 0, 1, 2); got {seeds!r}.")
    seeds = list(seeds)
    if "seed" in kwargs:
        raise ConfigError(f"fit_seeds got seeds={seeds!r} and seed={kwargs['seed']!r}: each run's seed comes from the list. "
                          "Pass the list alone, or a count with the first seed (seeds=3, seed=5 runs seeds 5, 6, 7).")
    if any(isinstance(s, bool) or not isinstance(s, numbers.Integral) for s in seeds):
        raise ConfigError(f"seeds must be integers; got {seeds!r}.")
    if not seeds:
        raise ConfigError("fit_seeds needs at least one seed (e.g. seeds=[0, 1, 2]).")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"fit_seeds got a seed twice ({seeds}): each seed is one run, in out/seed-<k>/.")

    def one(seed: int) -> dict[str, Any]:  # a config carries its seed in three places, as fit(seed=...) sets them
        if config is None:
            return {"seed": seed}
        return {"config": config.model_copy(update={"seed": seed, "data": config.data.model_copy(update={"seed": seed}),
                                                    "train": config.train.model_copy(update={"seed": seed})})}

    if out is not None:
        check_run_folder(out)
    runs = [fit(data, out=Path(out) / f"seed-{seed}" if out is not None else None, **one(seed), **kwargs) for seed in seeds]
    summary = summarize_seeds([r.metrics for r in runs])
    run_dir = Path(out).expanduser() if out is not None else None
    if run_dir is not None:
        if is_main_process():  # under `accelerate launch`, one process writes
            # a single run's outputs left there would stand beside the seeds' runs, and `predict RUN` would use its model
            _replace_previous_run(run_dir, True, keep=tuple(f"seed-{s}" for s in seeds))
            _write_json(run_dir / "seeds.json", {"seeds": list(seeds), "summary": summary, "runs": [str(r.run_dir) for r in runs]})
    return SeedsResult(runs, summary, run_dir)


def _single_layer(hidden_dim: int | str | None) -> bool:
    """Whether ``hidden_dim`` asks for the single Dense layer: None, or 0 however spelt ('0', '00', '+0', '-0')."""
    if hidden_dim is None:
        return True
    try:
        return int(str(hidden_dim).strip()) == 0
    except ValueError:
        return False


def _changed_arguments(passed: dict[str, Any]) -> list[str]:
    """The names among ``passed`` (fit's config-building arguments) whose value is not fit's default, sorted."""
    import inspect

    defaults = {n: p.default for n, p in inspect.signature(fit).parameters.items()}
    return sorted(n for n, v in passed.items() if v != defaults[n])


def _refuse_options_on_resume(config: FitConfig | None, passed: dict[str, Any]) -> None:
    """``fit(resume=RUN)`` continues with the options RUN started with (its config.json): others beside it would be
    silently ignored, so they are refused."""
    from .errors import ConfigError

    ignored = _changed_arguments(passed) + (["config"] if config is not None else [])
    if ignored:
        raise ConfigError(f"resume continues the run with the options it started with (RUN/config.json), so these would be ignored: "
                          f"{', '.join(ignored)}. Resume without them, or start a new run with them (without --resume).")


def _check_same_data(run_dir: Path, splits) -> None:
    """The images a resumed run reads must be those it started with (RUN/splits.json, written when it started): other
    splits would continue a model, its early stopping and its stage one on different data without a word."""
    from .errors import DataError

    try:
        saved = json.loads((run_dir / SPLITS_FILE).read_text())["splits"]
    except (OSError, ValueError, KeyError, TypeError):
        return  # a run started before splits.json was written at the start: nothing to compare with
    changes = []
    for s in ("train", "val", "test"):
        before, now = Counter(e["sha256"] for e in saved.get(s, [])), Counter(r.sha256 for r in splits.split(s))
        added, removed = sum((now - before).values()), sum((before - now).values())
        if added or removed:
            changes.append(f"{s}: {added} image(s) not in the run, {removed} of its image(s) missing")
    if changes:
        raise DataError(f"the data differ from those this run started with ({'; '.join(changes)}), so resuming would continue on "
                        f"other splits. Restore the data folder (or pass it where it now lies: fit DATA --resume {run_dir}), or start a "
                        "new run without --resume.")


def _replace_previous_run(run_dir: Path, progress: bool, keep: tuple[str, ...] = ()) -> None:
    """A new run in a folder that holds an earlier one: the earlier outputs go (:mod:`transferkit.run_folder`). Said
    even with progress off: files were removed."""
    replaced = clear_previous_run(run_dir, keep=keep)
    if replaced:
        from .progress import console

        console.print(f"{run_dir} held an earlier run: its outputs were replaced ({', '.join(replaced)}).")


# fit()'s keyword arguments that only build a FitConfig (the others, such as out, report and the max_* limits, act on the run)
_CONFIG_ARGUMENTS = ("model", "weights", "seed", "positive", "hidden_dim", "dropout", "epochs", "lr", "batch_size", "val_fraction",
                     "test_fraction", "groups", "groups_file", "cache_dir", "device", "strategy", "unfreeze", "finetune_epochs",
                     "finetune_lr", "augment", "balance", "freeze_bn", "tta", "feature_stages", "auto_rule", "train_views", "wise_alpha")


def _refuse_ignored_arguments(config: FitConfig, data: str | os.PathLike | None, passed: dict[str, Any]) -> None:
    """``fit(config=...)`` takes every setting from the config: an argument that differs from its default would be
    silently ignored, so it is refused (as is a data folder other than the config's)."""
    from .errors import ConfigError

    ignored = [n for n in _changed_arguments(passed) if n != "weights" or passed["weights"] != config.weights]
    if data is not None and Path(data).resolve() != Path(config.data.root).resolve():
        ignored.insert(0, f"data ('{data}'; the config reads '{config.data.root}')")
    if ignored:
        raise ConfigError(f"fit(config=...) takes its settings from the config, so these arguments would be ignored: {', '.join(sorted(ignored))}. "
                          "Set them in the config instead (config.model_copy(update={...}), or the nested configs such as "
                          "config.train / config.finetune), or call fit without config=.")


def _augment_config(augment: bool | AugmentConfig | dict) -> AugmentConfig:
    """``augment``: on/off with the defaults, a full :class:`AugmentConfig`, or a dict of its fields."""
    if isinstance(augment, AugmentConfig):
        return augment
    if isinstance(augment, dict):
        return AugmentConfig(**augment)
    return AugmentConfig(enabled=bool(augment))


def _saved_temperature(run_dir: Path, default: float) -> float:
    """The calibration temperature the report fitted on validation and saved in the model folder."""
    try:
        return float(json.loads((run_dir / "model" / "config.json").read_text()).get("temperature", default))
    except (OSError, ValueError):
        return default


def _finetune_stage(tm: TransferModel, splits: ImageSplits, config: FitConfig, y: dict[str, np.ndarray], metrics: dict[str, Any],
                    history: list[dict[str, Any]], lp_proba: dict[str, np.ndarray], *, accelerator, run_dir: Path | None, resume: bool,
                    progress: bool):
    """LP-FT stage two; for ``auto``, keep the fine-tuned model unless validation shows it worse (``FitConfig.auto_rule``)."""
    import copy

    from .training.finetune import auto_choice_evidence, eval_loader, finetune_image_model, from_scratch_config, parameter_checksum, predict_proba

    is_main = accelerator.is_main_process
    ft_config, from_scratch = from_scratch_config(tm, config.finetune)  # what finetune_image_model will use
    lp_model = copy.deepcopy(tm)
    lp_metrics = {"val": metrics["val"], "test": metrics["test"], "training": metrics["training"]}
    t_ft = time.perf_counter()
    hint = f"transferkit fit --resume {run_dir}" if run_dir is not None else None
    trainer = finetune_image_model(tm, splits, ft_config, config.augment, seed=config.seed, device=config.device,
                                   checkpoint_dir=run_dir / "checkpoints" if run_dir is not None else None, resume=resume,
                                   progress=progress and is_main, accelerator=accelerator, resume_hint=hint,
                                   seed_rng=False, start_state=lp_model.state_dict())  # fit seeded the run at its start
    # a resumed run also counts the fine-tuning seconds its checkpoint recorded (work lost after it is not counted)
    t_ft = time.perf_counter() - t_ft + trainer.seconds_before_resume
    ft_model = trainer.model_  # WiSE-FT mixed (config.finetune.wise_alpha) with stage one's weights
    alpha = ft_config.wise_alpha
    val_dl = eval_loader(splits.val, tm.data_cfg)
    test_dl = eval_loader(splits.test, tm.data_cfg, progress=progress and is_main, description="decoding test images")
    ft_proba = {s: predict_proba(trainer, dl) for s, dl in (("val", val_dl), ("test", test_dl))}
    ft_metrics = {
        s: classification_metrics(y[s], ft_proba[s], splits.classes, positive=config.positive, threshold=tm.threshold)
        for s in ("val", "test")
    }
    epochs = trainer.history_
    ft_metrics["training"] = {
        "strategy": "finetune (LP-FT: head on cached features, then unfreeze at a low LR)",
        "unfreeze": config.finetune.unfreeze,
        "best_epoch": trainer.best_epoch_,
        "epochs_run": len(epochs),
        "stopped_early": trainer.stopped_early_,
        "best_val_loss": trainer.best_val_loss_,
        "initial_val_loss": trainer.initial_["val_loss"] if trainer.initial_ else None,
        "seconds_per_epoch": float(np.mean([e.seconds for e in epochs])) if epochs else None,
        "num_processes": accelerator.num_processes,
        "device": str(accelerator.device),
        "mixed_precision": str(accelerator.mixed_precision),
    }
    if from_scratch is not None:
        ft_metrics["training"]["from_scratch"] = from_scratch
    if trainer.resumed_from_ is not None:
        ft_metrics["training"]["resumed_from"] = trainer.resumed_from_
    ft_val_loss = trainer.best_val_loss_
    if alpha < 1.0:
        from .training.finetune import validation_loss

        ft_val_loss = validation_loss(y["val"], ft_proba["val"], y_train=y["train"], num_classes=len(splits.classes), config=ft_config)
        ft_metrics["training"]["wise_ft"] = {"alpha": alpha, "val_loss": ft_val_loss, "val_loss_fine_tuned": trainer.best_val_loss_}
    lp_val_loss = trainer.initial_["val_loss"] if trainer.initial_ else None
    if from_scratch is not None:  # fine-tuning started from a fresh head, not from stage one's: score the probe itself
        from .training.finetune import validation_loss

        lp_val_loss = validation_loss(y["val"], lp_proba["val"], y_train=y["train"], num_classes=len(splits.classes), config=ft_config)
    chosen, evidence = "finetune", None
    if config.strategy == "auto" and lp_val_loss is not None:
        evidence = auto_choice_evidence(
            y["val"], lp_proba["val"], ft_proba["val"], num_classes=len(splits.classes), y_train=y["train"], config=ft_config,
            lp_val_loss=lp_val_loss, ft_val_loss=ft_val_loss, rule=config.auto_rule, seed=config.seed)
        chosen = evidence["chosen"]
        if accelerator.num_processes > 1:  # one decision for every rank, the main process's
            from accelerate.utils import broadcast_object_list

            chosen = evidence["chosen"] = broadcast_object_list([chosen])[0]
    final = ft_model if chosen == "finetune" else lp_model
    final.eval()
    # its weights are no longer the file's: the feature cache must not serve the file's features for them
    final.backbone.weights_record = {**final.backbone.weights_record, "fine_tuned": chosen == "finetune"}
    checksum = parameter_checksum(final)
    import torch

    sums = accelerator.gather(torch.tensor([checksum], dtype=torch.float64, device=accelerator.device)).cpu().tolist()
    metrics.update({"val": (ft_metrics if chosen == "finetune" else lp_metrics)["val"], "test": (ft_metrics if chosen == "finetune" else lp_metrics)["test"]})
    metrics["training"] = {**(ft_metrics if chosen == "finetune" else lp_metrics)["training"], "chosen": chosen, "requested": config.strategy,
                           "selection": f"auto ({config.auto_rule})" if config.strategy == "auto" else "requested"}
    if evidence is not None:
        metrics["training"]["auto"] = evidence
    metrics["stages"] = {"linear_probe": lp_metrics, "finetune": ft_metrics}
    metrics["timing_s"]["finetune"] = t_ft
    metrics["distributed"] = {"num_processes": accelerator.num_processes, "param_checksums": sums}
    history = history + [{"stage": "finetune", **vars(e)} for e in epochs]
    return final, history, (ft_proba if chosen == "finetune" else lp_proba)


SPLITS_FILE = "splits.json"


def _splits_record(splits) -> dict[str, Any]:
    """RUN/splits.json: every image of each split (path relative to the data root, content hash), so a later
    ``evaluate`` can tell which images the run trained on."""
    root = Path(splits.root).resolve()

    def rel(p: Path) -> str:
        try:
            return str(Path(p).resolve().relative_to(root))
        except ValueError:
            return str(Path(p).resolve())

    return {"root": str(root),
            "splits": {s: [{"path": rel(r.path), "sha256": r.sha256} for r in splits.split(s)] for s in ("train", "val", "test")}}


def training_hashes(model: str | os.PathLike, *, items: str = "images") -> tuple[set[str], Path] | None:
    """Content hashes of the train + val images of the run that saved ``model`` (a run folder or its model/ folder),
    read from RUN/splits.json; None when there is no such record (a bare model folder, an older run). A record that
    exists but cannot be read is an error: treating it as absent would score the training images without a word."""
    from .errors import DataError

    here = Path(model)
    for run in (here, here.parent):
        path = run / SPLITS_FILE
        if path.is_file():
            try:
                rec = json.loads(path.read_text())
                return {e["sha256"] for s in ("train", "val") for e in rec["splits"][s]}, path
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise DataError(f"{path} (the {items} this run trained on, left out of evaluation) cannot be read "
                                f"({type(exc).__name__}): restore it from a copy of the run, or pass --include-training-{items} "
                                f"(include_training_{items}=True) to score every {items[:-1]}, the run's training {items} among them.") from None
    return None


def evaluate(model: str | os.PathLike | TransferModel, data: str | os.PathLike, *, positive: str | None = None,
             threshold: float | None = None, batch_size: int = 32, device: str = "auto", progress: bool = True,
             include_training_images: bool = False) -> dict[str, Any]:
    """Metrics of a saved model on a labelled folder (class sub-folders, or a root with test/).

    Images the run trained on (its train and val splits, by content hash: copies count too; from
    RUN/splits.json) are left out and counted in ``excluded_training_images``, so evaluating on the folder a
    run was fitted on scores its held-out images only; so does the model ``fit`` returned, in memory.
    ``include_training_images=True`` scores them all.
    """
    from .errors import DataError

    tm = model if isinstance(model, TransferModel) else load(model)
    from .runtime.predictor import check_threshold

    threshold = check_threshold(tm.classes, threshold, tm.threshold)  # before any image is read
    records, skipped = load_labelled_folder(data, tm.classes, progress=progress)
    if not records:
        raise DataError(f"no usable images in '{data}' ({len(skipped)} skipped).")
    excluded = 0
    source = getattr(model, "source_dir", None) if isinstance(model, TransferModel) else model  # a loaded model: its folder
    seen = None if include_training_images else (getattr(tm, "trained_on", None)  # a model fit returned, in memory
                                                  or (training_hashes(source) if source is not None else None))
    if seen is not None:
        kept = [r for r in records if r.sha256 not in seen[0]]
        excluded = len(records) - len(kept)
        if not kept:
            raise DataError(f"every image in '{data}' ({len(records)}) was used to train this run (its train/val splits, {seen[1]}): "
                            "evaluate on images it has not seen, or pass --include-training-images to score them anyway.")
        records = kept
    proba = _predict_records(tm, records, batch_size=batch_size, device=device, progress=progress)
    pos = positive or (tm.classes[tm.positive_index] if tm.positive_index is not None else None)
    out = classification_metrics(np.array([r.label for r in records]), proba, tm.classes, positive=pos,
                                 threshold=threshold)
    out["skipped"] = [{"path": str(s.path), "reason": s.reason} for s in skipped]
    out["excluded_training_images"] = excluded
    missing = None if source is None or include_training_images or seen is not None else missing_training_record(source)
    if missing:
        out["training_record"] = missing
    return out


def missing_training_record(model: str | os.PathLike, *, items: str = "images") -> str | None:
    """For a run folder (or its model/ folder) with no RUN/splits.json: a sentence saying its training data cannot be
    left out (a run from before the record, or the file was deleted); None for a bare model folder."""
    here = Path(model).expanduser()
    for run in (here, here.parent):
        if holds_run(run):
            return (f"{run} has no {SPLITS_FILE} (a run from before it was recorded, or it was deleted), so the {items} it trained "
                    f"on cannot be left out: if the data holds them, these numbers are optimistic")
    return None


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
            chunks.append(tm.predict_proba_tensor(x.to(dev)))
            advance(len(x))
    return np.concatenate(chunks)


def predict(model: str | os.PathLike | TransferModel, paths: str | os.PathLike | list[str | os.PathLike], *,
            threshold: float | None = None) -> list[dict[str, Any]]:
    """Labels and class probabilities for image files, one path or a list (bad files get an ``error`` entry).
    ``threshold`` (binary models): decide on the calibrated P(positive) at it instead of the model's own."""
    tm = model if isinstance(model, TransferModel) else load(model)
    return tm.predict(paths, threshold=threshold)
