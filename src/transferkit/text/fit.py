"""Layer 1 for text: ``fit_text`` (one split or K-fold CV), ``evaluate_text``, ``predict_text``.

Strategies:

- ``linear-probe``: the encoder stays frozen; a :class:`DenseHead` is trained on cached, pooled
  embeddings (seconds once the embeddings exist);
- ``finetune``: LP-FT: the linear probe first, then every weight trains on the shared trainer
  (AdamW, warm-up then decay, layer-wise LRs, dynamic padding, length-grouped batches);
- ``lora``: LP, then ``peft`` LoRA adapters + the head train; the adapters are saved in
  ``model/adapter/`` and merged into ``model.safetensors``.

With a run folder, ``finetune`` and ``lora`` write a checkpoint after every epoch to
``RUN/checkpoints/`` (with ``cv``: ``RUN/checkpoints/fold-K/`` per fold, whose result is kept in
``fold.json`` once the fold is done, and ``RUN/checkpoints/final/``); ``fit_text(resume=RUN)``
continues an interrupted run from there with the options saved in ``RUN/config.json``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..backbones.text import TextBackbone, load_text_backbone
from ..config import FinetuneConfig, HeadConfig, HeadTrainConfig
from ..data.text import (TextRecord, TextSplits, grouped_stratified_split, load_text_dataset, normalized_text_sha256, read_text_table,
                         stratified_folds, text_groups)
from ..errors import DataError, FinishedRunError
from ..evaluation import classification_metrics, resolve_positive
from ..features import ExtractionStats, FeatureCache, resolve_device
from ..progress import console
from ..run_folder import check_run_folder, clear_previous_run
from ..training import HeadTrainer, seed_everything
from .features import embed_texts
from .finetune import LoraSettings, finetune_text_model, merge_lora
from .model import TextClassifier

Strategy = Literal["linear-probe", "finetune", "lora"]
STRATEGIES = ("linear-probe", "finetune", "lora")


def text_finetune_defaults(strategy: str = "finetune") -> FinetuneConfig:
    """Defaults for BERT-family encoders on a few hundred short texts (standard practice, not tuned on test). The full
    fine-tuning lr is 3e-5 (Devlin et al.'s middle value) since the fifth session: on amazon_cells' 5 folds it gave a lower
    mean best validation loss than the earlier 8e-5 (0.287 vs 0.430, a rule fixed before the run; bench/RESULTS.md).
    Full fine-tuning keeps the WiSE-FT mix at alpha 0.5 since the eleventh session: on the 5 folds of amazon_cells and
    of yelp its mean validation loss was below the fine-tuned weights' (0.263 vs 0.282, 0.225 vs 0.232; the rule was
    fixed before the run: bench/text_wise_ft.py, bench/RESULTS.md). LoRA too, mixed after its adapters are merged
    (0.260 vs 0.273, 0.223 vs 0.236, by a rule fixed before its run)."""
    if strategy == "lora":
        return FinetuneConfig(epochs=4, batch_size=16, lr=1e-3, lr_decay=1.0, weight_decay=0.0, warmup_fraction=0.1, schedule="linear", patience=2, balance="weights",
                              wise_alpha=0.5)
    return FinetuneConfig(epochs=4, batch_size=16, lr=3e-5, lr_decay=0.95, weight_decay=0.01, warmup_fraction=0.1, schedule="linear", patience=2,
                          balance="weights", wise_alpha=0.5)


class TextFitConfig(BaseModel):
    """Everything ``fit_text`` needs: written to RUN/config.json."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    data: Path
    test: Path | None = Field(None, description="Separate test file (else carved from data, or --cv).")
    text_col: str | None = None
    label_col: str | None = None
    encoding: str = "utf-8"
    backbone: str = "all-MiniLM-L6-v2"
    weights: str = Field("auto", description="'auto' (offline first), 'none' (random init) or a model folder.")
    strategy: Strategy = "linear-probe"
    max_length: int | None = Field(None, gt=1, description="Tokens per text (default: the backbone's).")
    pooling: Literal["mean", "cls"] | None = None
    cv: int | None = Field(None, ge=2, description="Stratified K-fold CV over the data (no test split).")
    val_fraction: float = Field(0.15, gt=0, lt=1)
    test_fraction: float = Field(0.2, gt=0, lt=1)
    positive: str | None = None
    head: HeadConfig = Field(HeadConfig(hidden_dim=256), description=(
        "The probe's head (and stage one of LP-FT). Text keeps one hidden layer of 256: choosing the width by CV "
        "(hidden_dim='auto', the image default) was checked on amazon_cells and lowered fine-tuned accuracy (bench/RESULTS.md)."))
    head_train: HeadTrainConfig = HeadTrainConfig()
    finetune: FinetuneConfig | None = Field(None, description="Fine-tuning settings (default: text_finetune_defaults(strategy)).")
    lora_r: int = Field(8, gt=0)
    lora_alpha: int = Field(16, gt=0)
    lora_dropout: float = Field(0.1, ge=0, lt=1)
    embed_batch_size: int = Field(64, gt=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    cache_dir: Path | None = None
    seed: int = 0

    def finetune_config(self) -> FinetuneConfig:
        return self.finetune or text_finetune_defaults(self.strategy)


@dataclass
class TextFitResult:
    """What :func:`fit_text` returns. With CV, ``folds`` holds each fold and ``cv`` the mean ± std."""

    model: TextClassifier | None
    metrics: dict[str, Any]
    config: TextFitConfig
    run_dir: Path | None
    folds: list[dict[str, Any]] = field(default_factory=list)

    @property
    def test(self) -> dict[str, Any]:
        return self.metrics["test"]


def train_text_classifier(
    config: TextFitConfig,
    classes: Sequence[str],
    train: Sequence[TextRecord],
    val: Sequence[TextRecord],
    *,
    cache: FeatureCache | None = None,
    progress: bool = True,
    adapter_dir: str | None = None,
    stats: ExtractionStats | None = None,
    backbone: TextBackbone | None = None,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    resume_hint: str | None = None,
) -> tuple[TextClassifier, dict[str, Any]]:
    """One model on one train/val split: the linear probe, then (finetune, lora) the trainer.

    ``backbone`` (a frozen, already loaded one) is reused by the linear probe; fine-tuning
    always loads a fresh copy, since it changes the weights. ``checkpoint_dir``, ``resume`` and
    ``resume_hint`` go to the trainer (fine-tuning only; the probe is recomputed, from cached embeddings).
    """
    seed_everything(config.seed)
    if backbone is None or config.strategy != "linear-probe":
        backbone = load_text_backbone(config.backbone, config.weights, pooling=config.pooling, max_length=config.max_length)
    kw = {"cache": cache, "batch_size": config.embed_batch_size, "device": config.device, "progress": progress, "stats": stats}
    t0 = time.perf_counter()
    x_train = embed_texts(backbone, [r.text for r in train], description="train embeddings", **kw)
    x_val = embed_texts(backbone, [r.text for r in val], description="val embeddings", **kw)
    y_train = np.array([r.label for r in train], dtype=np.int64)
    y_val = np.array([r.label for r in val], dtype=np.int64)
    # linear_refit off: fine-tuning stops on this validation split, so no stage may have fitted it
    probe = HeadTrainer(config.head, config.head_train.model_copy(update={"seed": config.seed, "linear_refit": False}), progress=False)
    # the head's CV (hidden_dim='auto') keeps copies of a text in one fold
    probe.fit(x_train, y_train, x_val, y_val, len(classes), groups=text_groups([*train, *val]))
    info: dict[str, Any] = {"strategy": config.strategy, "probe_best_epoch": probe.best_epoch_, "probe_val_loss": probe.best_val_loss_,
                            "head": probe.head_config_.hidden_dim or "linear",
                            **({"head_selection": probe.head_choice_.as_dict()} if probe.head_choice_ is not None else {}),
                            **({"probe_C": probe.C_} if probe.C_ is not None else {}),
                            "embedding_s": time.perf_counter() - t0}
    model = TextClassifier(backbone, probe.head_, classes, positive=config.positive, strategy=config.strategy)
    if config.strategy == "linear-probe":
        info["history"] = [vars(h) for h in probe.history_]  # the report's training curves
        return model, info
    ft = config.finetune_config()
    lora = LoraSettings(config.lora_r, config.lora_alpha, config.lora_dropout) if config.strategy == "lora" else None
    t1 = time.perf_counter()
    start = {k: v.detach().clone() for k, v in model.state_dict().items()} if ft.wise_alpha < 1.0 else None
    trainer = finetune_text_model(model, train, val, ft, lora=lora, seed=config.seed, device=config.device, progress=progress,
                                  checkpoint_dir=checkpoint_dir, resume=resume, resume_hint=resume_hint,
                                  seed_rng=False)  # fit_text seeded the run at its start
    num_trainable = int(sum(p.numel() for p in model.parameters() if p.requires_grad))
    if lora is not None:
        merge_lora(model, adapter_dir, saved_scale=ft.wise_alpha if start is not None else 1.0)  # the adapter as mixed below
    if start is not None:  # WiSE-FT: between stage one and the fine-tuned (for LoRA: merged) weights
        from ..training import apply_wise_ft

        apply_wise_ft(model, start, ft.wise_alpha)
        info["wise_ft"] = {"alpha": ft.wise_alpha}
    model.eval()
    # the encoder's weights are no longer the file's: the embedding cache must not serve the file's embeddings for them
    model.backbone.weights_record = {**model.backbone.weights_record, "fine_tuned": True}
    info.update({"finetune": json.loads(ft.model_dump_json()), "best_epoch": trainer.best_epoch_, "best_val_loss": trainer.best_val_loss_,
                 "initial_val": trainer.initial_, "history": [vars(h) for h in trainer.history_],
                 "finetune_s": time.perf_counter() - t1 + trainer.seconds_before_resume,
                 "num_trainable_params": num_trainable})
    if trainer.resumed_from_ is not None:
        info["resumed_from"] = trainer.resumed_from_
    if model.adapter:
        info["adapter"] = model.adapter
    return model, info


def _proba(model: TextClassifier, records: Sequence[TextRecord], config: TextFitConfig, cache: FeatureCache | None = None,
           stats: ExtractionStats | None = None) -> np.ndarray:
    """Test-time probabilities; a frozen encoder's embeddings come from the cache (counted in ``stats`` when given: pass it
    for the test split, whose embeddings training never made)."""
    texts = [r.text for r in records]
    if model.strategy == "linear-probe" and cache is not None:
        import torch

        x = embed_texts(model.backbone, texts, cache=cache, batch_size=config.embed_batch_size, device=config.device, progress=False,
                        stats=stats)
        with torch.no_grad():
            return model.head.eval()(torch.from_numpy(x)).softmax(1).numpy()
    return model.predict_proba(texts, batch_size=config.embed_batch_size, device=resolve_device(config.device))


def _mean_std(folds: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("accuracy", "balanced_accuracy", "macro_f1"):
        v = np.array([f["test"][key] for f in folds])
        out[key] = {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "values": v.tolist()}
    if all("binary" in f["test"] for f in folds):
        v = np.array([f["test"]["binary"]["roc_auc"] for f in folds])
        out["roc_auc"] = {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "values": v.tolist()}
    for key in ("cpu_s", "wall_s"):
        v = np.array([f[key] for f in folds])
        out[key] = {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "values": v.tolist()}
    return out


def library_versions() -> dict[str, str]:
    import sklearn
    import torch
    import transformers

    from .. import __version__

    versions = {"transferkit": __version__, "python": platform.python_version(), "torch": torch.__version__,
                "transformers": transformers.__version__, "scikit-learn": sklearn.__version__, "numpy": np.__version__}
    try:
        import peft

        versions["peft"] = peft.__version__
    except ImportError:  # pragma: no cover
        pass
    return versions


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    from ..json_files import write_json

    write_json(path, payload)  # strict JSON: an undefined metric (NaN) is written as null


def cross_validate_text(config: TextFitConfig, *, progress: bool = True, cache: FeatureCache | None = None,
                        table=None, verbose: bool | None = None, max_folds: int | None = None, checkpoint_dir: Path | None = None,
                        resume: bool = False, resume_hint: str | None = None,
                        is_main: bool = True) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """Stratified K-fold CV (duplicate texts kept in one fold): per-fold metrics, mean ± std, data summary.

    ``max_folds`` runs only the first folds of the K-fold partition (a cheaper, partial estimate:
    the summary then covers those folds only).

    With ``checkpoint_dir`` (fine-tuning strategies), fold K checkpoints every epoch into
    ``checkpoint_dir/fold-K/``; once done, its result is written there as ``fold.json`` (by the main
    process, ``is_main``) and its checkpoints are removed. ``resume=True`` reads the folds that have a
    ``fold.json`` instead of training them again and continues the others from their last checkpoint.
    """
    if config.cv is None:
        raise ValueError("config.cv is not set.")
    table = table or read_text_table(config.data, text_col=config.text_col, label_col=config.label_col, encoding=config.encoding)
    cache = cache or FeatureCache(config.cache_dir)
    folds = []
    shared = load_text_backbone(config.backbone, config.weights, pooling=config.pooling, max_length=config.max_length) if config.strategy == "linear-probe" else None
    show = progress if verbose is None else verbose
    for k, (train_idx, test_idx) in enumerate(stratified_folds(table.records, config.cv, config.seed, classes=table.classes)[:max_folds],
                                              start=1):
        fold_dir = Path(checkpoint_dir) / f"fold-{k}" if checkpoint_dir is not None and config.strategy != "linear-probe" else None
        done = _read_fold(fold_dir) if resume and fold_dir is not None else None
        if done is not None:
            folds.append(done)
            if show:
                console.print(f"fold {k}/{config.cv}: accuracy {done['test']['accuracy']:.3f}  (done before the interruption: {fold_dir / FOLD_FILE})")
            continue
        c0, w0 = time.process_time(), time.perf_counter()
        rest = [table.records[i] for i in train_idx]
        keep, hold = grouped_stratified_split(rest, config.val_fraction, config.seed, f"fold-{k} validation", classes=table.classes,
                                              advice="With --cv, validation is carved from each fold's training part, which "
                                                     "needs 2 distinct texts of every class: add examples of it"
                                                     + (", or use fewer folds (--cv)." if config.cv > 2 else "."))
        train, val, test = [rest[i] for i in keep], [rest[i] for i in hold], [table.records[i] for i in test_idx]
        model, info = train_text_classifier(config, table.classes, train, val, cache=cache, progress=progress, backbone=shared,
                                            checkpoint_dir=fold_dir, resume=resume, resume_hint=resume_hint)
        proba = _proba(model, test, config, cache)
        metrics = classification_metrics(np.array([r.label for r in test]), proba, table.classes, positive=config.positive)
        fold = {"fold": k, "num_train": len(train), "num_val": len(val), "num_test": len(test), "test": metrics, "training": info,
                "cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - w0}
        folds.append(fold)
        if fold_dir is not None and is_main:
            _record_fold(fold_dir, fold)
        if show:
            console.print(f"fold {k}/{config.cv}: accuracy {metrics['accuracy']:.3f}  ({fold['cpu_s']:.0f} s CPU, {fold['wall_s']:.0f} s wall)")
        del model
    return folds, _mean_std(folds), table.summary()


FOLD_FILE = "fold.json"


def _record_fold(fold_dir: Path, fold: dict[str, Any]) -> None:
    """``fold_dir/fold.json`` (atomic; NaN kept as NaN so a resumed run's numbers are the same
    objects), then the fold's checkpoints go: a finished fold is never trained again."""
    import shutil

    from ..training.checkpoint import LATEST, atomic_write_text

    fold_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(fold_dir / FOLD_FILE, json.dumps(fold, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
    for p in fold_dir.iterdir():
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.name == LATEST:
            p.unlink()


def _read_fold(fold_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((fold_dir / FOLD_FILE).read_text())
    except (OSError, ValueError):
        return None


def _resume_config(run_dir: Path) -> tuple[TextFitConfig, dict[str, Any]]:
    """The options of the run in ``run_dir`` (its config.json), checked for resuming."""
    from pydantic import ValidationError

    try:
        saved = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        raise DataError(f"cannot resume '{run_dir}': no readable config.json from an earlier `transferkit fit-text --out {run_dir}`. "
                        "Check the folder, or start a new run without --resume.") from None
    if not isinstance(saved, dict) or "fit_text" not in saved:
        if isinstance(saved, dict) and "fit" in saved:
            raise DataError(f"cannot resume '{run_dir}' as a text run: it is an image run; use `transferkit fit --resume {run_dir}`.")
        raise DataError(f"cannot resume '{run_dir}': its config.json has no 'fit_text' section (not written by `transferkit fit-text`).")
    if saved.get("status") == "done":
        # a report is written by a run with a test split (no --cv) that was not told --no-report (its recorded run options)
        report_expected = not saved["fit_text"].get("cv") and bool((saved.get("run") or {}).get("report", True))
        raise FinishedRunError(run_dir, "fit-text", report_expected=report_expected)
    try:
        config = TextFitConfig.model_validate(saved["fit_text"])
    except ValidationError as exc:
        e = exc.errors()[0]
        raise DataError(f"cannot resume '{run_dir}': config.json has an invalid option {'.'.join(map(str, e['loc']))} ({e['msg']}); "
                        "it was written by another transferkit version. Start a new run without --resume.") from None
    if config.finetune is None and config.strategy != "linear-probe":  # the fine-tuning settings the run started with
        effective = saved.get("finetune_effective")
        config = config.model_copy(update={"finetune": FinetuneConfig.model_validate(effective) if effective else
                                           # written before runs recorded them: every earlier version fine-tuned text at alpha 1
                                           text_finetune_defaults(config.strategy).model_copy(update={"wise_alpha": 1.0})})
    if config.strategy == "linear-probe":
        raise DataError(f"cannot resume '{run_dir}': it is a linear-probe run, which writes no checkpoints (nothing to continue). "
                        f"Run it again: transferkit fit-text {config.data} --strategy linear-probe --out {run_dir} (with its other options).")
    return config, saved.get("run") or {}


def fit_text(
    data: str | os.PathLike | None = None,
    *,
    model: str = "all-MiniLM-L6-v2",
    strategy: str = "linear-probe",
    cv: int | None = None,
    test: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    save_final: bool = True,
    progress: bool = True,
    config: TextFitConfig | None = None,
    report: bool = True,
    max_params: int | None = None,
    max_size_mb: float | None = None,
    max_latency_ms: float | None = None,
    max_memory_mb: float | None = None,
    resume: str | os.PathLike | None = None,
    **kwargs: Any,
) -> TextFitResult:
    """Transfer a text encoder to labelled texts; evaluate on a test split or by K-fold CV.

    >>> result = fit_text("reviews/amazon_cells_labelled.txt", model="all-MiniLM-L6-v2", strategy="finetune", cv=5)
    >>> result.metrics["cv"]["accuracy"]   # {"mean": ..., "std": ..., "values": [...]}

    Other keyword arguments are :class:`TextFitConfig` fields (``text_col``, ``max_length``, ``seed``...).
    With ``cv``, the saved model (``save_final``) is trained on all rows, validation carved out.
    With a test split and ``out``, the per-text predictions are saved in ``out/predictions/`` and
    ``report=True`` ends by writing ``out/report.html`` (see :func:`transferkit.report.write_report`).
    ``model="auto"`` first ranks the registered text encoders on the training texts (never the test
    split; :func:`transferkit.selection.rank_backbones`) under the ``max_*`` limits and fits the top
    one; the ranking is saved as ``out/ranking.json`` and shown in the report.

    ``finetune`` and ``lora`` with ``out`` write a checkpoint after every epoch to ``out/checkpoints/``.
    After a crash or Ctrl-C (:class:`~transferkit.training.TrainingInterrupted`),
    ``fit_text(resume=out)`` continues from the last checkpoint with every option read from
    ``out/config.json`` (``cv``: finished folds are read back, not trained again); on the CPU it ends
    with the same weights and metrics as an uninterrupted run. Under ``accelerate launch`` every
    process runs this; only the main process writes the run folder.
    """
    run_options: dict[str, Any] = {"save_final": save_final, "report": report}
    if out is not None and resume is None:
        check_run_folder(out)
    if resume is not None:  # every option comes from the run's config.json: an argument beside it would be silently ignored
        ignored = [n for n, v, d in (("data", data, None), ("model", model, "all-MiniLM-L6-v2"), ("strategy", strategy, "linear-probe"),
                                     ("cv", cv, None), ("test", test, None), ("config", config, None)) if v != d] + sorted(kwargs)
        if ignored:
            from ..errors import ConfigError

            raise ConfigError(f"resume continues the run with the options it started with (RUN/config.json), so these would be ignored: "
                              f"{', '.join(ignored)}. Resume without them, or start a new run with them (without resume).")
        out = Path(resume).expanduser()
        config, saved_options = _resume_config(out)
        run_options.update(saved_options)
        save_final, report = bool(run_options["save_final"]), bool(run_options["report"])
    elif config is not None:  # every setting comes from the config: an argument beside it would be silently ignored
        ignored = [*(n for n, v, d in (("model", model, "all-MiniLM-L6-v2"), ("strategy", strategy, "linear-probe"), ("cv", cv, None),
                                        ("test", test, None)) if v != d), *sorted(kwargs)]
        if data is not None and Path(data).resolve() != Path(config.data).resolve():
            ignored.insert(0, f"data ('{data}'; the config reads '{config.data}')")
        if ignored:
            from ..errors import ConfigError

            raise ConfigError(f"fit_text(config=...) takes its settings from the config, so these arguments would be ignored: "
                              f"{', '.join(ignored)}. Set them in the config (config.model_copy(update={{...}})), or call fit_text without config=.")
    else:
        if data is None:
            raise DataError("pass a data file (or resume=RUN to continue an interrupted run).")
        # absolute paths: config.json must resume (and reproduce) from any working directory
        config = TextFitConfig(data=Path(data).expanduser().absolute(), backbone=model, strategy=strategy, cv=cv,
                               test=Path(test).expanduser().absolute() if test else None, **kwargs)
    if config.strategy not in STRATEGIES:
        raise DataError(f"unknown strategy '{config.strategy}'; use one of {STRATEGIES}.")
    limits = {"max_params (--max-params)": max_params, "max_size_mb (--max-size-mb)": max_size_mb,
              "max_latency_ms (--max-latency-ms)": max_latency_ms, "max_memory_mb (--max-memory-mb)": max_memory_mb}
    given = [n for n, v in limits.items() if v is not None]
    if given and config.backbone != "auto":  # they choose among the encoders: beside a fixed one they would be ignored
        from ..errors import ConfigError

        raise ConfigError(f"the limits {', '.join(given)} choose among the encoders only with model='auto' (--model auto); "
                          f"this run trains {config.backbone!r} (given, or the default), so they would not be checked. Drop them, "
                          f"use --model auto, or check it first with `transferkit rank DATA --candidates {config.backbone} --max-...`.")
    tuning = config.strategy != "linear-probe"
    accelerator = None
    if not tuning:
        from ..launch import refuse_several_processes

        refuse_several_processes("a linear probe (a head trained on cached embeddings)",
                                 "Run `transferkit fit-text` without `accelerate launch`, or launch --strategy finetune or lora.")
    if tuning:  # the trainer runs on Accelerate: under `accelerate launch`, only the main process writes
        from ..training import make_accelerator

        accelerator = make_accelerator(config.device, config.finetune_config().mixed_precision)
    is_main = accelerator is None or accelerator.is_main_process
    ranking = None
    if config.backbone == "auto":
        from ..launch import on_main_process
        from ..selection import choose_backbone

        # read once here: a wrong --positive fails before the ranking, which then scores these train + val texts
        ranked_splits = load_text_dataset(config.data, text_col=config.text_col, label_col=config.label_col, val_fraction=config.val_fraction,
                                          test_fraction=config.test_fraction, seed=config.seed, encoding=config.encoding)
        resolve_positive(ranked_splits.classes, config.positive)
        # under `accelerate launch`: ranked once, by the main process, and its choice given to every process
        chosen, ranking = on_main_process(
            lambda: choose_backbone(ranked_splits, modality="text", max_params=max_params, max_size_mb=max_size_mb,
                                    max_latency_ms=max_latency_ms, max_memory_mb=max_memory_mb, device=config.device,
                                    seed=config.seed, cache_dir=config.cache_dir, progress=progress and is_main, strategy=config.strategy),
            share=lambda result: (result[0], None))
        config = config.model_copy(update={"backbone": chosen})  # the default candidates are pretrained encoders only
    if config.cv and config.test:
        raise DataError("--cv evaluates by K-fold over the data file; do not also pass --test (or drop --cv to use the test file).")
    if ranking is not None:
        run_options["selection"] = {"chosen": config.backbone, "ranking": "ranking.json" if out is not None else None,
                                    "ranking_seconds": ranking.timing_s.get("total")}
    progress = progress and is_main
    t0, c0 = time.perf_counter(), time.process_time()
    cache = FeatureCache(config.cache_dir, read_only=not is_main)  # under `accelerate launch`, one process writes the cache
    run_dir = Path(out).expanduser() if out is not None else None
    adapter_dir = str(run_dir / "model" / "adapter") if run_dir is not None and is_main else None
    checkpoints = run_dir / "checkpoints" if run_dir is not None and tuning else None
    hint = f"transferkit fit-text --resume {run_dir}  (Python: transferkit.fit_text(resume={str(run_dir)!r}))" if run_dir is not None else None
    resuming = resume is not None

    def start_run() -> None:  # once the data are read: a failed check leaves no half-made run
        if run_dir is None or not is_main or resuming:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        replaced = clear_previous_run(run_dir)  # an earlier run's report, predictions or checkpoints must not stay beside this one
        if replaced:  # said even with progress off: files were removed
            console.print(f"{run_dir} held an earlier run: its outputs were replaced ({', '.join(replaced)}).")
        if ranking is not None:
            ranking.save_json(run_dir / "ranking.json")
        _write_json(run_dir / "config.json", {
            "status": "running", "fit_text": json.loads(config.model_dump_json()), "run": run_options,
            # the defaults this run starts under: a resume after an upgrade that changes them keeps these
            "finetune_effective": json.loads(config.finetune_config().model_dump_json()) if config.strategy != "linear-probe" else None})
    metrics: dict[str, Any] = {}
    folds: list[dict[str, Any]] = []
    final: TextClassifier | None = None
    trained_on: dict[str, Sequence[TextRecord]] = {}  # the saved model's splits: RUN/splits.json
    stats = ExtractionStats()
    if config.cv:
        table = read_text_table(config.data, text_col=config.text_col, label_col=config.label_col, encoding=config.encoding)
        resolve_positive(table.classes, config.positive)  # a wrong --positive fails now, not after embedding and training
        stratified_folds(table.records, config.cv, config.seed, classes=table.classes)  # too few examples for --cv: before the run folder
        start_run()
        folds, summary, data_summary = cross_validate_text(config, progress=progress, cache=cache, table=table, checkpoint_dir=checkpoints,
                                                           resume=resuming, resume_hint=hint, is_main=is_main)
        metrics["cv"] = {"folds": config.cv, **summary}
        metrics["folds"] = [{k: v for k, v in f.items() if k != "training"} | {"training": {kk: vv for kk, vv in f["training"].items() if kk != "history"}} for f in folds]
        metrics["data"] = {k: v for k, v in data_summary.items() if k not in ("skipped", "duplicates")}
        if save_final:
            keep, hold = grouped_stratified_split(table.records, config.val_fraction, config.seed, "validation", classes=table.classes,
                                                  advice="The model saved after --cv is trained on all rows with validation carved "
                                                         "out: add examples of it, or pass --no-final (no saved model).")
            train, val = [table.records[i] for i in keep], [table.records[i] for i in hold]
            trained_on = {"train": train, "val": val}
            final, info = train_text_classifier(config, table.classes, train, val, cache=cache, progress=progress, adapter_dir=adapter_dir, stats=stats,
                                                checkpoint_dir=checkpoints / "final" if checkpoints is not None else None, resume=resuming,
                                                resume_hint=hint)
            val_proba = _proba(final, val, config, cache)
            metrics["final_model"] = {"num_train": len(train), "num_val": len(val), "training": info,
                                      "val": classification_metrics(np.array([r.label for r in val]), val_proba, table.classes, positive=config.positive)}
            _calibrate(final, [r.label for r in val], val_proba, metrics["final_model"])
        data_record = data_summary
    else:
        splits: TextSplits = load_text_dataset(config.data, test=config.test, text_col=config.text_col, label_col=config.label_col,
                                               val_fraction=config.val_fraction, test_fraction=config.test_fraction, seed=config.seed, encoding=config.encoding)
        resolve_positive(splits.classes, config.positive)
        start_run()
        final, info = train_text_classifier(config, splits.classes, splits.train, splits.val, cache=cache, progress=progress, adapter_dir=adapter_dir, stats=stats,
                                            checkpoint_dir=checkpoints, resume=resuming, resume_hint=hint)
        trained_on = {s: splits.split(s) for s in ("train", "val", "test")}
        proba = {s: _proba(final, splits.split(s), config, cache, stats=stats if s == "test" else None) for s in ("val", "test")}
        for s in ("val", "test"):
            metrics[s] = classification_metrics(np.array([r.label for r in splits.split(s)]), proba[s], splits.classes, positive=config.positive)
        _calibrate(final, [r.label for r in splits.val], proba["val"], metrics)
        metrics["training"] = {k: v for k, v in info.items() if k != "history"}
        metrics["history"] = info.get("history", [])
        data_record = splits.summary()
        # each file's counts, so the CLI names the file (--test FILE) of skipped rows and duplicates; the rows are in config.json
        metrics["data"] = {k: v for k, v in data_record.items() if k != "files"} | {
            "files": [{k: v for k, v in f.items() if k not in ("skipped", "duplicates", "counts", "classes")} for f in data_record["files"]]}
    if run_options.get("selection"):
        metrics["selection"] = run_options["selection"]
    metrics["timing_s"] = {"total_wall": time.perf_counter() - t0, "total_cpu": time.process_time() - c0,
                           "embeddings_cached": stats.num_cached, "embeddings_computed": stats.num_computed}
    if final is not None:  # evaluate_text(result.model, ...) leaves these out as it does for the saved run
        final.trained_on = ({normalized_text_sha256(r.text) for s in ("train", "val") for r in trained_on.get(s, ())},
                            "the train/val splits of the fit that returned this model")
    if run_dir is not None and is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if final is not None:
            from ..api import SPLITS_FILE

            final.save_pretrained(run_dir / "model")
            _write_json(run_dir / SPLITS_FILE, _text_splits_record(config.data, trained_on))
            if not config.cv:  # before "done", as fit does: a run marked done has every result on disk
                _save_predictions(run_dir, splits, proba)
        _write_json(run_dir / "config.json", {
            "status": "done",
            "fit_text": json.loads(config.model_dump_json()),
            "run": run_options,
            "finetune_effective": json.loads(config.finetune_config().model_dump_json()) if config.strategy != "linear-probe" else None,
            "backbone": (final.config()["backbone"] | {"hf_config": None}) if final is not None else {"name": config.backbone},
            "data": data_record,
            "device": str(resolve_device(config.device)),
            "versions": library_versions(),
        })
        _write_json(run_dir / "metrics.json", metrics)
        if not config.cv and final is not None and report:
            _write_report(run_dir, final, splits, progress=progress, metrics=metrics)
    if accelerator is not None:
        accelerator.wait_for_everyone()
    return TextFitResult(final, metrics, config, run_dir, folds)


def _calibrate(model: TextClassifier, y_val: Sequence[int], proba_val: np.ndarray, record: dict[str, Any]) -> None:
    """The saved model's temperature, fitted on its validation split (the same fit the report shows), report or not."""
    from ..evaluation.calibration import calibrate_on_validation

    calibration = calibrate_on_validation(np.asarray(y_val, dtype=np.int64), proba_val, classes=model.classes)
    if calibration is not None:
        model.temperature = float(calibration["temperature"])
        record["calibration"] = calibration


def _save_predictions(run_dir: Path, splits: TextSplits, proba: dict[str, np.ndarray]) -> None:
    """``run_dir/predictions/{val,test}.csv`` (the report's input)."""
    from ..evaluation import save_predictions

    for s in ("val", "test"):
        recs = splits.split(s)
        save_predictions(run_dir, s, [r.where for r in recs], [r.label for r in recs], proba[s], classes=splits.classes,
                         texts=[r.text for r in recs])


def _write_report(run_dir: Path, model: TextClassifier, splits: TextSplits, *, progress: bool, metrics: dict[str, Any]) -> None:
    """The report, from the saved predictions; the model takes the temperature the report fitted on validation (as
    ``transferkit.load`` would)."""
    from ..report import write_report

    result = write_report(run_dir, splits=splits, progress=progress)
    metrics["report"] = {"path": str(result.path), "warnings": list(result.warnings)}
    model.temperature = float(result.summary["calibration"]["temperature"])


def _text_splits_record(data: Path, named: dict[str, Sequence[TextRecord]]) -> dict[str, Any]:
    """RUN/splits.json of a text run: every text of the saved model's splits (file:line, and the hash of its normalised
    text, :func:`~transferkit.data.text.normalized_text_sha256`), so a later ``evaluate_text`` can leave out the texts the
    run trained on. The layout of an image run's record (read by :func:`transferkit.api.training_hashes`)."""
    return {"modality": "text", "root": str(data), "hash": "sha256 of the normalised text (case, punctuation and spacing ignored)",
            "splits": {s: [{"path": r.where, "sha256": normalized_text_sha256(r.text)} for r in named.get(s, ())]
                       for s in ("train", "val", "test")}}


def _load_text_model(model: str | os.PathLike | TextClassifier) -> TextClassifier:
    return model if isinstance(model, TextClassifier) else TextClassifier.from_pretrained(model)


def evaluate_text(model: str | os.PathLike | TextClassifier, data: str | os.PathLike, *, text_col: str | None = None,
                  label_col: str | None = None, encoding: str = "utf-8", batch_size: int = 64, threshold: float | None = None,
                  include_training_texts: bool = False) -> dict[str, Any]:
    """Metrics of a saved text model on a labelled file; rows with labels the model does not know are skipped and listed.

    Texts the run trained or validated on (RUN/splits.json; copies that differ only in case, punctuation or spacing
    count too) are left out and counted in ``excluded_training_texts``, so evaluating on the file a run was fitted on
    scores its held-out texts only; so does the model ``fit_text`` returned, in memory. ``include_training_texts=True``
    scores them all; a bare model folder (no record) is scored on every text. ``threshold`` (binary models): the decision threshold on the
    calibrated P(positive) (default: the model's), as ``transferkit evaluate --threshold`` for images.
    """
    from ..runtime.predictor import check_threshold

    tm = _load_text_model(model)
    threshold = check_threshold(tm.classes, threshold, tm.threshold)  # before any text is read
    source = getattr(model, "source_dir", None) if isinstance(model, TextClassifier) else model  # a loaded model: its folder
    from ..api import missing_training_record, training_hashes  # RUN/splits.json: normalised-text hashes for a text run

    seen = None if include_training_texts else (getattr(tm, "trained_on", None)  # a model fit_text returned, in memory
                                                 or (training_hashes(Path(source).expanduser(), items="texts") if source is not None else None))
    table = read_text_table(data, text_col=text_col, label_col=label_col, classes=tm.classes, encoding=encoding)
    records = table.records
    if seen is not None:
        records = [r for r in table.records if normalized_text_sha256(r.text) not in seen[0]]
        if not records:
            raise DataError(f"every text in '{data}' ({len(table.records)}) was used to train this run (its train/val splits, {seen[1]}): "
                            "evaluate on texts it has not seen, or pass --include-training-texts to score them anyway.")
    proba = tm.predict_proba([r.text for r in records], batch_size=batch_size)
    pos = tm.classes[tm.positive_index] if tm.positive_index is not None else None
    out = classification_metrics(np.array([r.label for r in records], dtype=np.int64), proba, tm.classes, positive=pos, threshold=threshold)
    out["skipped"] = [{"where": s.where, "reason": s.reason} for s in table.skipped]
    out["label_merges"] = table.label_merges  # other spellings of the model's classes ('Positive' for 'positive')
    out["excluded_training_texts"] = len(table.records) - len(records)
    missing = None if source is None or include_training_texts or seen is not None else missing_training_record(source, items="texts")
    if missing:
        out["training_record"] = missing
    return out


def predict_text(model: str | os.PathLike | TextClassifier, texts: Sequence[str], *, batch_size: int = 64,
                 threshold: float | None = None) -> list[dict[str, Any]]:
    """Label and class probabilities per text (an empty text gets an ``error`` entry). ``threshold`` (binary models):
    the decision threshold on the calibrated P(positive) (default: the model's)."""
    from ..runtime.predictor import check_threshold

    tm = _load_text_model(model)
    return tm.predict(texts, batch_size=batch_size, threshold=check_threshold(tm.classes, threshold, tm.threshold))
