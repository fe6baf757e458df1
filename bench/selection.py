"""Does the ranking pick the model that trains best, and how much cheaper is it than trying all?

For each data set: rank every offline candidate plus random-init ("scratch") controls with
``transferkit.selection.rank_backbones`` (training images only, CV inside them), then train
every candidate and measure its test accuracy. Reported per score and for the combined rule:
Kendall tau and weighted tau (scipy.stats) of score vs trained test accuracy, top-1 regret
(best trained accuracy minus the picked candidate's, in points), and the cost ratio
(brute-force time / ranking time).

Trained accuracy = ``transferkit.fit`` (frozen base + Dense head on cached features, seed 0,
one seed per candidate): the fine-tuning engine was being written in parallel and this
machine's 2 shared CPUs cannot fine-tune 12 candidates in the time available.

Times: feature extraction is charged at each backbone's throughput measured in this run
(``cost.throughput_img_s``), for ranking (train + val images) and brute force (all images)
alike, so a shared feature cache does not flatter either side. Fine-tuning brute force is an
estimate: default ``FinetuneConfig.epochs`` x (train images / 16) x a measured
forward+backward step of batch 16, plus the linear-probe fit.

Text (the amazon_cells review set, ../shared/data/reviews/amazon_cells_labelled.txt): the
offline text encoders (all-MiniLM-L6-v2; paraphrase-MiniLM-L3-v2, converted from its ONNX
package; all-mpnet-base-v2, since the ninth session, joined from its five split-archive packages) and the two MiniLMs'
random-init controls (mpnet has none: a random 110 M encoder fine-tuned 5 times costs 40 CPU-minutes to show
what two controls show already) are ranked the same way (train + val texts of the
default split, test never read); trained accuracy = ``transferkit.fit_text`` with the default
strategy (linear-probe: frozen encoder + Dense head on cached embeddings) under 5-fold stratified
CV (seed 0) over the whole file, the mean fold accuracy. The CV's folds cover the texts the
ranking read as well: ranking and training see the same data, as a user's would. The
fine-tuning estimate uses ``text_finetune_defaults().epochs`` and a measured step of 16 texts.

With ``--trained-with finetune`` every candidate is fine-tuned (LP-FT, all blocks, default settings; text: the
text fine-tuning defaults under the same 5-fold CV) and the
ranking is made for that strategy (``rank_backbones(..., strategy="finetune")``: ties broken by LogME and published
quality only, rank.py point 3); the frozen-feature rule's pick on the same trained results is reported beside it.

``--train-seeds 0 1 2`` trains every pretrained candidate once per seed and uses the mean test accuracy (controls: the
first seed only; they only have to be shown below); per-seed values are kept in the summary. Two processes can share
the runs (``--reverse`` in the second): each run is claimed before it starts, so none is trained twice.

Trained results and rankings are cached as JSON under bench/artifacts/selection/ (resumable; ``--artifacts DIR`` moves
everything this bench writes and reads back to DIR/selection/). Fine-tuned candidates
also keep their run folders (selection/<dataset>/runs/trained-finetune[-sK]/<candidate>/: model, checkpoints, metrics),
so a later question about them (another WiSE-FT alpha: bench/wise_ft.py) is a rebuild, not a retrain. A bench killed
mid-run leaves a claim naming its process; the next run sees that process is gone, takes the candidate over and, for
fine-tuning, continues from the run folder's last checkpoint (`transferkit.fit(resume=...)`).

    nice -n 5 .venv/bin/python bench/selection.py                # pneumonia, plants and amazon_cells
    nice -n 5 .venv/bin/python bench/selection.py --datasets plants
    OMP_NUM_THREADS=1 .venv/bin/python bench/selection.py --datasets plants --trained-with finetune [--reverse]
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/selection.py --datasets amazon_cells
    OMP_NUM_THREADS=1 .venv/bin/python bench/selection.py --datasets amazon_cells --trained-with finetune
    OMP_NUM_THREADS=1 .venv/bin/python bench/selection.py --datasets pneumonia --trained-with finetune --train-seeds 0 1 2 [--reverse]
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
from _common import DATA_EPILOG, require_data  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"  # --artifacts default
ART = ARTIFACTS / "selection"
PRETRAINED = ["mobilenet_v2", "tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2"]
CONTROLS = ["mobilenet_v2:none", "tf_efficientnet_lite0:none"]
SCORES = ["linear_probe", "knn_accuracy", "logme", "hscore", "leep", "nce", "imagenet_top1", "combined_rule"]
TEXT_DATASETS = {"amazon_cells": ("reviews", "amazon_cells_labelled.txt")}
TEXT_PRETRAINED = ["all-MiniLM-L6-v2", "paraphrase-MiniLM-L3-v2", "all-mpnet-base-v2"]
TEXT_CONTROLS = ["all-MiniLM-L6-v2:none", "paraphrase-MiniLM-L3-v2:none"]
TEXT_SCORES = ["linear_probe", "knn_accuracy", "logme", "hscore", "published_quality", "combined_rule"]


def _load_json(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def _save_json(path: Path, payload) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    tmp.replace(path)


def rank(data: Path, out: Path, candidates: list[str], seed: int, latency_runs: int, throughput_batch: int,
         strategy: str = "linear-probe") -> dict:
    """The ranking for a user who will train with ``strategy`` (cached: ranking.json, ranking-<strategy>.json)."""
    from transferkit.selection import rank_backbones

    path = out / ("ranking.json" if strategy == "linear-probe" else f"ranking-{strategy}.json")
    cached = _load_json(path)
    if cached is not None and cached.get("requested") == candidates:
        return cached
    t0 = time.perf_counter()
    ranking = rank_backbones(data, candidates, seed=seed, latency_runs=latency_runs, throughput_batch_size=throughput_batch, progress=False,
                             strategy=strategy)
    wall = time.perf_counter() - t0
    payload = ranking.as_dict()
    payload["requested"] = candidates
    payload["wall_s"] = wall
    _save_json(path, payload)
    return payload


def trained_once(out: Path, cand: dict, run, folder: str = "trained") -> dict | None:
    """One candidate's trained result, cached as JSON under ``out/<folder>/``: ``run(weights)`` only when
    not cached yet, with the weights that were ranked (a control's saved random init, else "auto").

    Several bench processes can share the work: a run first claims ``<file>.claim`` (exclusive create); a
    candidate claimed by another process returns None here and is collected by ``wait_for_trained`` later."""
    path = out / folder / f"{cand['label'].replace(':', '__').replace('/', '_')}.json"
    cached = _load_json(path)
    if cached is not None:
        return cached
    claim = path.with_suffix(".claim")
    claim.parent.mkdir(parents=True, exist_ok=True)
    if _claim_is_stale(claim):
        claim.unlink(missing_ok=True)  # its process was killed: take the run over (a fine-tuning run resumes from its checkpoints)
    try:
        with claim.open("x") as fh:
            fh.write(str(os.getpid()))
    except FileExistsError:
        return None
    try:
        payload = run(cand["weights_record"]["path"] if cand["is_control"] else "auto")
        _save_json(path, payload)
    finally:
        claim.unlink(missing_ok=True)
    return payload


def _claim_is_stale(claim: Path) -> bool:
    """True when ``claim`` names a process that no longer runs on this machine (a bench killed with -9 leaves it)."""
    try:
        pid = int(claim.read_text().strip())
    except (OSError, ValueError):
        return False  # absent, or being written (or an old claim without a pid): leave it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def wait_for_trained(out: Path, cand: dict, folder: str, poll_s: float = 30.0) -> dict:
    """The result of a candidate another bench process claimed: poll until its JSON is written."""
    path = out / folder / f"{cand['label'].replace(':', '__').replace('/', '_')}.json"
    while (cached := _load_json(path)) is None:
        claim = path.with_suffix(".claim")
        if not claim.exists() or _claim_is_stale(claim):
            sys.exit(f"{path} was claimed by another process that stopped without a result; delete nothing, rerun the bench "
                     "(it takes the run over, and a fine-tuning run continues from its checkpoints)")
        time.sleep(poll_s)
    return cached


def trained_folder(strategy: str, seed: int) -> str:
    """Cache folder of one (strategy, seed): seed 0 keeps the first sessions' names (trained/, trained-finetune/)."""
    base = "trained" if strategy == "linear-probe" else f"trained-{strategy}"
    return base if seed == 0 else f"{base}-s{seed}"


def mean_over_seeds(rows: list[dict]) -> dict:
    """One candidate's trained row averaged over seeds: accuracies and times are means; the seeds' own values are kept."""
    if len(rows) == 1:
        return rows[0]
    out = dict(rows[0])
    for key in ("test_accuracy", "val_accuracy", "test_balanced_accuracy", "head_training_s", "wall_s", "finetune_s"):
        if all(key in r for r in rows):
            out[key] = float(np.mean([r[key] for r in rows]))
    out["seeds"] = [r["seed"] for r in rows]
    out["test_accuracy_per_seed"] = [r["test_accuracy"] for r in rows]
    out["test_accuracy_std"] = float(np.std([r["test_accuracy"] for r in rows], ddof=1))
    return out


def adamw_step_seconds(backbone, head, features, y, lr: float) -> float:
    """Seconds of one forward+backward+AdamW step of ``backbone`` + ``head`` (``features()`` runs the backbone on the
    batch), timed after a warm-up step."""
    import torch

    opt = torch.optim.AdamW([*backbone.parameters(), *head.parameters()], lr=lr)
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(head(features()), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return times[-1]


def train_step_seconds(name: str, weights: str, batch: int = 16) -> float:
    """One forward+backward+AdamW step of the whole network at ``batch`` (train mode), after a warm-up step."""
    import torch

    import transferkit as tk

    backbone = tk.load_backbone(name, weights).train()
    size = backbone.data_cfg["input_size"][-1]
    head = torch.nn.Linear(backbone.num_features, 5)
    x, y = torch.randn(batch, 3, size, size), torch.randint(0, 5, (batch,))
    return adamw_step_seconds(backbone, head, lambda: backbone(x), y, lr=1e-4)


def train(data: Path, out: Path, cand: dict, seed: int, strategy: str = "linear-probe") -> dict:
    """Fit one candidate with ``strategy`` (the library's default linear probe, or ``finetune``: LP-FT with every
    block unfrozen and the default fine-tuning settings); cached per candidate and strategy."""
    import transferkit as tk

    def run(weights: str) -> dict:
        t0 = time.perf_counter()
        extra = {"strategy": "finetune", "unfreeze": "all"} if strategy == "finetune" else {}
        run_dir = None
        if strategy == "finetune":  # keep the run folder: a later question (another WiSE-FT alpha...) is a rebuild, not a retrain
            run_dir = out / "runs" / trained_folder(strategy, seed) / cand["label"].replace(":", "__").replace("/", "_")
            extra["out"] = run_dir
        if run_dir is not None and (_load_json(run_dir / "config.json") or {}).get("status") == "running" and (run_dir / "checkpoints").is_dir():
            print(f"  resuming {cand['label']} from {run_dir}/checkpoints", flush=True)  # this bench was killed mid fine-tuning
            result = tk.fit(resume=run_dir, progress=False, report=False)
        else:
            result = tk.fit(data, model=cand["name"], weights=weights, seed=seed, progress=False, report=False, **extra)
        wall = time.perf_counter() - t0
        m = result.metrics
        n_all = sum(sum(v.values()) for v in m["data"]["counts"].values())
        n_train = sum(m["data"]["counts"]["train"].values())
        step = train_step_seconds(cand["name"], weights)
        row = {
            "label": cand["label"], "test_accuracy": m["test"]["accuracy"], "val_accuracy": m["val"]["accuracy"],
            "test_balanced_accuracy": m["test"]["balanced_accuracy"], "head_training_s": m["timing_s"]["head_training"],
            "wall_s": wall, "num_images": n_all, "num_train_images": n_train, "finetune_step_s_batch16": step,
            "seed": seed, "strategy": strategy,
            "head": (m.get("stages", {}).get("linear_probe", {}).get("training") or m["training"]).get("head"),  # the (first-stage) head
        }
        if strategy == "finetune":
            row["run_dir"] = str(run_dir)
            row["finetune_s"] = m["timing_s"]["finetune"]  # a resumed run counts the seconds its checkpoint recorded
            row["finetune_epochs_run"] = m["training"].get("epochs_run")
            resumed = m.get("stages", {}).get("finetune", {}).get("training", {}).get("resumed_from")
            if resumed is not None:
                row["resumed_from"] = resumed
        return row

    return trained_once(out, cand, run, trained_folder(strategy, seed))


def text_train_step_seconds(name: str, weights: str, texts: list[str], batch: int = 16) -> float:
    """One forward+backward+AdamW step of the whole text encoder on ``batch`` typical-length texts, after a warm-up step."""
    import torch

    from transferkit.backbones.text import load_text_backbone
    from transferkit.selection.cost import typical_text

    backbone = load_text_backbone(name, weights, download=False).train()
    head = torch.nn.Linear(backbone.num_features, 2)
    x = backbone.collate(backbone.tokenize([typical_text(texts)] * batch))
    y = torch.randint(0, 2, (batch,))
    return adamw_step_seconds(backbone, head, lambda: backbone(**x), y, lr=1e-5)


def train_text(data: Path, out: Path, cand: dict, seed: int, strategy: str = "linear-probe") -> dict:
    """5-fold CV (stratified, seed) of one candidate with ``strategy`` (the default text strategy, linear-probe, or
    finetune: LP-FT with the library's text defaults); cached per candidate and strategy."""
    from transferkit.data.text import read_text_table
    from transferkit.text import fit_text

    def run(weights: str) -> dict:
        t0 = time.perf_counter()
        result = fit_text(data, model=cand["name"], weights=weights, strategy=strategy, cv=5, seed=seed, save_final=False,
                          progress=False, report=False)
        wall = time.perf_counter() - t0
        cv, folds = result.metrics["cv"], result.metrics["folds"]
        texts = read_text_table(data).texts
        row = {
            "label": cand["label"], "test_accuracy": cv["accuracy"]["mean"], "cv_accuracy_std": cv["accuracy"]["std"],
            "cv_accuracy_folds": cv["accuracy"]["values"], "test_balanced_accuracy": cv["balanced_accuracy"]["mean"],
            "head_training_s": float(sum(f["wall_s"] - f["training"]["embedding_s"] for f in folds)),
            "wall_s": wall, "num_images": len(texts), "num_train_images": int(np.mean([f["num_train"] for f in folds])),
            "finetune_step_s_batch16": text_train_step_seconds(cand["name"], weights, texts), "seed": seed, "strategy": strategy,
            "trained_with": f"fit_text strategy={strategy}, 5-fold stratified CV (StratifiedGroupKFold, seed 0); accuracy = mean over folds",
        }
        if strategy != "linear-probe":  # what one fit costs a user: the mean fold (each fold is one complete LP-FT fit)
            row["head_training_s"] = 0.0
            row["finetune_s"] = float(np.mean([f["wall_s"] for f in folds]))
            row["finetune_cpu_s_per_fold"] = float(np.mean([f["cpu_s"] for f in folds]))
        return row

    return trained_once(out, cand, run, trained_folder(strategy, seed))


def evaluate(ranking: dict, trained: dict[str, dict], scores: list[str] = SCORES, finetune_epochs: int | None = None) -> dict:
    from scipy.stats import kendalltau, weightedtau

    from transferkit.config import FinetuneConfig
    from transferkit.selection.rank import throughput_of

    ranked = [c for c in ranking["candidates"] if c["status"] == "ranked"]
    acc = {c["label"]: 100 * trained[c["label"]]["test_accuracy"] for c in ranked}
    best_acc = max(acc.values())

    def value(c, score):
        if score == "combined_rule":
            return -c["rank"]
        if score == "linear_probe":
            return c["scores"]["linear_probe"]["accuracy"]
        if score == "imagenet_top1":
            return c["quality"]["imagenet_top1"]
        if score == "published_quality":
            return None if c["is_control"] else c["quality"].get("published_quality")
        return c["scores"].get(score)

    per_score = {}
    for score in scores:
        pts = [(value(c, score), acc[c["label"]], c["label"]) for c in ranked if value(c, score) is not None]
        if len(pts) < 3:
            continue
        x, y, labels = map(list, zip(*pts))
        picked = labels[int(np.argmax(x))]
        per_score[score] = {
            "num_candidates": len(pts),
            "kendall_tau": float(kendalltau(x, y).statistic),
            "weighted_tau": float(weightedtau(x, y).statistic),
            "picked": picked,
            "top1_regret_points": best_acc - acc[picked],
            "regret_vs_best_of_scored": max(y) - acc[picked],
        }
    controls = [c for c in ranked if c["is_control"]]
    pretrained = [c for c in ranked if not c["is_control"]]
    controls_below = all(k["rank"] > p["rank"] for k in controls for p in pretrained)

    # cost: ranking vs brute force, feature extraction charged at measured throughput
    n_rank = ranking["data"].get("num_ranking_items", ranking["data"].get("num_ranking_images"))
    rank_s = 0.0
    brute_lp_s = 0.0
    brute_ft_s = 0.0
    epochs = finetune_epochs or FinetuneConfig().epochs
    for c in ranked:
        thr, _ = throughput_of(c["cost"])
        t = trained[c["label"]]
        rank_s += n_rank / thr + c["timing_s"].get("scores", 0.0)
        lp = t["num_images"] / thr + t["head_training_s"]
        brute_lp_s += lp
        brute_ft_s += lp + epochs * (t["num_train_images"] / 16) * t["finetune_step_s_batch16"]
    cost_measure_s = sum(c["timing_s"].get("cost", 0.0) for c in ranked)
    measured_ft = None
    if all("finetune_s" in trained[c["label"]] for c in ranked):  # trained with fine-tuning: its brute force is measured
        measured_ft = sum(trained[c["label"]]["num_images"] / throughput_of(c["cost"])[0] + trained[c["label"]]["head_training_s"]
                          + trained[c["label"]]["finetune_s"] for c in ranked)
    return {
        "trained_test_accuracy": acc,
        "best_trained": max(acc, key=acc.get),
        "per_score": per_score,
        "controls_rank_below_every_pretrained": controls_below,
        "ranking_s_charged": rank_s,
        "ranking_s_with_cost_measurement": rank_s + cost_measure_s,
        "brute_force_linear_probe_s": brute_lp_s,
        "brute_force_finetune_estimate_s": brute_ft_s,
        "finetune_epochs_assumed": epochs,
        "cost_ratio_linear_probe": brute_lp_s / rank_s,
        "cost_ratio_finetune_estimate": brute_ft_s / rank_s,
        "brute_force_finetune_measured_s": measured_ft,
        "cost_ratio_finetune_measured": measured_ft / rank_s if measured_ft is not None else None,
        "ranking_wall_s": ranking.get("wall_s"),
        "order": [c["label"] for c in ranked],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=DATA_EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["pneumonia", "plants", "amazon_cells"],
                    help=f"image folders under the data root (../shared/data), or text sets: {', '.join(TEXT_DATASETS)}")
    ap.add_argument("--seed", type=int, default=0, help="seed of the split, the ranking and (without --train-seeds) the training")
    ap.add_argument("--latency-runs", type=int, default=20, help="timed batch-1 forwards per candidate")
    ap.add_argument("--throughput-batch", type=int, default=16, help="batch size of the throughput measurement")
    ap.add_argument("--trained-with", default="linear-probe", choices=["linear-probe", "finetune"],
                    help="how each candidate is trained for its 'trained accuracy' (finetune: LP-FT, all blocks / whole encoder), "
                         "and the strategy the ranking is made for")
    ap.add_argument("--train-seeds", type=int, nargs="+", default=None,
                    help="train every pretrained candidate with each of these seeds and use the mean test accuracy "
                         "(controls: the first seed); default: --seed only")
    ap.add_argument("--reverse", action="store_true",
                    help="train candidates in reverse order (a second process can share the work; claimed runs are not repeated)")
    ap.add_argument("--artifacts", type=Path, default=ARTIFACTS, metavar="DIR",
                    help="folder for everything this bench writes and reads back: rankings, trained results, claims, fine-tuning "
                         "run folders and summaries go to DIR/selection/<dataset>/ (default: %(default)s). The library's feature "
                         "cache (with the controls' random-init weights) stays where TRANSFERKIT_CACHE puts it")
    args = ap.parse_args()
    summary = {}
    for name in args.datasets:
        is_text = name in TEXT_DATASETS
        if is_text:
            folder, file_name = TEXT_DATASETS[name]
            data = require_data(folder) / file_name
            if not data.is_file():
                sys.exit(f"skip: {data} is absent (the review sets live in <data root>/reviews)")
        else:
            data = require_data(name)
        out = args.artifacts / "selection" / name
        candidates = TEXT_PRETRAINED + TEXT_CONTROLS if is_text else PRETRAINED + CONTROLS
        # the user's strategy decides the rule's evidence (rank.py, point 3): rank for the way candidates are trained here
        strategy = args.trained_with
        ranking = rank(data, out, candidates, args.seed, args.latency_runs, args.throughput_batch, strategy)
        print(f"[{name}] ranked: {[c['label'] for c in ranking['candidates']]}", flush=True)
        for c in ranking["candidates"]:
            if c["status"] != "ranked":
                print(f"[{name}] {c['status']} {c['label']}: {c['reason']}", flush=True)
        ranked_first = [c for c in ranking["candidates"] if c["status"] == "ranked"]
        seeds = args.train_seeds or [args.seed]
        # controls only have to be shown below the pretrained candidates: their first seed is enough
        seeds_of = {c["label"]: seeds[:1] if c["is_control"] else seeds for c in ranked_first}
        jobs = [(c, s) for s in seeds for c in ranked_first if s in seeds_of[c["label"]]]
        results, pending = {}, []
        for c, s in (jobs[::-1] if args.reverse else jobs):
            row = (train_text if is_text else train)(data, out, c, s, args.trained_with)
            if row is None:
                print(f"[{name}] {c['label']} seed {s}: being trained by another bench process", flush=True)
                pending.append((c, s))
                continue
            results[c["label"], s] = row
            what = "5-fold CV acc" if is_text else "test acc"
            print(f"[{name}] trained {c['label']} seed {s}: {what} {row['test_accuracy']:.4f}", flush=True)
        for c, s in pending:
            results[c["label"], s] = wait_for_trained(out, c, trained_folder(args.trained_with, s))
        trained = {label: mean_over_seeds([results[label, s] for s in ss]) for label, ss in seeds_of.items()}
        if is_text:
            from transferkit.text import text_finetune_defaults

            summary[name] = evaluate(ranking, trained, TEXT_SCORES, text_finetune_defaults("finetune").epochs)
            summary[name]["trained_accuracy"] = f"5-fold stratified CV accuracy (mean) of fit_text {args.trained_with}, seed 0"
        else:
            summary[name] = evaluate(ranking, trained)
            summary[name]["trained_accuracy"] = (f"test accuracy of transferkit.fit, strategy {args.trained_with}, "
                                                 f"mean over seeds {seeds} (controls: seed {seeds[0]})" if len(seeds) > 1
                                                 else f"test accuracy of transferkit.fit, strategy {args.trained_with}, seed {seeds[0]}")
            summary[name]["trained_per_seed"] = {label: dict(zip(t.get("seeds", [t["seed"]]), t.get("test_accuracy_per_seed", [t["test_accuracy"]])))
                                                 for label, t in trained.items()}
        summary[name]["ranked_for_strategy"] = strategy
        if strategy != "linear-probe":  # the same trained results under the frozen-feature rule, for comparison
            frozen = rank(data, out, candidates, args.seed, args.latency_runs, args.throughput_batch)
            summary[name]["per_score"]["combined_rule_ranked_for_linear_probe"] = evaluate(
                frozen, trained, TEXT_SCORES if is_text else SCORES)["per_score"]["combined_rule"]
        suffix = ("" if args.trained_with == "linear-probe" else f"-{args.trained_with}") + (
            f"-seeds{'-'.join(map(str, seeds))}" if len(seeds) > 1 else "")
        _save_json(out / f"summary{suffix}.json", summary[name])
    print(json.dumps(summary, indent=2))
    print()
    for name, s in summary.items():
        print(f"### {name}: best trained {s['best_trained']}; controls below every pretrained: {s['controls_rank_below_every_pretrained']}")
        print(f"cost ratio (brute-force linear probe / ranking): {s['cost_ratio_linear_probe']:.2f}x; "
              f"(estimated brute-force fine-tuning / ranking): {s['cost_ratio_finetune_estimate']:.1f}x")
        if s.get("cost_ratio_finetune_measured") is not None:
            print(f"cost ratio (measured brute-force fine-tuning / ranking): {s['cost_ratio_finetune_measured']:.1f}x")
        print("| score | n | Kendall tau | weighted tau | picked | top-1 regret (points) |")
        print("|---|--:|--:|--:|---|--:|")
        for score, r in s["per_score"].items():
            print(f"| {score} | {r['num_candidates']} | {r['kendall_tau']:.2f} | {r['weighted_tau']:.2f} | {r['picked']} | {r['top1_regret_points']:.1f} |")
        what = "trained 5-fold CV acc" if name in TEXT_DATASETS else "trained test acc"
        print(f"| candidate | {what} |")
        print("|---|--:|")
        for label in s["order"]:
            per_seed = s.get("trained_per_seed", {}).get(label, {})
            seeds_txt = " (" + ", ".join(f"s{k}: {100 * v:.1f}" for k, v in per_seed.items()) + ")" if len(per_seed) > 1 else ""
            print(f"| {label} | {s['trained_test_accuracy'][label]:.1f}{seeds_txt} |")


if __name__ == "__main__":
    main()
