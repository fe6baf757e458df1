"""WiSE-FT on finished fine-tuning runs: mix the weights before (stage one) and after (stage two) fine-tuning.

For each run folder written by `bench/finetune.py` (or `transferkit fit --strategy finetune|auto --out RUN`):

1. rebuild stage one, the probe that fine-tuning started from, with the run's own config (cached features: seconds),
   and check that its validation loss equals the one the run recorded before fine-tuning;
2. load the fine-tuned best weights (`RUN/checkpoints/best/model.safetensors`) and check their validation loss too;
3. for each alpha, score (1 - alpha) * stage one + alpha * fine-tuned (`transferkit.training.interpolate_weights`).

Each row also says what `strategy="auto"` (its default rule) would keep between that mix and the probe, from the same
validation predictions (`auto_keeps`, `auto_difference_ci95`).

`--splits val` (the default) reads the validation split only, so a mixing weight can be chosen without the test split;
`--splits val test` adds the test split once that choice is fixed. Rows go to a JSON-lines log, one per run and alpha.

    OMP_NUM_THREADS=1 .venv/bin/python bench/wise_ft.py bench/artifacts/ft-plants-mobilenet_v2-*-k3-s1[46]-s* --log bench/artifacts/s18/wise-val.jsonl
    .venv/bin/python bench/wise_ft.py --summary bench/artifacts/s18/wise-val.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _stage_one(run: Path):
    import transferkit as tk
    from transferkit.config import FitConfig

    saved = json.loads((run / "config.json").read_text())["fit"]
    cfg = FitConfig.model_validate(saved)
    # the probe exactly as stage one fitted it: not refitted on validation (fine-tuning stops on that split)
    cfg = cfg.model_copy(update={"strategy": "linear-probe", "train": cfg.train.model_copy(update={"linear_refit": False})})
    return tk.fit(config=cfg, progress=False, report=False)


def _scores(model, loader, y, loss_fn, positive_index):
    import numpy as np
    import torch
    from sklearn.metrics import roc_auc_score

    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(x) for x, _ in loader])
    proba = logits.softmax(1).numpy()
    out = {"loss": float(loss_fn(logits, torch.as_tensor(y)).item()), "acc": float((proba.argmax(1) == y).mean()), "proba": proba}
    if proba.shape[1] == 2:
        pos = positive_index if positive_index is not None else 1
        out["auc"] = float(roc_auc_score(y == pos, proba[:, pos]))
        pred = proba[:, pos] >= 0.5
        out["bal_acc"] = float(np.mean([np.mean(pred[y == pos]), np.mean(~pred[y != pos])]))
    return out


def run(args) -> None:
    import copy

    import numpy as np
    from safetensors.torch import load_model
    from torch import nn

    from transferkit.training import class_weights, interpolate_weights
    from transferkit.training.finetune import auto_choice_evidence, eval_loader

    log = Path(args.log)
    log.parent.mkdir(parents=True, exist_ok=True)
    for run_dir in map(Path, args.runs):
        metrics = json.loads((run_dir / "metrics.json").read_text())
        ft_training = metrics["stages"]["finetune"]["training"]
        result = _stage_one(run_dir)
        lp = result.model
        splits = result.splits
        y = {s: np.array([r.label for r in splits.split(s)]) for s in ("train", "val", "test")}
        loss_fn = nn.CrossEntropyLoss(weight=class_weights(y["train"], len(splits.classes)))
        ft = copy.deepcopy(lp)
        load_model(ft, str(run_dir / "checkpoints" / "best" / "model.safetensors"), strict=True)
        loaders = {s: eval_loader(splits.split(s), lp.data_cfg) for s in args.splits}
        start, end = lp.state_dict(), ft.state_dict()
        lp_val = _scores(lp, loaders["val"], y["val"], loss_fn, lp.positive_index)
        check = {"lp_val_loss": lp_val["loss"],
                 "lp_val_loss_recorded": ft_training["initial_val_loss"],
                 "ft_val_loss_recorded": ft_training["best_val_loss"]}
        if abs(check["lp_val_loss"] - check["lp_val_loss_recorded"]) > 1e-4:
            raise SystemExit(f"{run_dir}: the rebuilt stage one does not match the run ({check}); is the feature cache the run's?")
        mixed = copy.deepcopy(ft)
        for alpha in args.alphas:
            mixed.load_state_dict(interpolate_weights(start, end, alpha))
            row = {"run": run_dir.name, "data": Path(result.config.data.root).name, "model": result.config.backbone,
                   "seed": result.config.seed, "alpha": alpha, **check}
            for s in args.splits:
                scores = _scores(mixed, loaders[s], y[s], loss_fn, lp.positive_index)
                if s == "val":  # what strategy="auto" (its default rule) would keep: this mix or the probe
                    ev = auto_choice_evidence(y["val"], lp_val["proba"], scores["proba"], num_classes=len(splits.classes), y_train=y["train"],
                                              config=result.config.finetune, lp_val_loss=lp_val["loss"], ft_val_loss=scores["loss"],
                                              seed=result.config.seed)
                    row["auto_keeps"] = ev["chosen"]
                    row["auto_difference_ci95"] = ev["difference_ci95"]
                for k, v in scores.items():
                    if k != "proba":
                        row[f"{s}_{k}"] = v
            if alpha == 1.0 and abs(row["val_loss"] - check["ft_val_loss_recorded"]) > 1e-4:
                raise SystemExit(f"{run_dir}: the fine-tuned weights do not reproduce the recorded validation loss ({row}).")
            with open(log, "a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)


def _mean_sd(v: list[float]) -> str:
    """Mean ± sample standard deviation, as bench/finetune.py reports seeds."""
    if not v:
        return "-"
    return f"{statistics.mean(v):.3f} ± {statistics.stdev(v) if len(v) > 1 else 0.0:.3f}"


def summary(path: str) -> None:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["data"], r["model"], r["alpha"])].append(r)
    keys = [k for k in ("val_loss", "val_acc", "val_auc", "test_acc", "test_auc", "test_bal_acc") if any(k in r for r in rows)]
    print("| data | model | alpha | runs | " + " | ".join(keys) + " |")
    print("|---|---|---|---|" + "---|" * len(keys))
    for (data, model, alpha), rs in sorted(groups.items()):
        cells = []
        for k in keys:
            v = [r[k] for r in rs if r.get(k) is not None]
            cells.append(_mean_sd(v))
        print(f"| {data} | {model} | {alpha:g} | {len(rs)} | " + " | ".join(cells) + " |")
    # the alpha each run's validation loss picks (ties: the larger alpha), and what it scores
    runs: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        runs[r["run"]].append(r)
    picked: dict[tuple, list[dict]] = defaultdict(list)
    for rs in runs.values():
        best = min(rs, key=lambda r: (r["val_loss"], -r["alpha"]))
        picked[(best["data"], best["model"])].append(best)
    for (data, model), rs in sorted(picked.items()):
        cells = []
        for k in keys:
            v = [r[k] for r in rs if r.get(k) is not None]
            cells.append(_mean_sd(v))
        alphas = " ".join(f"{r['alpha']:g}" for r in sorted(rs, key=lambda r: r["seed"]))
        print(f"| {data} | {model} | val-chosen ({alphas}) | {len(rs)} | " + " | ".join(cells) + " |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="*", help="run folders of finished fine-tuning runs")
    p.add_argument("--splits", nargs="+", default=["val"], choices=["val", "test"])
    p.add_argument("--alphas", nargs="+", type=float, default=list(ALPHAS))
    p.add_argument("--log", default="bench/artifacts/wise-ft.jsonl")
    p.add_argument("--summary", metavar="LOG")
    args = p.parse_args()
    if args.summary:
        summary(args.summary)
    else:
        if "val" not in args.splits:
            args.splits.insert(0, "val")  # the checks against the run read validation
        run(args)


if __name__ == "__main__":
    main()
