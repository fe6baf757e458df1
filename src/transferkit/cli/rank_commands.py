"""CLI commands of the rank feature (registered on the shared typer app)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.panel import Panel
from rich.table import Table

from ..config import DEFAULT_FEATURE_STAGES, MAX_FEATURE_STAGES
from ..errors import TransferKitError
from .app import _fail, app, console, err


def _num(v, fmt: str) -> str:
    return format(v, fmt) if v is not None else "-"


def _weights_hint(best) -> str:
    """``--weights`` of the "next:" hint: the weights that were ranked. A random-init control names the file (the folder
    for a text encoder) the ranking saved in the cache, so fit reuses its cached features and records its sha256;
    ``--weights none`` would train another random network, uncached."""
    if best.candidate.weights == "auto":
        return ""
    path = best.weights_record.get("path") if best.candidate.is_control else best.candidate.weights
    return f" --weights {shlex.quote(str(path))}" if path else " --weights none"


def _ranking_tables(ranking) -> tuple[Table, Table]:
    """Evidence (task similarity) and size/cost (quality, fit with the limits) of the ranked candidates.

    Every score is higher-is-better (↑, with the legend under the table); each column gets the decimals it needs for the
    shown values to order as the places do (H-score 3.97 for three candidates placed 1st/2nd/3rd hid what decided)."""
    from ..selection.rank import SCORES_LEGEND, baseline_words, distinct_decimals, evidence_columns, evidence_definition, throughput_of

    is_text = ranking.modality == "text"
    unit = "texts" if is_text else "images"
    where = f"{Path(ranking.data['root']).name}, {ranking.data['num_ranking_items']} training {unit}"
    evidence = Table(title=f"transfer evidence ({where})", header_style="bold")
    not_applicable = "n/a" if is_text else "-"  # text encoders have no source classifier (see the note below the table)
    majority, rate = ranking.data.get("majority_class"), ranking.data.get("majority_rate")
    legend = [SCORES_LEGEND + ".", evidence_definition(evidence_columns(ranking.ranked, ranking.strategy)[0])]
    if rate is not None:
        legend.append(f"baseline: {baseline_words(majority)}" + (" (the majority class)" if majority is not None else "")
                      + f" is right on {100 * rate:.1f} % of the training {unit}; ! = pred. acc not clearly above it.")
    evidence.caption, evidence.caption_justify = "\n".join(legend), "left"
    for col in ("#", "candidate", "pred. acc % (95% CI) ↑", "bal. acc % ↑", "evidence ↑", "LogME ↑", "H-score ↑", "k-NN % ↑", "LEEP ↑",
                "NCE ↑"):
        evidence.add_column(col, justify="left" if col == "candidate" else "right", no_wrap=True)

    def decimals(key: str, at_least: int, scale: float = 1.0) -> int:
        return distinct_decimals([None if (v := c.scores.get(key)) is None else scale * v for c in ranking.ranked], at_least)

    digits = {"logme": decimals("logme", 3), "hscore": decimals("hscore", 2), "knn_accuracy": decimals("knn_accuracy", 1, 100.0),
              "leep": decimals("leep", 3), "nce": decimals("nce", 3),
              "evidence": distinct_decimals([c.evidence for c in ranking.ranked], 2)}
    cost = Table(title=f"size, quality and cost on {ranking.device}" + (" (latency: the median-length training text)" if is_text else ""),
                 header_style="bold")
    columns = (("#", "candidate", "published", "params M", "GMACs", "GMACs@max", "MB", "p50 ms", "rounds ms", "p95 ms", "texts/s", "peak MB",
                "Pareto") if is_text else
               ("#", "candidate", "top-1", "params M", "GMACs", "MB", "p50 ms", "rounds ms", "p95 ms", "img/s", "peak MB", "Pareto"))
    cost.caption = ("p50: the median of the timing rounds' medians, the candidates timed in turn (round-robin); rounds: the lowest "
                    "and highest round median (how much the machine moved it)")
    for col in columns:
        cost.add_column(col, justify="left" if col == "candidate" else "right", no_wrap=True)
    for c in ranking.ranked:
        s, q, k = c.scores, c.quality, c.cost
        label = c.label + (" (control)" if c.candidate.is_control else "")
        lo, hi = c.predicted_ci
        below = c.majority_rate is not None and lo <= c.majority_rate  # the CI reaches the majority-class rate
        evidence.add_row(str(c.rank), label, f"{100 * c.predicted_accuracy:.1f} ({100 * lo:.0f}-{100 * hi:.0f})" + (" [yellow]![/]" if below else ""),
                         _num(None if c.predicted_balanced_accuracy is None else 100 * c.predicted_balanced_accuracy, ".1f"),
                         f"{c.evidence:.{digits['evidence']}f}", _num(s.get("logme"), f".{digits['logme']}f"),
                         _num(s.get("hscore"), f".{digits['hscore']}f"), f"{100 * s['knn_accuracy']:.{digits['knn_accuracy']}f}",
                         _num(s.get("leep"), f".{digits['leep']}f") if "leep" in s else not_applicable,
                         _num(s.get("nce"), f".{digits['nce']}f") if "nce" in s else not_applicable)
        rate, _ = throughput_of(k)
        row = [str(c.rank), label]
        if is_text:
            row += [_num(q.get("published_quality"), "g"), f"{k['num_params'] / 1e6:.1f}", f"{k['macs'] / 1e9:.3f}",
                    f"{k['macs_max_length'] / 1e9:.2f}"]
        else:
            row += [_num(q.get("imagenet_top1"), ".1f"), f"{k['num_params'] / 1e6:.1f}", f"{k['macs'] / 1e9:.2f}"]
        spread = k.get("latency_ms_spread")
        row += [f"{k['state_dict_mb']:.1f}", f"{k['latency_ms_p50']:.1f}", f"{spread[0]:.1f}–{spread[1]:.1f}" if spread else "-",
                f"{k['latency_ms_p95']:.1f}", f"{rate:.1f}",
                f"{k['peak_memory_mb']:.0f}", "[green]yes[/]" if c.on_pareto_front else ""]
        cost.add_row(*row)
    return evidence, cost


@app.command(
    epilog="Example: transferkit rank data/plants --candidates mobilenet_v2,tf_efficientnet_lite0,mobilenet_v2:none "
    "--max-latency-ms 50 --json ranking.json. "
    "Texts: transferkit rank reviews/amazon_cells_labelled.txt --candidates all-MiniLM-L6-v2,paraphrase-MiniLM-L3-v2,all-MiniLM-L6-v2:none",
)
def rank(
    data: Annotated[Path, typer.Argument(help="Image folder (train/ + test/ [+ val/], or one sub-folder per class), or a labelled text file "
                                          "(.csv, .tsv, .jsonl, UCI .txt). Only training data is read.")],
    candidates: Annotated[Optional[str], typer.Option(help="Comma-separated backbones; NAME:none adds a random-init control, NAME:PATH uses a weights file "
                                                           "(a model folder for text encoders). Default: every registered backbone of the data's modality.")] = None,
    modality: Annotated[str, typer.Option(help="auto (a folder is images, a .csv/.tsv/.jsonl/.txt file is text), image or text.")] = "auto",
    text_col: Annotated[Optional[str], typer.Option(help="Text data: the text column (default: detected).")] = None,
    label_col: Annotated[Optional[str], typer.Option(help="Text data: the label column (default: detected).")] = None,
    max_params: Annotated[Optional[float], typer.Option(metavar="N", help="Limit: parameters of the backbone, a whole number "
                                                        "(3000000 or 3e6).")] = None,
    max_size_mb: Annotated[Optional[float], typer.Option(help="Limit: fp32 weights size in MB.")] = None,
    max_latency_ms: Annotated[Optional[float], typer.Option(help="Limit: batch-1 latency p50 on --device, in ms.")] = None,
    max_memory_mb: Annotated[Optional[float], typer.Option(help="Limit: peak memory of a batch-1 forward, in MB.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda: where features run and costs are measured.")] = "auto",
    groups: Annotated[Optional[str], typer.Option(help="Images: a pattern in file names naming the subject (patient, leaf), so the CV scores "
                                                       "keep a subject's images together, e.g. '(person\\d+)_|(IM-\\d+)-'.")] = None,
    groups_file: Annotated[Optional[Path], typer.Option("--groups-file", metavar="CSV", help="Images: instead of --groups, a CSV table "
                                                        "of file -> subject (columns 'file' and 'subject').")] = None,
    strategy: Annotated[str, typer.Option(help="How you will train the pick: linear-probe (frozen base), or finetune / lora / auto, "
                                                "for which ties are broken by LogME and published quality only.")] = "linear-probe",
    seed: Annotated[int, typer.Option(help="Seed of the splits, the CV folds and random-init controls.")] = 0,
    feature_stages: Annotated[int, typer.Option("--stages", min=1, max=MAX_FEATURE_STAGES, help="Images: score the pooled outputs of each backbone's last K "
                                                "stages, as `fit --stages` trains on (default 3).")] = DEFAULT_FEATURE_STAGES,
    encoding: Annotated[str, typer.Option(help="Texts: the text encoding of the file.")] = "utf-8",
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write the full ranking (all numbers, explanations) as JSON here.")] = None,
    chart: Annotated[Optional[Path], typer.Option(help="Also draw the ranking as a PNG here: predicted accuracy vs measured latency, Pareto front, the pick.")] = None,
    explain: Annotated[bool, typer.Option(help="Print the plain-words explanation of every candidate.")] = True,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Feature cache folder (default: $TRANSFERKIT_CACHE/features, else ~/.cache/transferkit/features).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Rank candidate backbones (images) or text encoders (texts) for your data and limits: evidence, size/quality, measured cost."""
    from ..selection import rank_backbones
    from ..selection.rank import baseline_words

    names = [c for c in (candidates or "").split(",") if c.strip()] or None
    if candidates is not None and names is None:  # "--candidates ','" would otherwise rank every registered backbone
        _fail(TransferKitError(f"--candidates {candidates!r} names no backbone; pass e.g. mobilenet_v2,tf_efficientnet_lite0 "
                               "(or leave the option out to rank every offline candidate)."))
    try:
        from ..launch import refuse_several_processes
        from ..run_folder import check_writable_file

        refuse_several_processes("ranking (it measures each candidate's latency and memory on this machine)",
                                 "Run `transferkit rank` without `accelerate launch`; `fit --model auto` under it ranks once, on the main process.")

        # before the ranking runs: a bad output path fails now, not after every candidate's features
        json_path = check_writable_file(json_path, "--json") if json_path is not None else None
        chart = check_writable_file(chart, "--chart") if chart is not None else None
        ranking = rank_backbones(data, names, modality=modality, max_params=max_params, max_size_mb=max_size_mb,
                                 max_latency_ms=max_latency_ms, max_memory_mb=max_memory_mb, device=device, seed=seed,
                                 cache_dir=cache_dir, progress=not quiet, text_col=text_col, label_col=label_col,
                                 strategy=strategy, groups=groups, feature_stages=feature_stages,
                                 groups_file=groups_file, encoding=encoding)
    except TransferKitError as exc:
        _fail(exc)
    if ranking.ranked:
        for table in _ranking_tables(ranking):
            console.print(table)
    for note in ranking.notes:
        console.print(f"[dim]note:[/] {note}")
    for c in ranking.candidates:
        if c.status != "ranked":
            console.print(f"[yellow]{c.status}[/] {c.label}: {c.reason}")
    for c in ranking.candidates:
        for warning in c.warnings:
            console.print(f"[yellow]warning[/] {c.label}: {warning}")
    if explain:
        for c in ranking.ranked:
            console.print(f"[bold]{c.label}[/]: {c.explanation}")
    if json_path is not None:
        ranking.save_json(json_path)
    if chart is not None:
        from ..report.plots import figure_png, ranking_figure

        fig = ranking_figure(ranking.as_dict())
        if fig is not None:
            chart.parent.mkdir(parents=True, exist_ok=True)
            chart.write_bytes(figure_png(fig))
    best = ranking.best
    if best is None:
        limited = any(v is not None for v in ranking.limits.as_dict().values())
        err.print("[bold red]error:[/] no candidate is usable" + (" under these limits" if limited else "")
                  + " (the reason of each is above). " + ("Relax a limit or add candidates." if limited else "Add candidates, or fix their weights."))
        raise typer.Exit(code=1)
    console.print(Panel.fit(
        f"best: [bold]{best.label}[/] (predicted accuracy {100 * best.predicted_accuracy:.1f} %"
        + (f" [yellow]not clearly above {baseline_words(best.majority_class)}: {100 * best.majority_rate:.1f} %[/]" if best.warnings
           and best.majority_rate is not None and best.predicted_ci[0] <= best.majority_rate else "")
        + f", {best.cost['latency_ms_p50']:.1f} ms p50)\n"
        f"rule: linear-probe CV accuracy, ties (McNemar p >= 0.05) broken by "
        + ("transfer evidence" if ranking.strategy == "linear-probe" else f"LogME + published quality (strategy {ranking.strategy})")
        + "; details in --json\n"
        + (f"saved: {json_path}\n" if json_path else "") + (f"chart: {chart}\n" if chart is not None and ranking.ranked else "")
        + f"next: transferkit {'fit-text' if ranking.modality == 'text' else 'fit'} {data} --model {best.name}"
        + (f" --strategy {ranking.strategy}" if ranking.strategy != "linear-probe" else "")
        + _weights_hint(best)
        + (f" --stages {feature_stages}" if ranking.modality == "image" and feature_stages != DEFAULT_FEATURE_STAGES else "")
        + (f" --groups '{groups}'" if groups and ranking.modality == "image" else "")
        + (f" --groups-file {groups_file}" if groups_file and ranking.modality == "image" else ""),
        title="rank",
    ))
