"""A model-agnostic training loop on Hugging Face Accelerate.

:class:`Trainer` takes a model, a loss, parameter groups and two DataLoaders that yield
``(inputs, targets)`` (``inputs`` may be a dict of keyword arguments, as text models take).
One code path serves the CPU, one GPU and several processes (``accelerate launch``).

What it does per run: AdamW with the given (e.g. layer-wise) parameter groups, linear warm-up
then cosine decay, gradient clipping, mixed precision and channels_last on CUDA, frozen
BatchNorm layers kept in eval mode, early stopping on validation loss, a checkpoint after every
epoch (atomic; see :mod:`.checkpoint`), exact resume, and a checkpoint on Ctrl-C.

Reproducibility contract: the training order and any data augmentation must be functions of
``(seed, epoch, index)`` — the trainer calls ``set_epoch(epoch)`` on the train loader's sampler
and dataset when they have it (see :class:`.sampling.EpochSampler`). Then a run resumed after
``kill -9`` ends with the same weights and metrics as an uninterrupted one (same seed, CPU).
"""

from __future__ import annotations

import copy
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import FinetuneConfig
from ..errors import NotFittedError, TransferKitError
from ..progress import track
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .schedule import warmup_decay


class TrainingInterrupted(TransferKitError, KeyboardInterrupt):
    """Ctrl-C during training: a checkpoint was saved; the message says how to resume."""


@dataclass
class FinetuneEpoch:
    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    lr: float
    seconds: float
    skipped_steps: int = 0  # steps whose gradient norm was not finite (inf/NaN): no optimizer step taken


def check_skipped_steps(epoch: int, skipped: int, steps: int, say) -> None:
    """Report an epoch's steps skipped for a non-finite gradient norm; an epoch with no step taken is an error."""
    from ..errors import TrainingError

    if skipped >= steps:
        raise TrainingError(
            f"every step of fine-tuning epoch {epoch} ({steps}) had a gradient norm that is not finite (inf or NaN), so "
            "nothing trained. Lower the learning rate (--ft-lr), or look for inputs or features of extreme size (a feature "
            "the head divides by a spread of ~0 multiplies its gradient by as much).")
    say(f"note: {skipped} of {steps} step(s) in epoch {epoch} skipped: their gradient norm was not finite (inf or NaN). "
        "A few are survivable; many mean the learning rate is too high for this model.")


def make_accelerator(device: str = "auto", mixed_precision: str = "auto"):
    """An :class:`accelerate.Accelerator` with the trainer's settings.

    ``split_batches=True``: the DataLoader's batch size is the *global* batch, divided across
    processes, so 1 and N processes take the same optimisation steps, except for a last, partial batch (a training set
    that is no multiple of the batch size and too small for the image loader's ``drop_last``): Accelerate pads it with
    examples from the epoch's start so that every process gets a share, and those are trained on twice.
    """
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration

    use_cpu = device == "cpu" or not torch.cuda.is_available()
    if mixed_precision == "auto":
        mixed_precision = "no" if use_cpu else ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    return Accelerator(cpu=use_cpu, mixed_precision=mixed_precision, dataloader_config=DataLoaderConfiguration(split_batches=True))


def set_train_mode(model: nn.Module, *, freeze_bn: bool = False) -> None:
    """``model.train()``, except BatchNorm layers whose parameters are frozen (or all of them
    with ``freeze_bn``) stay in eval mode: their running statistics are not updated."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            params = list(m.parameters(recurse=False))
            if freeze_bn or not any(p.requires_grad for p in params):
                m.eval()


def _call(model: nn.Module, inputs: Any) -> torch.Tensor:
    return model(**inputs) if isinstance(inputs, dict) else model(inputs)


def _to_device(x: Any, device: torch.device, channels_last: bool) -> Any:
    if isinstance(x, dict):
        return {k: _to_device(v, device, channels_last) for k, v in x.items()}
    if torch.is_tensor(x):
        x = x.to(device, non_blocking=True)
        if channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
    return x


class Trainer:
    """Trains ``model`` with ``loss_fn(outputs, targets)`` and early stopping on validation loss.

    ``param_groups`` are AdamW groups (e.g. from :func:`.schedule.layerwise_param_groups`); by
    default every trainable parameter at ``config.lr``. ``checkpoint_dir`` enables per-epoch
    checkpoints and ``fit(..., resume=True)``. ``keep_initial=True`` evaluates the model before
    training as epoch 0 and lets it win if no epoch beats it (never ship worse than the start).

    After ``fit``: ``model_`` (unwrapped, best weights loaded), ``history_``, ``best_epoch_``,
    ``best_val_loss_``, ``initial_`` (epoch-0 validation record, when evaluated), ``stopped_early_`` and
    ``resumed_from_`` (None, or the checkpoint a resumed run started from and the training seconds it had recorded:
    :attr:`seconds_before_resume`; work lost after the last checkpoint is not counted).

    ``fit`` first seeds the global ``random``, numpy and torch generators with ``seed`` (as Hugging Face's ``Trainer``
    does), so two fits of one model with one seed end equal: dropout draws from torch's global generator.
    ``seed_rng=False`` leaves them as they are, for callers that seeded the whole run at its start (``transferkit.fit``).
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        config: FinetuneConfig | None = None,
        *,
        param_groups: list[dict] | None = None,
        seed: int = 0,
        checkpoint_dir: str | os.PathLike | None = None,
        device: str = "auto",
        evaluate_initial: bool = True,
        keep_initial: bool = False,
        progress: bool = True,
        accelerator: Any = None,
        resume_hint: str | None = None,
        seed_rng: bool = True,
    ):
        self.model = model
        self.loss_fn = loss_fn
        self.config = config or FinetuneConfig()
        self.param_groups = param_groups
        self.seed = seed
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.device = device
        self.evaluate_initial = evaluate_initial or keep_initial
        self.keep_initial = keep_initial
        self.progress = progress
        self.accelerator = accelerator
        self.resume_hint = resume_hint
        self.seed_rng = seed_rng

    # ---- helpers ------------------------------------------------------------------------
    def _best_path(self) -> Path | None:
        return self.checkpoint_dir / "best" / "model.safetensors" if self.checkpoint_dir else None

    def _save_best(self, model: nn.Module) -> None:
        from ..safetensors_files import save_model_file

        path = self._best_path()
        if path is None or not self.accelerator_.is_main_process:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        save_model_file(model, path)

    @torch.no_grad()
    def _gather_outputs(self, model: nn.Module, loader) -> tuple[torch.Tensor, torch.Tensor]:
        acc = self.accelerator_
        model.eval()
        outs, targets = [], []
        for inputs, y in loader:
            inputs = _to_device(inputs, acc.device, self.channels_last_)
            with acc.autocast():
                logits = _call(model, inputs)
            logits, y = acc.gather_for_metrics((logits.float().contiguous(), y.to(acc.device)))
            outs.append(logits.cpu())
            targets.append(y.cpu())
        return torch.cat(outs), torch.cat(targets)

    def _validate(self, model: nn.Module, loader) -> tuple[float, float]:
        logits, y = self._gather_outputs(model, loader)
        loss = float(self.loss_fn(logits, y).item())
        acc = float((logits.argmax(1) == y).float().mean().item()) if logits.ndim == 2 else float("nan")
        return loss, acc

    def _epoch_setters(self, loader) -> list[Any]:
        return [o for o in (getattr(loader, "sampler", None), getattr(loader, "dataset", None)) if hasattr(o, "set_epoch")]

    # ---- main loop ------------------------------------------------------------------------
    def fit(self, train_loader, val_loader, *, resume: bool = False) -> "Trainer":
        cfg = self.config
        if self.seed_rng:  # a resumed run then restores the generators from its checkpoint
            from .seed import seed_everything

            seed_everything(self.seed)
        acc = self.accelerator or make_accelerator(self.device, cfg.mixed_precision)
        self.accelerator_ = acc
        setters = self._epoch_setters(train_loader)
        self.channels_last_ = acc.device.type == "cuda"
        model = self.model
        if self.channels_last_:
            model = model.to(memory_format=torch.channels_last)
        groups = self.param_groups or [{"params": [p for p in model.parameters() if p.requires_grad], "lr": cfg.lr}]
        if not any(p.requires_grad for g in groups for p in g["params"]):
            raise ValueError("no trainable parameters: unfreeze part of the model or pass param_groups.")
        optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        model, optimizer, train_dl, val_dl = acc.prepare(model, optimizer, train_loader, val_loader)
        steps_per_epoch = len(train_dl)
        if steps_per_epoch == 0:
            raise ValueError("the training loader yields no batches (is the training set empty?).")
        total = cfg.epochs * steps_per_epoch
        scheduler = warmup_decay(optimizer, total, round(cfg.warmup_fraction * total), shape=cfg.schedule)
        raw = acc.unwrap_model(model)

        state: dict[str, Any] = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "loss_sum": 0.0, "loss_count": 0,
                                 "best_val_loss": math.inf, "best_epoch": None, "stale": 0, "history": [], "initial": None,
                                 "stopped_early": False}
        ckpt = latest_checkpoint(self.checkpoint_dir) if (resume and self.checkpoint_dir) else None
        mid_epoch_rng = None
        started, seconds_before, epoch_seconds_before = time.perf_counter(), 0.0, 0.0
        self.resumed_from_ = None
        if resume and self.checkpoint_dir and ckpt is None:
            acc.print(f"no checkpoint in {self.checkpoint_dir} (the run stopped before its first, or they were deleted): "
                      "fine-tuning starts from its beginning")
        if ckpt is not None:
            state = load_checkpoint(ckpt, model=raw, optimizer=optimizer, scheduler=scheduler)
            mid_epoch_rng = torch.get_rng_state() if state["step_in_epoch"] else None
            if not acc.is_main_process:  # the checkpoint's loss sums are every process's: counted once, on the main one
                state["loss_sum"], state["loss_count"] = 0.0, 0
            seconds_before = float(state.get("elapsed_s", 0.0))  # checkpoints written before this was recorded: 0
            # the interrupted epoch's seconds before the checkpoint, so its history row counts the whole epoch
            epoch_seconds_before = float(state.get("epoch_elapsed_s", 0.0)) if state["step_in_epoch"] else 0.0
            self.resumed_from_ = {"checkpoint": ckpt.name, "epoch": state["epoch"], "step_in_epoch": state["step_in_epoch"],
                                  "seconds_before": seconds_before}
            acc.print(f"resuming from {ckpt} (epoch {state['epoch']}, step {state['step_in_epoch']})")
            before = state.get("num_processes")
            if before is not None and before != acc.num_processes:
                self.resumed_from_["num_processes_before"] = before
                acc.print(f"note: this run's checkpoints were written by {before} process(es) and it resumes on {acc.num_processes}: "
                          "it continues, but the batches are split differently, so it will not end exactly as an uninterrupted "
                          f"run would. Launch it on {before} process(es) to continue it exactly.")
        elif self.evaluate_initial:
            vl, va = self._validate(model, val_dl)
            state["initial"] = {"epoch": 0, "val_loss": vl, "val_accuracy": va}
            if self.keep_initial:
                state["best_val_loss"], state["best_epoch"] = vl, 0
                self._save_best(raw)
        best_state = None
        if state["best_epoch"] is not None and (ckpt is None or not self.checkpoint_dir):
            best_state = copy.deepcopy(raw.state_dict()) if state["best_epoch"] == 0 else None

        epoch_start_rng, t0 = None, None
        try:
            done = state["stopped_early"] or state["epoch"] >= cfg.epochs
            epoch = state["epoch"]
            while not done:
                epoch = state["epoch"] + 1
                skip = state["step_in_epoch"]
                epoch_start_rng = torch.get_rng_state() if not skip else None  # before the loader's iterator draws its seed
                dl = acc.skip_first_batches(train_dl, skip) if skip else train_dl
                if hasattr(dl, "set_epoch"):  # Accelerate's loaders count passes themselves; pin them to our epoch
                    dl.set_epoch(epoch)
                for s in setters:
                    s.set_epoch(epoch)
                set_train_mode(model, freeze_bn=cfg.freeze_bn)
                live_bn = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training
                           and m.track_running_stats and m.running_mean is not None]
                t0, epoch_seconds_before = time.perf_counter() - epoch_seconds_before, 0.0
                with track(f"epoch {epoch}/{cfg.epochs}", steps_per_epoch, unit="step", enabled=self.progress and acc.is_local_main_process) as advance:
                    advance(skip)
                    for inputs, y in dl:
                        if mid_epoch_rng is not None:  # creating the iterator drew from the RNG; the original run did so before step 1
                            torch.set_rng_state(mid_epoch_rng)
                            mid_epoch_rng = None
                        rng = torch.get_rng_state()
                        # a forward pass updates the running statistics of BatchNorm layers in train mode: an interrupt
                        # inside the step must leave them as they were, or the resumed run replays the step on top of it
                        bn_before = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone()) for m in live_bn]
                        try:
                            inputs = _to_device(inputs, acc.device, self.channels_last_)
                            with acc.autocast():
                                loss = self.loss_fn(_call(model, inputs), y)
                            optimizer.zero_grad(set_to_none=True)
                            acc.backward(loss)
                            finite = True
                            if cfg.grad_clip:
                                norm = acc.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                                # clipping an inf norm multiplies every gradient by 0: a silent zero step. fp16's GradScaler
                                # skips such steps itself (and lowers its scale), so only the other precisions are checked
                                finite = norm is None or acc.scaler is not None or bool(torch.isfinite(torch.as_tensor(norm)))
                        except KeyboardInterrupt:
                            torch.set_rng_state(rng)  # the step did not happen: replay it on resume
                            with torch.no_grad():
                                for m, (mean, var, count) in zip(live_bn, bn_before):
                                    m.running_mean.copy_(mean)
                                    m.running_var.copy_(var)
                                    m.num_batches_tracked.copy_(count)
                            raise
                        if finite:
                            optimizer.step()
                            scheduler.step()
                        else:  # the schedule moves on as it would have (torch warns when a first step is skipped)
                            state["skipped_in_epoch"] = state.get("skipped_in_epoch", 0) + 1
                            with warnings.catch_warnings():
                                warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)` before")
                                scheduler.step()
                        epoch_start_rng = None
                        n = int(y.shape[0])
                        state["loss_sum"] += float(loss.item()) * n
                        state["loss_count"] += n
                        state["step_in_epoch"] += 1
                        state["global_step"] += 1
                        advance(1, info=f"loss {loss.item():.4f}")
                if mid_epoch_rng is not None:  # every batch was skipped (interrupted in validation): undo the iterator's draw
                    torch.set_rng_state(mid_epoch_rng)
                    mid_epoch_rng = None
                epoch_start_rng = None
                vl, va = self._validate(model, val_dl)
                loss_sum, loss_count = self._global_loss(state)
                skipped = int(state.get("skipped_in_epoch", 0))
                record = FinetuneEpoch(epoch, loss_sum / max(1, loss_count), vl, va,
                                       float(scheduler.get_last_lr()[0]), time.perf_counter() - t0, skipped)
                state["history"].append(asdict(record))
                acc.print(f"epoch {epoch}: train loss {record.train_loss:.4f}  val loss {vl:.4f}  val acc {va:.3f}  ({record.seconds:.0f} s)")
                if skipped:
                    check_skipped_steps(epoch, skipped, steps_per_epoch, acc.print)
                if vl < state["best_val_loss"] - 1e-6:
                    state["best_val_loss"], state["best_epoch"], state["stale"] = vl, epoch, 0
                    self._save_best(raw)
                    best_state = copy.deepcopy(raw.state_dict())
                else:
                    state["stale"] += 1
                state.update(epoch=epoch, step_in_epoch=0, loss_sum=0.0, loss_count=0, epoch_elapsed_s=0.0, skipped_in_epoch=0)
                if state["stale"] >= cfg.patience:
                    state["stopped_early"] = True
                done = state["stopped_early"] or epoch >= cfg.epochs
                state["elapsed_s"] = seconds_before + time.perf_counter() - started
                self._checkpoint(raw, optimizer, scheduler, state)
        except KeyboardInterrupt:
            # save the RNG as a resumed run will need it: that of the epoch's start if no step ran yet
            # (the new iterator's seed draw is replayed on resume), else that before the step not taken
            for saved in (mid_epoch_rng, epoch_start_rng if not state["step_in_epoch"] else None):
                if saved is not None:
                    torch.set_rng_state(saved)
                    break
            state["elapsed_s"] = seconds_before + time.perf_counter() - started
            state["epoch_elapsed_s"] = ((time.perf_counter() - t0 if t0 is not None else epoch_seconds_before)
                                        if state["step_in_epoch"] else 0.0)
            state["loss_sum"], state["loss_count"] = self._global_loss(state)  # saved whole: a resume adds to it on the main process
            where = self._checkpoint(raw, optimizer, scheduler, state)
            hint = self.resume_hint or "fit(..., resume=True)"
            raise TrainingInterrupted(
                f"interrupted in epoch {state['epoch'] + 1} after {state['step_in_epoch']} step(s); checkpoint saved"
                + (f" to {where}" if where else " (no checkpoint_dir: nothing saved)") + f". Resume with: {hint}"
            ) from None

        # restore the best weights
        if best_state is None and state["best_epoch"] is not None and self._best_path() and self._best_path().is_file():
            from safetensors.torch import load_file

            best_state = load_file(str(self._best_path()))
        if best_state is not None:
            raw.load_state_dict(best_state, strict=True)
        acc.wait_for_everyone()
        raw.eval()
        self.model_ = raw
        self.prepared_model_ = model
        self.history_ = [FinetuneEpoch(**h) for h in state["history"]]
        self.best_epoch_ = state["best_epoch"]
        self.best_val_loss_ = state["best_val_loss"]
        self.initial_ = state["initial"]
        self.stopped_early_ = state["stopped_early"]
        return self

    @property
    def seconds_before_resume(self) -> float:
        """Training seconds the checkpoint a resumed run started from had recorded (0 for a run that did not resume)."""
        return (getattr(self, "resumed_from_", None) or {}).get("seconds_before", 0.0)

    def _global_loss(self, state: dict[str, Any]) -> tuple[float, int]:
        """The epoch's training loss sum and example count over every process (each holds its share of the batches)."""
        acc = self.accelerator_
        if acc.num_processes == 1:
            return state["loss_sum"], state["loss_count"]
        both = acc.reduce(torch.tensor([state["loss_sum"], state["loss_count"]], dtype=torch.float64, device=acc.device), reduction="sum")
        return float(both[0]), int(both[1])

    def _checkpoint(self, raw: nn.Module, optimizer, scheduler, state: dict[str, Any]) -> Path | None:
        acc = self.accelerator_
        path = None
        if self.checkpoint_dir is not None and acc.is_main_process:
            name = f"epoch-{state['epoch']:04d}" + (f"-step-{state['step_in_epoch']:05d}" if state["step_in_epoch"] else "")
            state["num_processes"] = acc.num_processes  # a resume on another count continues, but not exactly
            path = save_checkpoint(self.checkpoint_dir, name, model=raw, optimizer=optimizer, scheduler=scheduler, state=state)
        acc.wait_for_everyone()
        return path

    def predict_logits(self, loader) -> np.ndarray:
        """Outputs of the fitted model on a loader (gathered across processes, in order)."""
        if not hasattr(self, "model_"):
            raise NotFittedError("this Trainer is not fitted yet: call fit(train_loader, val_loader) first.")
        logits, _ = self._gather_outputs(self.prepared_model_, self.accelerator_.prepare_data_loader(loader))
        return logits.numpy()

