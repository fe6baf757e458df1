"""Text transfer on the UCI review sentences: K-fold CV accuracy and CPU time per fold.

Methods, all on the same stratified folds (duplicate texts kept within one fold), seed 0:
- tfidf:         TF-IDF (1-2 grams) + logistic regression, C chosen by 5-fold CV inside each
                 training fold (scikit-learn LogisticRegressionCV): the baseline;
- linear-probe:  all-MiniLM-L6-v2 frozen, mean-pooled embeddings (cached) + Dense head;
- finetune:      LP-FT: the probe, then all weights (transferkit's shared trainer);
- lora:          LP, then peft LoRA (r=8, query/value) + head.
Validation for early stopping is carved from each training fold; the held-out fold is only
scored. Results are merged into bench/artifacts/text.json (one entry per dataset x method; ``--artifacts DIR``: DIR/text.json
and DIR/text-folds/).

    nice -n 5 .venv/bin/python bench/text.py --datasets amazon_cells yelp imdb --methods tfidf linear-probe
    nice -n 5 .venv/bin/python bench/text.py --datasets amazon_cells --methods finetune lora --epochs 3

``--model`` picks the encoder (default all-MiniLM-L6-v2; rows of another encoder are keyed ``.../model=<name>``).
Fine-tuning folds checkpoint into bench/artifacts/text-folds/<row key>/fold-K/ and a rerun of the same command
resumes there: finished folds are read back, an interrupted one continues from its last epoch.

``--hidden-dim`` is the probe head's width: ``256`` (the text default; rows keyed ``<set>/<method>`` in text.json) or
``auto`` (chosen by CV inside each training fold, the image default; rows keyed ``<set>/<method>/head=auto``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA_EPILOG, SHARED  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"  # --artifacts default
ARTIFACT = ARTIFACTS / "text.json"


def tfidf_cv(table, k: int, seed: int) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline

    from transferkit.data.text import stratified_folds

    texts, y = np.array(table.texts, dtype=object), table.labels
    accs, cpu, wall = [], [], []
    for train_idx, test_idx in stratified_folds(table.records, k, seed):
        c0, w0 = time.process_time(), time.perf_counter()
        clf = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                            LogisticRegressionCV(Cs=10, cv=5, max_iter=2000, random_state=seed))
        clf.fit(texts[train_idx], y[train_idx])
        accs.append(float((clf.predict(texts[test_idx]) == y[test_idx]).mean()))
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return {"accuracy": _ms(accs), "cpu_s": _ms(cpu), "wall_s": _ms(wall)}


def _ms(values) -> dict:
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "values": v.tolist()}


def transfer_cv(path: Path, table, method: str, args, name: str) -> dict:
    from transferkit.config import HeadConfig
    from transferkit.text import TextFitConfig, cross_validate_text, text_finetune_defaults

    ft = (text_finetune_defaults(method).model_copy(update={"epochs": args.epochs, **({"lr": args.lr} if args.lr else {})})
          if method != "linear-probe" else None)
    cfg = TextFitConfig(data=path, backbone=args.model, strategy=method, cv=args.folds, max_length=args.max_length,
                        seed=args.seed, finetune=ft, device=args.device, head=HeadConfig(hidden_dim=args.hidden_dim))
    ckpt = args.artifacts / "text-folds" / _row_key(args, name, method).replace("/", "__")
    folds, summary, _ = cross_validate_text(cfg, progress=False, verbose=True, table=table, max_folds=args.max_folds,
                                            checkpoint_dir=ckpt, resume=ckpt.is_dir())
    out = {k: summary[k] for k in ("accuracy", "macro_f1", "cpu_s", "wall_s")}
    out["roc_auc"] = summary.get("roc_auc")
    out["best_epochs"] = [f["training"].get("best_epoch", f["training"].get("probe_best_epoch")) for f in folds]
    out["trainable_params"] = folds[0]["training"].get("num_trainable_params")
    out["heads"] = [f["training"].get("head", 256) for f in folds]
    out["best_val_loss"] = [f["training"].get("best_val_loss", f["training"].get("probe_val_loss")) for f in folds]  # the stopping criterion
    out["config"] = json.loads(cfg.model_dump_json())
    out["finetune_effective"] = json.loads(cfg.finetune_config().model_dump_json()) if method != "linear-probe" else None
    return out


def _row_key(args, name: str, method: str) -> str:
    return (f"{name}/{method}" + ("" if args.hidden_dim == "256" or method == "tfidf" else f"/head={args.hidden_dim}")
            + (f"/lr={args.lr:g}" if args.lr and method in ("finetune", "lora") else "")
            + ("" if args.model == "all-MiniLM-L6-v2" or method == "tfidf" else f"/model={args.model}"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=DATA_EPILOG)
    p.add_argument("--datasets", nargs="+", default=["amazon_cells", "yelp", "imdb"],
                   help="review sets: <data root>/reviews/<name>_labelled.txt (default: amazon_cells yelp imdb)")
    p.add_argument("--methods", nargs="+", default=["tfidf", "linear-probe"], choices=["tfidf", "linear-probe", "finetune", "lora"],
                   help="methods to cross-validate (default: tfidf linear-probe)")
    p.add_argument("--model", default="all-MiniLM-L6-v2", help="text encoder (rows of another encoder are keyed .../model=<name>)")
    p.add_argument("--folds", type=int, default=5, help="K of the stratified K-fold CV")
    p.add_argument("--max-folds", type=int, default=None, help="Run only the first N folds of the K-fold partition (partial estimate, when CPU is short).")
    p.add_argument("--max-length", type=int, default=64, help="tokens per text")
    p.add_argument("--epochs", type=int, default=3, help="fine-tuning / LoRA epochs")
    p.add_argument("--hidden-dim", default="256", help="probe head width: 256 (the text default) or auto (chosen by CV, as for images)")
    p.add_argument("--lr", type=float, default=None, help="fine-tuning / LoRA learning rate (default: text_finetune_defaults); rows keyed .../lr=<value>")
    p.add_argument("--seed", type=int, default=0, help="seed of the folds and the training")
    p.add_argument("--device", default="auto", help="torch device (auto: CUDA when available, else CPU)")
    p.add_argument("--artifacts", type=Path, default=ARTIFACTS, metavar="DIR",
                   help="folder of the results DIR/text.json (merged, read back) and the fine-tuning fold checkpoints "
                        "DIR/text-folds/ (resumed) (default: %(default)s)")
    args = p.parse_args()

    import torch

    from transferkit.data.text import read_text_table

    reviews = SHARED / "reviews"
    if not reviews.is_dir():
        raise SystemExit(f"skip: {reviews} is absent (the real data sets live in ../shared/data; TRANSFERKIT_SHARED_DATA reads another folder)")
    artifact = args.artifacts / ARTIFACT.name
    artifact.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(artifact.read_text()) if artifact.is_file() else {}
    env = {"torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "cuda": torch.cuda.is_available()}
    for name in args.datasets:
        path = reviews / f"{name}_labelled.txt"
        table = read_text_table(path)
        for method in args.methods:
            print(f"== {name} / {method} ({args.folds}-fold CV)", flush=True)
            r = tfidf_cv(table, args.folds, args.seed) if method == "tfidf" else transfer_cv(path, table, method, args, name)
            r.update({"dataset": name, "method": method, "folds": args.folds, "folds_run": len(r["accuracy"]["values"]), "seed": args.seed, "env": env,
                      "finished": time.strftime("%Y-%m-%d %H:%M:%S")})
            key = _row_key(args, name, method)
            # re-read before writing: another bench process (another data set) may have added rows since we started
            results = json.loads(artifact.read_text()) if artifact.is_file() else {}
            results[key] = r
            tmp = artifact.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(results, indent=2))
            os.replace(tmp, artifact)
            a, c = r["accuracy"], r["cpu_s"]
            print(f"{name:13s} {method:13s} accuracy {a['mean']:.3f} ± {a['std']:.3f}  CPU/fold {c['mean']:.1f} s  "
                  f"wall/fold {r['wall_s']['mean']:.1f} s  folds {[round(v, 3) for v in a['values']]}  heads {r.get('heads')}  "
                  f"best val loss {[round(v, 3) for v in r.get('best_val_loss') or [] if v is not None]}", flush=True)
    print("\n| dataset | method (head) | accuracy (mean ± std) | CPU s / fold |")
    print("|---|---|---|---|")
    for key, r in sorted(results.items()):
        print(f"| {r['dataset']} | {key.split('/', 1)[1]} | {r['accuracy']['mean']:.3f} ± {r['accuracy']['std']:.3f} | {r['cpu_s']['mean']:.1f} |")


if __name__ == "__main__":
    main()
