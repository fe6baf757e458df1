r"""Linear probe vs LP-FT fine-tuning vs auto, per seed, on a real image folder.

One `fit(strategy="auto")` per seed yields all three: the linear probe (stage one), the
fine-tuned model (stage two) and auto's choice (made on validation loss only). Test metrics of
both stages are recorded; auto's test metrics are those of the stage it picked on validation.
Run folders go to bench/artifacts/ft-<data>-<model>-<settings>-s<seed>/ and rows to bench/artifacts/finetune-<data>.jsonl
(relative to the working directory; ``--artifacts DIR`` moves both, ``--log`` the rows).

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/finetune.py ../shared/data/pneumonia --positive PNEUMONIA --seeds 0 1 2
    .venv/bin/python bench/finetune.py --summary bench/artifacts/finetune-pneumonia.jsonl
    OMP_NUM_THREADS=1 .venv/bin/python bench/finetune.py ../shared/data/pneumonia --positive PNEUMONIA --epochs 6 --groups '(person\d+)_|(IM-\d+)-' \
        --log bench/artifacts/finetune-pneumonia-groups.jsonl --seeds 0
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path


def run(args) -> None:
    import transferkit as tk

    name = Path(args.data).resolve().name
    log = Path(args.log) if args.log else args.artifacts / f"finetune-{name}.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        tag = (f"{args.unfreeze.replace(':', '')}-e{args.epochs}-lr{args.lr:g}" + ("-groups" if args.groups else "")
               + ("" if args.hidden_dim == "256" else f"-h{args.hidden_dim}") + ("" if args.stages == 1 else f"-k{args.stages}"))
        out = args.artifacts / f"ft-{name}-{args.model}-{tag}{args.out_suffix}-s{seed}"
        t0 = time.perf_counter()
        r = tk.fit(args.data, model=args.model, positive=args.positive, seed=seed, out=out, strategy="auto", unfreeze=args.unfreeze,
                   finetune_epochs=args.epochs, finetune_lr=args.lr, groups=args.groups, hidden_dim=args.hidden_dim, progress=False,
                   feature_stages=args.stages)
        st = r.metrics["stages"]
        row = {
            "data": name, "model": args.model, "seed": seed, "groups": args.groups, "unfreeze": args.unfreeze, "epochs": args.epochs, "lr": args.lr,
            "auto_chose": r.metrics["training"]["chosen"], "wall_s": time.perf_counter() - t0,
            "seconds_per_epoch": st["finetune"]["training"]["seconds_per_epoch"],
            "ft_epochs_run": st["finetune"]["training"]["epochs_run"], "ft_best_epoch": st["finetune"]["training"]["best_epoch"],
            "hidden_dim": args.hidden_dim, "feature_stages": args.stages, "head": st["linear_probe"]["training"].get("head", 256),
        }
        for stage, key in (("linear_probe", "lp"), ("finetune", "ft")):
            for split in ("val", "test"):
                m = st[stage][split]
                row[f"{key}_{split}_acc"] = m["accuracy"]
                if "roc_auc" in m:
                    row[f"{key}_{split}_auc"] = m["roc_auc"]
        row["auto_test_acc"] = r.test["accuracy"]
        if "roc_auc" in r.test:
            row["auto_test_auc"] = r.test["roc_auc"]
        row["ft_val_loss"] = st["finetune"]["training"]["best_val_loss"]
        row["lp_val_loss"] = st["finetune"]["training"]["initial_val_loss"]
        with open(log, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)


def summary(path: str) -> None:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    keys = [k for k in rows[0] if k.endswith(("_acc", "_auc")) or k in ("seconds_per_epoch", "wall_s")]
    print(f"{path}: {len(rows)} run(s), seeds {[r['seed'] for r in rows]}, auto chose {[r['auto_chose'] for r in rows]}")
    for k in keys:
        vals = [r[k] for r in rows if k in r]
        sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
        print(f"  {k:22s} {statistics.mean(vals):.4f} ± {sd:.4f}   {['%.4f' % v for v in vals]}")
    better = [max(r["lp_test_acc"], r["ft_test_acc"]) for r in rows]
    print(f"  auto >= better of LP/FT (test acc) in {sum(r['auto_test_acc'] >= b for r, b in zip(rows, better))}/{len(rows)} runs")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", nargs="?", help="image folder with train/ and test/ splits (e.g. ../shared/data/pneumonia); "
                                           "not needed with --summary")
    p.add_argument("--model", default="mobilenet_v2", help="backbone (default: %(default)s)")
    p.add_argument("--positive", default=None, help="positive class of a binary task (fit --positive), e.g. PNEUMONIA")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one fit(strategy='auto') per seed (default: 0 1 2)")
    p.add_argument("--epochs", type=int, default=4, help="fine-tuning epochs (fit finetune_epochs; default: %(default)s)")
    p.add_argument("--lr", type=float, default=1e-4, help="fine-tuning learning rate (fit finetune_lr; default: %(default)g)")
    p.add_argument("--unfreeze", default="all", help="blocks to fine-tune: all or last:N (fit unfreeze; default: %(default)s)")
    p.add_argument("--groups", default=None, help="subject pattern for the validation carve (fit --groups)")
    p.add_argument("--hidden-dim", default="auto", help="the head's hidden_dim: auto (library default) or a width (256: the first sessions')")
    p.add_argument("--stages", type=int, default=3, help="fit(feature_stages=K): 3 is the library default since the seventh session; "
                                                        "rows without 'feature_stages' were measured with 1")
    p.add_argument("--log", default=None, help="JSON-lines file the per-run rows are appended to (default: DIR/finetune-<data>.jsonl, DIR from --artifacts)")
    p.add_argument("--out-suffix", default="", help="appended to the run folders' names (keeps an earlier session's runs)")
    p.add_argument("--artifacts", type=Path, default=Path("bench/artifacts"), metavar="DIR",
                   help="folder of the run folders DIR/ft-<data>-<model>-...-s<seed>/ and of the default --log; relative to the "
                        "working directory (default: %(default)s)")
    p.add_argument("--summary", default=None, metavar="FILE", help="print the summary of a finished --log FILE and exit")
    a = p.parse_args()
    if not a.summary and not a.data:
        p.error("give an image folder (DATA) to run, or --summary FILE")
    summary(a.summary) if a.summary else run(a)
