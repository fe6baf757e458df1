"""Training a head on cached features: fast, because the frozen base never runs again."""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import HeadConfig, HeadTrainConfig
from ..crossval import smallest_class, stratified_folds
from ..errors import DataError, NotFittedError
from ..evaluation.metrics import check_labels_1d
from ..heads import DenseHead
from ..heads.dense import feature_scale
from ..progress import track
from .seed import seed_everything


def class_weights(y: np.ndarray, num_classes: int) -> torch.Tensor:
    """Inverse-frequency weights ``n / (k * n_c)`` (scikit-learn's 'balanced')."""
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    counts[counts == 0] = 1.0
    return torch.tensor(len(y) / (num_classes * counts), dtype=torch.float32)


Augmented = tuple[np.ndarray, np.ndarray]  # (rows, owner): extra training rows and the example index each one copies


def views_as_augmented(train_views: np.ndarray | None, val_views: np.ndarray | None = None, *, num_train: int) -> Augmented | None:
    """Features of augmented copies, ``(views, n_train, d)`` and optionally ``(views, n_val, d)``, as ``HeadTrainer.fit``'s
    ``augmented``: the rows, and for each the index of the example it copies in train-then-val order."""
    parts, owners = [], []
    for views, offset in ((train_views, 0), (val_views, num_train)):
        if views is None or len(views) == 0:
            continue
        views = np.asarray(views, np.float32)
        if views.ndim != 3:
            raise ValueError(f"views must be (views, examples, features); got shape {views.shape}.")
        parts.append(views.reshape(-1, views.shape[-1]))
        owners.append(np.tile(np.arange(views.shape[1]) + offset, views.shape[0]))
    return (np.concatenate(parts), np.concatenate(owners)) if parts else None


def with_augmented(X: np.ndarray, y: np.ndarray, index: np.ndarray, augmented: Augmented | None) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``index`` of ``X, y`` plus the augmented copies of exactly those examples (labelled as their originals)."""
    if augmented is None:
        return X[index], y[index]
    rows, owner = augmented
    keep = np.isin(owner, index)
    return np.concatenate([X[index], rows[keep]]), np.concatenate([y[index], y[owner[keep]]])


def subset_augmented(augmented: Augmented | None, index: np.ndarray) -> Augmented | None:
    """The copies of examples ``index``, their owners renumbered to positions in ``index`` (for a fold's own trainer)."""
    if augmented is None:
        return None
    rows, owner = augmented
    position = np.full(max(int(owner.max(initial=-1)), int(np.max(index, initial=-1))) + 1, -1, dtype=np.int64)
    position[index] = np.arange(len(index))
    keep = position[owner] >= 0
    return rows[keep], position[owner[keep]]


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float


def check_class_indices(y_train, y_val, num_classes: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    """Labels as class indices 0..K-1 (validated at the boundary): whole numbers, every train class present when K is
    inferred, none at or above ``num_classes``, and at least two classes. Returns int64 arrays and K."""
    out = []
    for name, y in (("y_train", y_train), ("y_val", y_val)):
        arr = check_labels_1d(y, name)
        if arr.dtype.kind not in "iub" and not (arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
            raise ValueError(f"{name} must hold class indices 0..K-1 (integers); got dtype {arr.dtype}. "
                             "Map labels to indices first: classes, y = np.unique(labels, return_inverse=True).")
        arr = arr.astype(np.int64)
        if arr.size and arr.min() < 0:
            raise ValueError(f"{name} holds a negative class index ({arr.min()}); class indices run 0..K-1.")
        out.append(arr)
    y_train, y_val = out
    if not len(y_train):
        raise ValueError("y_train is empty: the head needs training examples.")
    seen = int(max(y_train.max(), y_val.max() if len(y_val) else 0)) + 1
    if num_classes is None:
        missing = sorted(set(range(seen)) - set(np.unique(y_train).tolist()))
        if missing:
            raise ValueError(f"class index(es) {missing} never occur in y_train, so the head would learn classes it has no example of. "
                             "Pass labels as 0..K-1 (np.unique(labels, return_inverse=True)), or num_classes=K when a class is "
                             "absent on purpose.")
        num_classes = seen
    elif seen > num_classes:
        raise ValueError(f"num_classes={num_classes}, but the labels go up to {seen - 1}: class indices must be below num_classes.")
    if num_classes < 2:
        raise ValueError(f"a classifier needs at least two classes; got num_classes={num_classes}.")
    return y_train, y_val, num_classes


def _check_feature_rows(X: np.ndarray, y: np.ndarray, split: str) -> np.ndarray:
    """2-D, finite, one row per label: checked before anything is fitted, so no row is dropped without a word."""
    X = np.asarray(X, np.float32)
    if X.ndim != 2:
        raise DataError(f"X_{split} must be a 2-D array (rows x features); got shape {X.shape}.")
    if len(X) != len(y):
        raise DataError(f"X_{split} has {len(X)} rows but y_{split} has {len(y)} labels: pass one label per feature row.")
    if not np.isfinite(X).all():
        bad = int((~np.isfinite(X)).any(1).sum())
        raise DataError(f"X_{split} has {bad} row(s) with NaN or infinite values; re-extract the features (a broken backbone or "
                        "weights file?) or drop those rows with their labels.")
    return X


def _check_augmented(augmented: Any, num_train: int, num_val: int, num_features: int) -> Augmented:
    """``HeadTrainer.fit``'s ``augmented`` as (float32 rows, int64 owners), or an error saying to build it with
    :func:`views_as_augmented` (raw views, ``(views, examples, features)``, are not that pair)."""
    how = (f"pass augmented=views_as_augmented(train_views, val_views, num_train={num_train}) (views shaped (views, examples, "
           "features), e.g. from extract_train_views), not the views themselves")
    if isinstance(augmented, np.ndarray) or not isinstance(augmented, (tuple, list)) or len(augmented) != 2:
        got = f"an array of shape {augmented.shape}" if isinstance(augmented, np.ndarray) else type(augmented).__name__
        raise DataError(f"augmented must be the (rows, owner) pair of augmented copies; got {got}: {how}.")
    try:
        rows, owner = np.asarray(augmented[0], np.float32), np.asarray(augmented[1])
    except (TypeError, ValueError):
        rows = owner = None
    if rows is None or owner is None or rows.ndim != 2 or owner.ndim != 1 or owner.dtype.kind not in "iuf":
        shapes = "" if rows is None or owner is None else f" (got shapes {rows.shape} and {owner.shape})"
        raise DataError(f"augmented must be (rows, owner): rows of shape (copies, features) and one owner index per row{shapes}: "
                        f"{how}.")
    if rows.shape[1] != num_features:
        raise DataError(f"augmented rows have {rows.shape[1]} features each and X_train {num_features}: both must come from the "
                        "same backbone and settings.")
    owner = owner.astype(np.int64)
    if len(rows) != len(owner) or (len(owner) and not (0 <= owner.min() and owner.max() < num_train + num_val)):
        raise DataError("augmented must be (rows, owner) with one owner per row, each an index into train then val: "
                        f"{how}.")
    return rows, owner


@dataclass
class HeadTrainer:
    """Fits a :class:`DenseHead` on features with early stopping on validation loss.

    ``fit`` returns ``self``; the fitted head is ``head_``, the per-epoch history
    ``history_`` and the epoch whose state was kept ``best_epoch_``. With
    ``HeadConfig(hidden_dim="auto")`` the width is first chosen by cross-validation on train + val
    (:func:`choose_head`; ``groups``: one subject id per train then val example keeps subjects
    together); the decision and its evidence are ``head_choice_`` (None for a fixed width), the head
    actually trained ``head_config_``. A single layer solved by lbfgs with ``linear_refit`` (the default) takes its C
    from K-fold CV on train + val and is refitted on all of them: then ``refit_`` holds the evidence and
    ``val_proba_`` the validation rows' out-of-fold probabilities (use those, not ``predict_proba(X_val)``, which is
    in-sample); both are None otherwise.

    ``augmented`` (:func:`views_as_augmented`): features of augmented copies of training examples, used as extra
    training rows wherever the example they copy trains (never where it is held out: validation, a CV fold's test part).
    With ``choose_copies=True`` the same cross-validation that chooses the width also decides whether the head uses them
    (``head_choice_.copies``); ``augmented_rows_`` counts the copy rows the final head trained on (0 when not chosen).

    Like Hugging Face's ``Trainer``, ``fit`` seeds the global ``random``, numpy and torch generators with
    ``train_config.seed`` (the head's initial weights and dropout draw from torch's); save their states around the
    call if your own code draws from them.
    """

    head_config: HeadConfig = field(default_factory=HeadConfig)
    train_config: HeadTrainConfig = field(default_factory=HeadTrainConfig)
    progress: bool = True

    def fit(self, X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray, y_val: np.ndarray, num_classes: int | None = None,
            groups: np.ndarray | list[str] | None = None, augmented: Augmented | None = None,
            choose_copies: bool = False) -> "HeadTrainer":
        # A head's matrices are tiny: one intra-op thread is faster than a team, and far faster
        # when other processes share the cores (OpenMP spin-waits: 20x measured on 2 busy cores).
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            self.head_choice_, self.head_config_ = None, self.head_config
            self.val_proba_, self.refit_ = None, None
            y_train, y_val, num_classes = check_class_indices(y_train, y_val, num_classes)
            X_train, X_val = _check_feature_rows(X_train, y_train, "train"), _check_feature_rows(X_val, y_val, "val")
            if X_train.shape[1] != X_val.shape[1]:
                raise DataError(f"X_train has {X_train.shape[1]} features per row and X_val {X_val.shape[1]}: both must come from "
                                "the same backbone and settings.")
            if groups is not None and len(groups) != len(y_train) + len(y_val):
                raise ValueError(f"groups must hold one subject id per train then val example ({len(y_train) + len(y_val)}); got {len(groups)}.")
            if augmented is not None:
                augmented = _check_augmented(augmented, len(y_train), len(y_val), X_train.shape[1])
            choose_copies = choose_copies and augmented is not None and len(augmented[1]) > 0
            if self.head_config.hidden_dim == "auto" or choose_copies:
                self._choose(X_train, y_train, X_val, y_val, num_classes, groups, augmented, choose_copies)
                if self.head_choice_.copies is False:
                    augmented = None
            self.augmented_rows_ = 0 if augmented is None else len(augmented[1])
            return self._fit(X_train, y_train, X_val, y_val, num_classes, groups, augmented)
        finally:
            torch.set_num_threads(previous)

    def _choose(self, X_train, y_train, X_val, y_val, num_classes, groups, augmented=None, choose_copies=False) -> None:
        from .head_selection import choose_head

        X = np.concatenate([np.asarray(X_train, np.float32), np.asarray(X_val, np.float32)])
        y = np.concatenate([np.asarray(y_train, np.int64), np.asarray(y_val, np.int64)])
        num_classes = num_classes or int(y.max() + 1)
        self.head_choice_ = choose_head(X, y, num_classes=num_classes, head=self.head_config, train=self.train_config,
                                        groups=groups, augmented=augmented, compare_copies=choose_copies, progress=self.progress)
        self.head_config_ = self.head_config.model_copy(update={"hidden_dim": self.head_choice_.hidden_dim or None})

    def _fit(self, X_train, y_train, X_val, y_val, num_classes, groups=None, augmented=None) -> "HeadTrainer":
        cfg = self.train_config
        X_train, X_val = np.asarray(X_train, np.float32), np.asarray(X_val, np.float32)
        y_train, y_val = np.asarray(y_train, np.int64), np.asarray(y_val, np.int64)
        if X_train.ndim != 2 or len(X_train) != len(y_train):
            raise ValueError(f"X_train must be (n, d) with n = len(y_train); got {X_train.shape} and {len(y_train)} labels.")
        if len(X_val) == 0:
            raise ValueError("the validation split is empty: early stopping needs validation data.")
        num_classes = num_classes or int(max(y_train.max(), y_val.max()) + 1)
        seed_everything(cfg.seed)
        self.solver_, self.C_ = "adamw", None
        if not self.head_config_.hidden_dim and cfg.linear_solver == "lbfgs" and len(np.unique(y_train)) > 1:
            if cfg.linear_refit and self._refit_logistic(X_train, y_train, X_val, y_val, num_classes, groups, augmented):
                return self
            X_train, y_train = with_augmented(X_train, y_train, np.arange(len(y_train)), augmented)
            return self._fit_logistic(X_train, y_train, X_val, y_val, num_classes)
        X_train, y_train = with_augmented(X_train, y_train, np.arange(len(y_train)), augmented)  # copies of val rows stay out
        xt, yt = torch.from_numpy(X_train), torch.from_numpy(y_train)
        xv, yv = torch.from_numpy(X_val), torch.from_numpy(y_val)
        head = DenseHead(X_train.shape[1], num_classes, hidden_dim=self.head_config_.hidden_dim, dropout=self.head_config_.dropout)
        head.set_feature_stats(xt)
        weight = class_weights(y_train, num_classes) if cfg.class_weighted else None
        loss_fn = nn.CrossEntropyLoss(weight=weight)
        optimizer = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        generator = torch.Generator().manual_seed(cfg.seed)

        best_loss, best_state, best_epoch, stale = math.inf, None, 0, 0
        self.history_: list[EpochRecord] = []
        with track("training head", cfg.epochs, unit="epoch", enabled=self.progress) as advance:
            for epoch in range(1, cfg.epochs + 1):
                head.train()
                order = torch.randperm(len(xt), generator=generator)
                total = 0.0
                for start in range(0, len(order), cfg.batch_size):
                    idx = order[start : start + cfg.batch_size]
                    optimizer.zero_grad(set_to_none=True)
                    loss = loss_fn(head(xt[idx]), yt[idx])
                    loss.backward()
                    optimizer.step()
                    total += loss.item() * len(idx)
                head.eval()
                with torch.no_grad():
                    logits = head(xv)
                    val_loss = loss_fn(logits, yv).item()
                    val_acc = (logits.argmax(1) == yv).float().mean().item()
                self.history_.append(EpochRecord(epoch, total / len(xt), val_loss, val_acc))
                advance(info=f"val loss {val_loss:.4f} acc {val_acc:.3f}")
                if val_loss < best_loss - 1e-6:
                    best_loss, best_state, best_epoch, stale = val_loss, copy.deepcopy(head.state_dict()), epoch, 0
                else:
                    stale += 1
                    if stale >= cfg.patience:
                        break
        head.load_state_dict(best_state)
        head.eval()
        self.head_, self.best_epoch_, self.best_val_loss_ = head, best_epoch, best_loss
        return self

    def _fit_logistic(self, X_train, y_train, X_val, y_val, num_classes) -> "HeadTrainer":
        """A single Dense layer fitted as scikit-learn's L2 logistic regression (L-BFGS, to convergence) on standardised
        features, the standard linear probe (Kornblith et al. 2019; the ranking's linear-probe score is the same model).
        The L2 strength is the ``linear_C`` value with the lowest validation loss (the loss early stopping uses for
        the other heads); the result is written into a :class:`DenseHead`, so saving, export and fine-tuning are unchanged."""
        cfg = self.train_config
        weight = class_weights(y_train, num_classes) if cfg.class_weighted else None
        loss_fn = nn.CrossEntropyLoss(weight=weight)
        xv, yv = torch.from_numpy(X_val), torch.from_numpy(y_val)
        best = None
        self.history_ = []
        with track("training head (logistic regression)", len(cfg.linear_C), unit="C", enabled=self.progress) as advance:
            for C in cfg.linear_C:
                head = self._logistic_head(X_train, y_train, C, num_classes)
                with torch.no_grad():
                    logits = head(xv)
                    val_loss = loss_fn(logits, yv).item()
                    val_acc = (logits.argmax(1) == yv).float().mean().item()
                advance(info=f"C {C:g}: val loss {val_loss:.4f} acc {val_acc:.3f}")
                if best is None or val_loss < best[0] - 1e-9:
                    best = (val_loss, C, head)
        self.head_, self.best_epoch_, self.best_val_loss_ = best[2], None, best[0]
        self.solver_, self.C_ = "lbfgs", best[1]
        return self

    def _refit_logistic(self, X_train, y_train, X_val, y_val, num_classes, groups, augmented=None) -> bool:
        """C by K-fold CV log loss on train + val, then one logistic regression on all of them (scikit-learn's
        LogisticRegressionCV with refit): with a few hundred images, the 15 % validation carve is data the head can use, and
        one small split is a noisy judge of C. ``val_proba_`` holds the validation rows' out-of-fold probabilities at the
        chosen C (honest held-out numbers, for metrics, calibration and operating points). False (nothing fitted) when a
        class has too few examples, or subjects with ``groups``, for two folds: the caller then uses the validation carve."""
        X, y = np.concatenate([X_train, X_val]), np.concatenate([y_train, y_val])
        g = None if groups is None else np.asarray(groups)
        k = min(self.head_config_.cv_folds, smallest_class(y, g))
        if k < 2:
            return False
        folds = stratified_folds(y, k, self.train_config.seed, g)
        if any(len(np.unique(y[tr])) < 2 for tr, _ in folds):
            return False
        best, losses = None, {}
        with track("training head (logistic regression, C by CV)", len(self.train_config.linear_C) * len(folds), unit="fit",
                   enabled=self.progress) as advance:
            for C in self.train_config.linear_C:
                oof, fold_losses = np.zeros((len(y), num_classes)), []
                for tr, te in folds:
                    with torch.no_grad():
                        head = self._logistic_head(*with_augmented(X, y, tr, augmented), C, num_classes)
                        oof[te] = head(torch.from_numpy(X[te])).softmax(1).double().numpy()
                    fold_losses.append(float(-np.log(np.clip(oof[te][np.arange(len(te)), y[te]], 1e-15, 1)).mean()))  # log loss
                    advance()
                losses[C] = float(np.mean(fold_losses))
                if best is None or losses[C] < best[0] - 1e-9:
                    best = (losses[C], C, oof)
        loss, C, oof = best
        self.head_ = self._logistic_head(*with_augmented(X, y, np.arange(len(y)), augmented), C, num_classes)
        self.history_, self.best_epoch_, self.best_val_loss_ = [], None, loss
        self.solver_, self.C_ = "lbfgs", C
        self.val_proba_ = oof[len(X_train):].astype(np.float32)
        self.refit_ = {"folds": len(folds), "grouped": g is not None, "C": C, "cv_log_loss": {f"{c:g}": v for c, v in losses.items()},
                       "fitted_on": int(len(y)), **({"augmented_rows": int(len(augmented[1]))} if augmented is not None else {})}
        return True

    def _logistic_head(self, X: np.ndarray, y: np.ndarray, C: float, num_classes: int) -> DenseHead:
        """One L2 logistic regression (lbfgs) on ``X`` standardised by its own mean and spread, as a :class:`DenseHead`."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        cfg = self.train_config
        mean = X.astype(np.float64).mean(0)
        scale = feature_scale(torch.from_numpy(X.astype(np.float64).std(0)), torch.from_numpy(mean), len(X)).numpy()  # constant: centred
        lr = LogisticRegression(C=C, class_weight="balanced" if cfg.class_weighted else None, max_iter=cfg.linear_max_iter)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            lr.fit((X - mean) / scale, y)
        return self._dense_from_logistic(lr, mean, scale, X.shape[1], num_classes)

    def _dense_from_logistic(self, lr, mean: np.ndarray, scale: np.ndarray, in_features: int, num_classes: int) -> DenseHead:
        head = DenseHead(in_features, num_classes, hidden_dim=None, dropout=self.head_config_.dropout)
        w = np.zeros((num_classes, in_features))
        b = np.full(num_classes, -30.0)  # a class absent from training is never predicted
        coef, intercept = lr.coef_, lr.intercept_
        if coef.shape[0] == 1:  # binary: P(class 1) = sigmoid(w.z + b) = softmax([0, w.z + b])[1]
            coef = np.vstack([np.zeros_like(coef), coef])
            intercept = np.array([0.0, intercept[0]])
        for row, cls in enumerate(lr.classes_):
            w[cls], b[cls] = coef[row], intercept[row]
        with torch.no_grad():
            head.feature_mean.copy_(torch.from_numpy(mean).float())
            head.feature_std.copy_(torch.from_numpy(scale).float())
            head.net[-1].weight.copy_(torch.from_numpy(w).float())
            head.net[-1].bias.copy_(torch.from_numpy(b).float())
        return head.eval()

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if not hasattr(self, "head_"):
            raise NotFittedError("this HeadTrainer is not fitted yet: call fit(X_train, y_train, X_val, y_val) first.")
        X = np.asarray(X, np.float32)
        if X.ndim != 2 or X.shape[1] != self.head_.in_features:
            raise DataError(f"X must be (n, {self.head_.in_features}) features, as the head was fitted on; got shape {X.shape} "
                            "(one row: X.reshape(1, -1)).")
        if not np.isfinite(X).all():
            raise DataError("X contains NaN or infinite values; re-extract the features (a broken backbone or weights file?).")
        with torch.no_grad():
            return self.head_(torch.from_numpy(X)).softmax(1).numpy()
