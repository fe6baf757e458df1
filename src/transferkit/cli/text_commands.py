"""CLI commands for text: fit-text, evaluate-text, predict-text (registered on the shared typer app).

Separate commands, so the image ``fit``/``predict`` stay as they are; ``transferkit.load`` and
``evaluate-text``/``predict-text`` read any saved text model folder.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from ..errors import TransferKitError
from ..json_files import dumps_strict
from .app import _fail, _option_error, app, console, err, refuse_options_beside_resume


def _print_text_data_notes(data: dict) -> None:
    files = data.get("files") or [data]
    for f in files:
        name = Path(f["path"]).name if f.get("path") else "the data"
        if f.get("label_merges"):
            from ..data.text import describe_label_merges

            err.print(f"[yellow]labels merged in {escape(name)}[/] (spellings of one label, case or leading zeros aside): "
                      f"{escape(describe_label_merges(f['label_merges']))} (config.json: data)", soft_wrap=True)
        if f.get("num_skipped"):
            reasons = ", ".join(f"{n} {r}" for r, n in f["skipped_by_reason"].items())
            err.print(f"[yellow]skipped {f['num_skipped']} row(s) of {name}:[/] {reasons} (listed in config.json)")
        if f.get("num_duplicate_texts"):
            conflicting = f.get("num_conflicting_duplicates") or 0
            err.print(f"[yellow]{f['num_duplicate_texts']} duplicate text(s) in {name}"
                      + (f", {conflicting} with conflicting labels" if conflicting else "")
                      + "[/] (kept; every copy stays in one split; listed in config.json)")
    leaks = data.get("cross_split_duplicates", [])
    for d in leaks[:5]:
        err.print(f"[yellow]leakage warning:[/] the same text in {d['a_split']} ({d['a']}) and {d['b_split']} ({d['b']}): {d['text'][:60]!r}")
    if len(leaks) > 5:
        err.print(f"[yellow]... and {len(leaks) - 5} more texts shared across splits[/]")
    near = data.get("cross_split_near_duplicates", [])
    for d in near[:5]:
        err.print(f"[yellow]leakage warning:[/] near-identical texts (same words ignoring case and punctuation) in {d['a_split']} "
                  f"({d['a']}) and {d['b_split']} ({d['b']}): {d['a_text'][:60]!r} / {d['text'][:60]!r}")
    if len(near) > 5:
        err.print(f"[yellow]... and {len(near) - 5} more near-identical texts across splits[/] (metrics.json: data.cross_split_near_duplicates)")


@app.command(
    "fit-text",
    epilog="Examples:\n\n"
    "transferkit fit-text reviews/amazon_cells_labelled.txt --model all-MiniLM-L6-v2 --strategy linear-probe --cv 5 --out runs/amazon-lp\n\n"
    "transferkit fit-text reviews.csv --text-col review --label-col stars --strategy finetune --max-length 64 --out runs/rev-ft\n\n"
    "transferkit fit-text train.jsonl --test test.jsonl --strategy lora --out runs/rev-lora\n\n"
    "transferkit fit-text --resume runs/rev-lora   (after a crash, kill -9 or Ctrl-C: finetune/lora continue from the last checkpoint)",
)
def fit_text_cmd(
    ctx: typer.Context,
    data: Annotated[Optional[Path], typer.Argument(help="Labelled texts: .csv/.tsv/.jsonl (header/keys) or UCI 'sentence<TAB>label' .txt; or a folder with train.* and test.*.")] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Text backbone: a registered name (`transferkit models --offline`), a Hugging Face id, a local folder, or 'auto' (rank the text encoders on the training texts, fit the top one).")] = "all-MiniLM-L6-v2",
    strategy: Annotated[str, typer.Option(help="linear-probe (frozen encoder + head), finetune (all weights) or lora (peft adapters).")] = "linear-probe",
    cv: Annotated[Optional[int], typer.Option("--cv", help="Stratified K-fold cross-validation: mean ± std instead of one test split.")] = None,
    test: Annotated[Optional[Path], typer.Option(help="Separate labelled test file (else 20 percent of DATA is held out).")] = None,
    text_col: Annotated[Optional[str], typer.Option(help="Text column (default: detected: text, sentence, review...).")] = None,
    label_col: Annotated[Optional[str], typer.Option(help="Label column (default: detected: label, sentiment, class...).")] = None,
    weights: Annotated[str, typer.Option(help="'auto' (offline first), 'none' (random init) or a model folder.")] = "auto",
    max_length: Annotated[Optional[int], typer.Option(help="Tokens per text (longer texts are truncated; default: the backbone's).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Fine-tuning epochs (finetune/lora; default 4).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Fine-tuning learning rate (default: 3e-5 finetune, 1e-3 lora).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Fine-tuning batch size (default 16).")] = None,
    wise_ft: Annotated[Optional[float], typer.Option("--wise-ft", min=0.0, max=1.0, metavar="ALPHA", help=(
        "finetune/lora: keep (1 - ALPHA) x the weights before fine-tuning + ALPHA x the fine-tuned ones (WiSE-FT); default 0.5 "
        "(chosen on validation loss, bench/RESULTS.md); 1 = the fine-tuned weights alone.")) ] = None,
    seed: Annotated[int, typer.Option(help="Seed of splits, folds, initialisation and training.")] = 0,
    positive: Annotated[Optional[str], typer.Option(help="Positive class of a binary task (default: the second class).")] = None,
    encoding: Annotated[str, typer.Option(help="Text encoding of the files.")] = "utf-8",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run folder (default: runs/<data>-<model>-<strategy>).")] = None,
    final: Annotated[bool, typer.Option("--final/--no-final", help="With --cv: also train and save a model on all rows.")] = True,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    report: Annotated[bool, typer.Option("--report/--no-report", help="With a test split: write RUN/report.html (metrics with intervals, calibration, misclassified texts with token attributions).")] = True,
    max_params: Annotated[Optional[float], typer.Option(metavar="N", help="--model auto: limit on encoder parameters (a whole number; 3e6 is 3000000).")] = None,
    max_size_mb: Annotated[Optional[float], typer.Option(help="--model auto: limit on fp32 weights size in MB.")] = None,
    max_latency_ms: Annotated[Optional[float], typer.Option(help="--model auto: limit on batch-1 latency p50 on this device, in ms.")] = None,
    max_memory_mb: Annotated[Optional[float], typer.Option(help="--model auto: limit on peak memory of a batch-1 forward, in MB.")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue an interrupted finetune/lora run folder from its last checkpoint (other options are read from it).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Transfer a BERT-family encoder to labelled texts (sentiment, topics...), evaluate it, save the run (and its report)."""
    from ..text import fit_text, text_finetune_defaults

    if data is None and resume is None:
        _fail(TransferKitError("missing DATA file (or --resume RUN). See `transferkit fit-text --help`."))
    out = resume or out or Path("runs") / f"{data.resolve().stem}-{Path(model).name}-{strategy}"
    try:
        if resume is not None:
            refuse_options_beside_resume(ctx, resume, keep=("resume", "quiet"))
            result = fit_text(resume=resume, progress=not quiet)
        else:
            ft = None
            if strategy in ("finetune", "lora") and any(v is not None for v in (epochs, lr, batch_size, wise_ft)):
                update = {k: v for k, v in (("epochs", epochs), ("lr", lr), ("batch_size", batch_size), ("wise_alpha", wise_ft)) if v is not None}
                ft = text_finetune_defaults(strategy).model_copy(update=update)
            result = fit_text(data, model=model, strategy=strategy, cv=cv, test=test, out=out, save_final=final, progress=not quiet,
                              text_col=text_col, label_col=label_col, weights=weights, max_length=max_length, seed=seed,
                              positive=positive, encoding=encoding, device=device, finetune=ft, report=report, max_params=max_params,
                              max_size_mb=max_size_mb, max_latency_ms=max_latency_ms, max_memory_mb=max_memory_mb)
    except TransferKitError as exc:  # TrainingInterrupted (Ctrl-C in training) too: its message says how to resume
        _fail(exc)
    except ValidationError as exc:  # pydantic validation of the options
        _fail(_option_error(exc))
    except ValueError as exc:  # any other bad value: one line, not a traceback
        _fail(TransferKitError(str(exc).splitlines()[0]))
    except KeyboardInterrupt:  # outside the training loop: no new checkpoint, the last one (if any) still counts
        can_resume = (out / "config.json").is_file() and (resume is not None or strategy != "linear-probe")
        from ..launch import is_main_process

        if is_main_process():  # under `accelerate launch` every process is interrupted: the main one says so
            err.print("[bold red]interrupted[/]" + (f"; continue with: transferkit fit-text --resume {out}" if can_resume else ""))
        raise typer.Exit(code=130) from None
    cfg = result.config
    model, strategy, cv, data = cfg.backbone, cfg.strategy, cfg.cv, cfg.data  # with --resume, the run's own options
    from ..launch import is_main_process

    if not is_main_process():  # under `accelerate launch`, one process prints
        return
    m = result.metrics
    if "selection" in m:
        model = m["selection"]["chosen"]
        console.print(f"--model auto chose [bold]{model}[/] (ranking of the text encoders on the training texts" +
                      (f"; {out}/ranking.json)" if m["selection"]["ranking"] else ")"))
    _print_text_data_notes(m.get("data", {}))
    if "cv" in m:
        table = Table(title=f"{model} {strategy} on {data.name}: {cv}-fold CV", header_style="bold")
        for c in ("metric", "mean", "± std", "per fold"):
            table.add_column(c, justify="left" if c in ("metric", "per fold") else "right")
        for key in ("accuracy", "balanced_accuracy", "macro_f1", "roc_auc", "cpu_s"):
            if m["cv"].get(key):
                v = m["cv"][key]
                table.add_row(key.replace("_", " "), f"{v['mean']:.3f}", f"{v['std']:.3f}", " ".join(f"{x:.3f}" if key != "cpu_s" else f"{x:.0f}" for x in v["values"]))
        console.print(table)
    else:
        table = Table(title=f"{model} {strategy} on {data.name}", header_style="bold")
        for c in ("split", "n", "accuracy", "balanced acc", "macro F1", "ROC-AUC"):
            table.add_column(c, justify="right" if c != "split" else "left")
        for s in ("val", "test"):
            x = m[s]
            table.add_row(s, str(x["num_samples"]), f"{x['accuracy']:.3f}", f"{x['balanced_accuracy']:.3f}", f"{x['macro_f1']:.3f}",
                          f"{x['binary']['roc_auc']:.3f}" if "binary" in x else "-")
        console.print(table)
    wise = (m.get("training") or (m.get("final_model") or {}).get("training") or {}).get("wise_ft")
    if wise:  # the epoch lines above are the fine-tuned weights' own; the saved model is the mix
        console.print(f"WiSE-FT: the saved model is {1 - wise['alpha']:g} x the weights before fine-tuning + {wise['alpha']:g} x the "
                      "fine-tuned ones (the epoch lines above score the fine-tuned weights alone)", soft_wrap=True)
    saved = f"saved: {out}/model (config.json, model.safetensors, tokenizer)" if result.model is not None else f"saved: {out}/metrics.json (no final model)"
    w = result.model.backbone.weights_record if result.model is not None else {}
    t = m["timing_s"]
    console.print(Panel.fit(
        (f"weights: {w.get('source')}" + (f" sha256 {w['sha256'][:16]}…" if w.get("sha256") else "") + "\n" if w else "")
        + f"embeddings: {t['embeddings_computed']} computed, {t['embeddings_cached']} from cache; "
        f"{t['total_wall']:.0f} s wall, {t['total_cpu']:.0f} s CPU\n{saved}\n"
        + (f"next: transferkit predict-text {out} \"some text\"" if result.model is not None else ""),
        title="run",
    ))
    if "report" in m:
        for w in m["report"]["warnings"]:
            err.print(f"[yellow]warning:[/] {w}")
        console.print(f"report: {m['report']['path']}", soft_wrap=True)
    elif (m.get("calibration") or {}).get("note"):  # the report would have shown it among its warnings
        err.print(f"[yellow]warning:[/] temperature scaling {escape(m['calibration']['note'])}")


@app.command("evaluate-text", epilog="Example: transferkit evaluate-text runs/amazon-lp reviews/yelp_labelled.txt --json")
def evaluate_text_cmd(
    model: Annotated[Path, typer.Argument(help="Run folder or text model folder.")],
    data: Annotated[Path, typer.Argument(help="Labelled texts (.csv/.tsv/.jsonl/.txt).")],
    text_col: Annotated[Optional[str], typer.Option(help="Text column (default: detected).")] = None,
    label_col: Annotated[Optional[str], typer.Option(help="Label column (default: detected).")] = None,
    encoding: Annotated[str, typer.Option(help="Text encoding of the file.")] = "utf-8",
    threshold: Annotated[Optional[float], typer.Option(help="Binary models: decision threshold on the calibrated P(positive) (default: the model's).")] = None,
    include_training_texts: Annotated[bool, typer.Option("--include-training-texts", help=(
        "Also score texts the run trained or validated on (left out by default: RUN/splits.json lists them by their "
        "normalised text, so copies that differ only in case, punctuation or spacing count too)."))] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print metrics as JSON.")] = False,
) -> None:
    """Evaluate a saved text model on a labelled file (rows with unknown labels are skipped and listed).

    Texts the run trained or validated on are left out and counted, so `evaluate-text RUN FILE` on the file RUN was
    fitted on scores its held-out texts only.
    """
    model = model.expanduser()  # a quoted or --opt=~/x path: the shell left the ~
    from ..text import evaluate_text

    try:
        metrics = evaluate_text(model, data, text_col=text_col, label_col=label_col, encoding=encoding, threshold=threshold,
                                include_training_texts=include_training_texts)
    except TransferKitError as exc:
        _fail(exc)
    if as_json:
        console.print_json(dumps_strict(metrics, indent=None))
        return
    if metrics.get("label_merges"):
        from ..data.text import describe_label_merges

        err.print(f"[yellow]labels merged[/] into the model's classes (case or leading zeros aside): "
                  f"{escape(describe_label_merges(metrics['label_merges']))}", soft_wrap=True)
    if metrics["skipped"]:
        err.print(f"[yellow]skipped {len(metrics['skipped'])} row(s)[/] (e.g. {metrics['skipped'][0]['where']}: {metrics['skipped'][0]['reason']})")
    if metrics.get("training_record"):
        err.print(f"[yellow]note:[/] {metrics['training_record']}.")
    if metrics["excluded_training_texts"]:
        err.print(f"[yellow]left out {metrics['excluded_training_texts']} text(s) this run trained on (train/val, same words ignoring "
                  f"case and punctuation); scored the other {metrics['num_samples']}. --include-training-texts scores them all.[/]")
    undefined = metrics.get("undefined") or {}  # a class missing from the file: these metrics have no value (NaN), and why
    auc = ""
    if "binary" in metrics:
        auc = ", ROC-AUC " + ("undefined" if metrics["binary"]["roc_auc"] != metrics["binary"]["roc_auc"] else f"{metrics['binary']['roc_auc']:.3f}")
    console.print(f"{data.name}: accuracy {metrics['accuracy']:.3f}, balanced accuracy {metrics['balanced_accuracy']:.3f}, "
                  f"macro F1 {metrics['macro_f1']:.3f}" + auc + f" (n={metrics['num_samples']})")
    for name, why in undefined.items():
        label = {"roc_auc": "ROC-AUC", "roc_auc_ovr_macro": "one-vs-rest ROC-AUC"}.get(name, name.replace("_", " "))
        err.print(f"[yellow]{label} undefined:[/] {escape(why.replace('in this split', f'in {data.name}'))}", soft_wrap=True)


def read_text_inputs(texts: list[str] | None, file: Path | None, text_col: str | None, encoding: str = "utf-8") -> list[str]:
    """Texts to classify from the arguments, ``--file`` (one per line, or a .csv/.jsonl column) and stdin
    ('-', or nothing with piped input); shared by ``predict-text`` and ``predict`` on text models. Rows of the file that
    cannot be parsed are left out and reported on stderr (count, first lines)."""
    # under a non-UTF-8 locale (LC_ALL=C) Python keeps the bytes of non-ASCII arguments as lone surrogates, which the
    # tokenizer refuses with a TypeError: recover the UTF-8 the terminal sent (undecodable bytes become U+FFFD)
    items = [t.encode(sys.getfilesystemencoding(), "surrogateescape").decode("utf-8", "replace") for t in (texts or []) if t != "-"]
    for t in items:  # a file name given as a text: it was classified as the string itself
        try:
            is_file = Path(t).expanduser().is_file()
        except (OSError, ValueError):  # a text too long to be a path, or with a NUL
            is_file = False
        if is_file:
            raise TransferKitError(f"'{t}' is a file, and the arguments after the model are classified as texts themselves. "
                                   f"To classify the texts in it, pass `--file {t}` (one text per line, or a .csv/.tsv/.jsonl "
                                   "text column); to classify the words themselves, give them on stdin.")
    if file is not None:
        from ..data.text import read_texts

        skipped: list = []
        notes: list[str] = []
        from_file = read_texts(file, text_col=text_col, encoding=encoding, skipped=skipped, notes=notes)
        items += from_file
        for note in notes:
            err.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
        if skipped:
            shown = "; ".join(f"{s.where}: {s.reason}" for s in skipped[:3])
            err.print(f"[yellow]skipped {len(skipped)} row(s) of {file} that could not be parsed[/] (not in the results below): {shown}")
        if not from_file:
            raise TransferKitError(f"'{file}' has no texts to classify" + (f": all {len(skipped)} row(s) were skipped" if skipped else "")
                                   + ".")
    if (texts and "-" in texts) or (not items and file is None and not sys.stdin.isatty()):
        # a UTF-8 byte-order mark (Windows tools write one) is not part of the first text
        items += [line.rstrip("\r") for line in sys.stdin.read().lstrip("\ufeff").split("\n") if line.strip()]
    if not items:
        raise TransferKitError("no texts given: pass them as arguments, with --file FILE, or on stdin ('-').")
    return items


def print_text_results(results: list[dict], as_json: bool) -> None:
    """One row (or JSON object) per text; exit code 1 when some text could not be classified."""
    if as_json:
        console.print_json(json.dumps(results))
    else:
        table = Table(show_header=True, header_style="bold")
        table.add_column("text", overflow="fold")
        table.add_column("label")
        table.add_column("probability", justify="right")
        for r in results:
            if "error" in r:
                table.add_row(repr(r["text"][:80]), "[red]error[/]", r["error"])
            else:
                table.add_row(r["text"][:120], r["label"], f"{r['probabilities'][r['label']]:.3f}")
        console.print(table)
    if any("error" in r for r in results):
        raise typer.Exit(code=1)


@app.command("predict-text", epilog="Examples:\n\n"
             "transferkit predict-text runs/amazon-lp \"Great phone, battery lasts for days\" \"Broke after a week\"\n\n"
             "transferkit predict-text runs/amazon-lp --file reviews.txt --json\n\n"
             "cat reviews.txt | transferkit predict-text runs/amazon-lp -\n\n"
             "transferkit predict-text exports/amazon-int8 \"Great phone\"   (an export: onnxruntime + tokenizers, no torch)")
def predict_text_cmd(
    model: Annotated[Path, typer.Argument(help="Run folder or text model folder, or a text export folder (`transferkit export`).")],
    texts: Annotated[Optional[list[str]], typer.Argument(help="Texts to classify; '-' (or nothing, with piped input) reads stdin, one text per line.")] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", help="A file of texts: one per line, or a .csv/.jsonl column.")] = None,
    text_col: Annotated[Optional[str], typer.Option(help="Text column of a .csv/.jsonl --file.")] = None,
    encoding: Annotated[str, typer.Option(help="Text encoding of --file.")] = "utf-8",
    threshold: Annotated[Optional[float], typer.Option(help="Binary models: decision threshold on the calibrated P(positive) (default: the model's).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (one object per text).")] = False,
) -> None:
    """Classify texts given as arguments, in a file, or on stdin."""
    model = model.expanduser()  # a quoted or --opt=~/x path: the shell left the ~
    from ..runtime import predict_texts  # export folders run on onnxruntime; model folders on PyTorch

    try:
        results = predict_texts(model, read_text_inputs(texts, file, text_col, encoding), threshold=threshold)
    except TransferKitError as exc:
        _fail(exc)
    print_text_results(results, as_json)
