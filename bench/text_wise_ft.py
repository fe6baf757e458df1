"""WiSE-FT for text: does a mix of the weights before and after fine-tuning beat the fine-tuned weights on validation?

For each data set and each of the 5 CV folds that `bench/text.py --methods finetune` uses (seed 0, the same validation
carve inside each training fold): fine-tune all-MiniLM-L6-v2 with the text defaults (`text_finetune_defaults()`, LP-FT,
`wise_alpha=1`), keep the weights fine-tuning started from (stage one: the encoder with its fitted probe head, captured
by wrapping `finetune_text_model`, so it is exactly what the library mixes), and score
(1 - alpha) x stage one + alpha x fine-tuned (`transferkit.training.interpolate_weights`) for each alpha.

`--splits val` (the default) reads the validation carve only; `--splits val test` adds the held-out folds. One JSON line
per data set, fold and alpha.

The rule for the text default, fixed (eleventh session) before this script first ran: `text_finetune_defaults()` takes
`wise_alpha=0.5` if, on both amazon_cells and yelp, the mean validation loss over the 5 folds is lower at alpha 0.5 than
at alpha 1; otherwise it keeps 1. The held-out folds' accuracies at every alpha are reported whatever they show and do
not revisit that choice. LoRA keeps 1 either way (not measured here).

LoRA (`--strategy lora`; the rule fixed in the eleventh session before its first run, after the full fine-tuning rows
above were known): `text_finetune_defaults("lora")` takes `wise_alpha=0.5` by the same test, on both amazon_cells and
yelp; otherwise it keeps 1. For LoRA the mix is taken after the adapters are merged, as `fit-text` does.

    OMP_NUM_THREADS=1 .venv/bin/python bench/text_wise_ft.py --datasets amazon_cells yelp --splits val test --log bench/artifacts/s19/text-wise.jsonl
    OMP_NUM_THREADS=1 .venv/bin/python bench/text_wise_ft.py --strategy lora --datasets amazon_cells yelp --splits val test --log bench/artifacts/s19/text-wise-lora.jsonl
    .venv/bin/python bench/text_wise_ft.py --summary bench/artifacts/s19/text-wise.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA_EPILOG, SHARED  # noqa: E402

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _scores(model, records, device) -> dict:
    import numpy as np

    y = np.array([r.label for r in records])
    proba = model.predict_proba([r.text for r in records], device=device, calibrated=False)
    nll = -np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, None))
    return {"loss": float(nll.mean()), "accuracy": float((proba.argmax(1) == y).mean()), "n": int(len(y))}


def run(name: str, splits: list[str], log: Path, folds: int, seed: int, max_length: int, strategy: str = "finetune") -> None:
    import torch

    import transferkit.text.fit as text_fit
    from transferkit.data.text import grouped_stratified_split, read_text_table, stratified_folds
    from transferkit.features import FeatureCache, resolve_device
    from transferkit.text import TextFitConfig, text_finetune_defaults
    from transferkit.training import interpolate_weights

    path = SHARED / "reviews" / f"{name}_labelled.txt"
    if not path.is_file():
        raise SystemExit(f"skip: {path} is absent (the real data sets live in ../shared/data; TRANSFERKIT_SHARED_DATA reads another folder)")
    table = read_text_table(path)
    # alpha 1 here (the plain fine-tuned weights): the mix is scored below, from the same two ends the library would mix
    ft = text_finetune_defaults(strategy).model_copy(update={"wise_alpha": 1.0})
    cfg = TextFitConfig(data=path, strategy=strategy, cv=folds, max_length=max_length, seed=seed, finetune=ft)
    device = resolve_device(cfg.device)
    done = {(r["dataset"], r["fold"]) for r in map(json.loads, log.read_text().splitlines())} if log.is_file() else set()

    real = text_fit.finetune_text_model
    captured = {}

    def capturing(model, *args, **kwargs):  # the state fine-tuning starts from: stage one, as the library would mix it
        captured["start"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return real(model, *args, **kwargs)

    text_fit.finetune_text_model = capturing
    try:
        for k, (train_idx, test_idx) in enumerate(stratified_folds(table.records, folds, seed), start=1):
            if (name, k) in done:
                continue
            rest = [table.records[i] for i in train_idx]
            keep, hold = grouped_stratified_split(rest, cfg.val_fraction, seed, "validation")
            train, val, test = [rest[i] for i in keep], [rest[i] for i in hold], [table.records[i] for i in test_idx]
            t0 = time.perf_counter()
            model, info = text_fit.train_text_classifier(cfg, table.classes, train, val, cache=FeatureCache(), progress=False)
            wall = time.perf_counter() - t0
            end = {k2: v.detach().clone() for k2, v in model.state_dict().items()}
            rows = []
            for alpha in ALPHAS:
                model.load_state_dict(interpolate_weights(captured["start"], end, alpha))
                model.eval()
                with torch.no_grad():
                    row = {"dataset": name, "strategy": strategy, "fold": k, "alpha": alpha, "seed": seed, "best_epoch": info["best_epoch"],
                           "recorded_val_loss": info["best_val_loss"], "initial_val": info["initial_val"], "finetune_wall_s": wall}
                    for split, records in (("val", val), ("test", test)):
                        if split in splits:
                            row[split] = _scores(model, records, device)
                rows.append(row)
            with log.open("a") as fh:
                for row in rows:
                    fh.write(json.dumps(row) + "\n")
            print(f"{name} fold {k}: val loss by alpha " + " ".join(f"{r['alpha']:g}:{r['val']['loss']:.4f}" for r in rows)
                  + f"  (best epoch {info['best_epoch']}, {wall:.0f} s)", flush=True)
    finally:
        text_fit.finetune_text_model = real


def summary(log: Path) -> None:
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    by = defaultdict(list)
    for r in rows:
        by[(r["dataset"], r["alpha"])].append(r)
    print("| data set | alpha | folds | mean val loss | mean val accuracy | mean test accuracy |")
    print("|---|---|---|---|---|---|")
    for (name, alpha), rs in sorted(by.items()):
        test = [r["test"]["accuracy"] for r in rs if "test" in r]
        print(f"| {name} | {alpha:g} | {len(rs)} | {statistics.mean(r['val']['loss'] for r in rs):.4f} | "
              f"{statistics.mean(r['val']['accuracy'] for r in rs):.3f} | "
              + (f"{statistics.mean(test):.3f} ± {statistics.stdev(test) if len(test) > 1 else 0:.3f}" if test else "not read") + " |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=DATA_EPILOG)
    p.add_argument("--datasets", nargs="+", default=["amazon_cells", "yelp"])
    p.add_argument("--splits", nargs="+", default=["val"], choices=["val", "test"])
    p.add_argument("--strategy", default="finetune", choices=["finetune", "lora"])
    p.add_argument("--log", type=Path, default=Path("bench/artifacts/s19/text-wise-val.jsonl"))
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--summary", type=Path, default=None, help="print the table of a finished log and exit")
    args = p.parse_args()
    if args.summary:
        return summary(args.summary)
    args.log.parent.mkdir(parents=True, exist_ok=True)
    for name in args.datasets:
        run(name, args.splits, args.log, args.folds, args.seed, args.max_length, args.strategy)
    summary(args.log)


if __name__ == "__main__":
    main()
