"""The `transferkit` command line: thin commands over the Python API."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from ..config import DEFAULT_FEATURE_STAGES, MAX_FEATURE_STAGES, FinetuneConfig
from ..errors import TransferKitError
from ..json_files import dumps_strict

app = typer.Typer(
    name="transferkit",
    help="Choose a pretrained model and transfer it to your small labelled data set.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)


def _version_callback(value: bool) -> None:
    if value:
        from .. import __version__

        console.print(f"transferkit {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version and exit.")] = None,
) -> None:
    """transferkit: frozen-base and fine-tuned transfer learning for small data sets."""


def _fail(exc: Exception) -> None:
    from ..launch import is_main_process

    loud = is_main_process()  # under `accelerate launch`, every process fails alike: the main one says so
    if isinstance(exc, KeyboardInterrupt):  # TrainingInterrupted: Ctrl-C, checkpoint saved; exit as an interrupted program does
        if loud:
            err.print(f"[yellow]interrupted:[/] {escape(str(exc))}")
        raise typer.Exit(code=130) from None
    if loud:  # escaped: a class name or path such as "[bold]" or "x[1].png" is text, not rich markup to drop
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
    raise typer.Exit(code=1) from None


def refuse_options_beside_resume(ctx: typer.Context, resume: Path, keep: tuple[str, ...]) -> None:
    """``--resume RUN`` takes every option from RUN/config.json: one typed on the command line (other than ``keep``)
    would be silently ignored, so it is refused."""
    # by name: typer ships its own copy of click, whose ParameterSource is not click's
    given = [f"--{p.replace('_', '-')}" for p in ctx.params
             if p not in keep and getattr(ctx.get_parameter_source(p), "name", "") == "COMMANDLINE"]
    if given:
        raise TransferKitError(f"--resume continues the run with the options it started with ({resume}/config.json), so "
                               f"{', '.join(given)} would be ignored. Resume without them, or start a new run with them.")


def _option_error(exc: Exception) -> TransferKitError:
    """A pydantic ValidationError of the run's config, in the CLI's words: the option, the value given, what is wrong."""
    e = exc.errors()[0]
    msg = e["msg"].removeprefix("Value error, ").rstrip(".")
    return TransferKitError(f"invalid option {'.'.join(map(str, e['loc']))}={e.get('input')!r}: {msg}.")


def _metrics_table(metrics: dict, title: str) -> Table:
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("split", no_wrap=True, min_width=max(len(str(k)) for k in metrics))
    cols = ["accuracy", "balanced_accuracy", "macro_f1"]
    binary = any("binary" in m for m in metrics.values())
    table_cols = cols + (["roc_auc", "sensitivity", "specificity"] if binary else [])
    for c in table_cols:
        table.add_column(c.replace("_", " "), justify="right")
    for split, m in metrics.items():
        row = [f"{m[c]:.3f}" for c in cols]
        if binary:
            b = m["binary"]
            row += [f"{b['roc_auc']:.3f}", f"{b['sensitivity']:.3f}", f"{b['specificity']:.3f}"]
        table.add_row(split, *row)
    return table


def _print_data_notes(summary: dict) -> None:
    if summary.get("num_skipped"):
        reasons = ", ".join(f"{n} {r}" for r, n in summary["skipped_by_reason"].items())
        err.print(f"[yellow]skipped {summary['num_skipped']} file(s):[/] {reasons} (listed in config.json)")
    for d in summary.get("cross_split_duplicates", [])[:5]:
        err.print(f"[yellow]leakage warning:[/] identical files in {d['a_split']} and {d['b_split']}: {d['a']} == {d['b']}")
    n = len(summary.get("cross_split_duplicates", []))
    if n > 5:
        err.print(f"[yellow]... and {n - 5} more identical cross-split pairs[/]")
    from ..data.folder import describe_conflicting_labels

    for line in describe_conflicting_labels(summary):
        err.print(f"[yellow]conflicting labels:[/] {escape(line)}")
    groups = summary.get("groups")
    if groups and groups["num_unmatched"]:
        rule = groups.get("rule") or f"pattern '{groups.get('pattern')}'"  # run folders from before groups files
        err.print(f"[yellow]subjects:[/] {groups['num_unmatched']} file(s) not named by the {escape(rule)}; each is its own subject")
    if groups and groups["num_subjects_in_two_splits"]:
        shown = ", ".join(f"{escape(s['subject'])} ({'/'.join(s['splits'])})" for s in groups["subjects_in_two_splits"][:5])
        more = groups["num_subjects_in_two_splits"] - min(5, len(groups["subjects_in_two_splits"]))
        err.print(f"[yellow]leakage warning:[/] {groups['num_subjects_in_two_splits']} subject(s) have images in two splits: {shown}"
                  + (f" and {more} more" if more > 0 else "") + " (listed in config.json)")


@app.command(
    epilog="Examples:\n\n"
    "transferkit fit data/pneumonia --model mobilenet_v2 --positive PNEUMONIA --out runs/pneu-mnv2\n\n"
    "transferkit fit data/plants --strategy auto --unfreeze last:8 --out runs/plants   (LP, then fine-tune; keep it unless validation shows it worse)\n\n"
    "transferkit fit data/plants --model tf_efficientnet_lite0 --train-views 4 --out runs/plants-lite0   (head also trained on 4 augmented copies per image)\n\n"
    "transferkit fit --resume runs/plants   (after a crash, kill -9 or Ctrl-C)\n\n"
    "accelerate launch --num_processes 2 -m transferkit fit data/plants --strategy finetune --out runs/plants   (several GPUs)",
)
def fit(
    ctx: typer.Context,
    data: Annotated[Optional[Path], typer.Argument(help="Image folder: train/ + test/ [+ val/], or one sub-folder per class.")] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Backbone name (see `transferkit models`).")] = "mobilenet_v2",
    weights: Annotated[str, typer.Option(help="'auto' (offline first), 'none' (random init) or a .pth/.safetensors file.")] = "auto",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Run folder to write (default: runs/<data>-<model>).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of splits, initialisation and training.")] = 0,
    groups: Annotated[Optional[str], typer.Option("--groups", metavar="PATTERN", help=(
        "Regular expression searched in file names; its first group is the subject (patient, leaf), kept on one side of every "
        "carved split. Kermany chest X-rays: --groups '(person\\d+)_|(IM-\\d+)-'."))] = None,
    groups_file: Annotated[Optional[Path], typer.Option("--groups-file", metavar="CSV", help=(
        "Instead of --groups: a CSV table of file -> subject, for subjects that live in metadata (a patient id). Columns 'file' "
        "(relative to DATA, or a bare file name) and 'subject'; 'path', 'image', 'Image Index', 'patient', 'Patient ID'... "
        "are understood too."))] = None,
    positive: Annotated[Optional[str], typer.Option(help="Positive class of a binary task (sensitivity/specificity). Default: the second class.")] = None,
    hidden_dim: Annotated[str, typer.Option(help="Width of the head's hidden layer; 0 = a single Dense layer; auto = the better of "
                                                 "0 and 256 by 5-fold CV on train + val (grouped with --groups).")] = "auto",
    dropout: Annotated[float, typer.Option(help="Dropout in the head.")] = 0.3,
    epochs: Annotated[int, typer.Option(help="Maximum head epochs (early stopping on validation loss).")] = 200,
    batch_size: Annotated[int, typer.Option(help="Batch size for feature extraction.")] = 32,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    cache_dir: Annotated[Optional[Path], typer.Option(help="Feature cache folder (default: $TRANSFERKIT_CACHE/features, else ~/.cache/transferkit/features).")] = None,
    strategy: Annotated[str, typer.Option(help="linear-probe (frozen base), finetune (LP, then unfreeze) or auto (fine-tuned unless validation shows it worse).")] = "linear-probe",
    auto_rule: Annotated[str, typer.Option(help="How --strategy auto decides: 'finetune-unless-worse' (default: keep the fine-tuned model unless a paired "
                                                "bootstrap interval shows a higher validation loss than the probe's) or 'lower-val-loss'.")] = "finetune-unless-worse",
    unfreeze: Annotated[str, typer.Option(help="Fine-tuning: 'all' or 'last:N' backbone blocks.")] = "all",
    ft_epochs: Annotated[Optional[int], typer.Option("--ft-epochs", help="Fine-tuning: maximum epochs (default 6; early stopping, patience 3).")] = None,
    ft_lr: Annotated[Optional[float], typer.Option("--ft-lr", help="Fine-tuning: LR of the head (default 1e-4); the last unfrozen block gets lr*0.8, the k-th from the end lr*0.8^k.")] = None,
    augment: Annotated[bool, typer.Option("--augment/--no-augment", help="Augment training images (crop, flip, rotation, colour) when fine-tuning or with --train-views.")] = True,
    crop_scale: Annotated[float, typer.Option(help="Augmentation (fine-tuning, --train-views): RandomResizedCrop keeps at least this share of the area.")] = 0.7,
    hflip: Annotated[float, typer.Option(help="Augmentation (fine-tuning, --train-views): probability of a horizontal flip (0 for images with a handedness).")] = 0.5,
    rotation: Annotated[float, typer.Option(help="Augmentation (fine-tuning, --train-views): random rotation range, +/- degrees.")] = 10.0,
    color_jitter: Annotated[float, typer.Option(help="Augmentation (fine-tuning, --train-views): brightness/contrast/saturation jitter (0 = off).")] = 0.2,
    balance: Annotated[str, typer.Option(help="Fine-tuning: class imbalance via 'weights' (weighted loss), 'sampler' (balanced sampler) or 'none'.")] = "weights",
    tta: Annotated[str, typer.Option(help="Test-time views: 'flips' averages each image's features over itself, its two mirror images and its "
                                          "transpose (4x the cost of features, evaluation, predict and export); 'none' (default).")] = "none",
    train_views: Annotated[str, typer.Option("--train-views", metavar="N|auto", help="Frozen-base head: also train on the features of N augmented "
                                             "copies of each training image (the augmentation options above; cached). 0 = off (default); "
                                             "auto = 4 copies if the head's CV inside train + val scores them higher than the images alone.")] = "0",
    feature_stages: Annotated[int, typer.Option("--stages", min=1, max=MAX_FEATURE_STAGES, help="Pool and concatenate the outputs of the backbone's last K "
                                                "stages (default 3; 1 = the last only); mid-level features help images far from ImageNet.")] = DEFAULT_FEATURE_STAGES,
    wise_ft: Annotated[Optional[float], typer.Option("--wise-ft", min=0.0, max=1.0, metavar="ALPHA", help=(
        "Fine-tuning: keep (1 - ALPHA) x the weights fine-tuning started from + ALPHA x the fine-tuned ones (WiSE-FT, "
        f"Wortsman et al. 2022). Default {FinetuneConfig.model_fields['wise_alpha'].default:g} (chosen on validation loss, "
        "bench/RESULTS.md); 1 = the fine-tuned weights alone."))] = None,
    freeze_bn: Annotated[bool, typer.Option("--freeze-bn/--train-bn", help="Fine-tuning: keep all BatchNorm statistics frozen (default), or update those of unfrozen blocks.")] = True,
    resume: Annotated[Optional[Path], typer.Option(help="Continue an interrupted run folder from its last checkpoint (other options are read from it).")] = None,
    seeds: Annotated[int, typer.Option(min=1, help="Run this many seeds (seed, seed+1, ...) into OUT/seed-K and report mean ± std.")] = 1,
    max_params: Annotated[Optional[float], typer.Option(metavar="N", help="--model auto: largest parameter count allowed (a whole number; 3e6 is 3000000).")] = None,
    max_size_mb: Annotated[Optional[float], typer.Option(help="--model auto: largest weights size (MB).")] = None,
    max_latency_ms: Annotated[Optional[float], typer.Option(help="--model auto: largest batch-1 latency on this device (ms, p50).")] = None,
    max_memory_mb: Annotated[Optional[float], typer.Option(help="--model auto: largest peak inference memory (MB).")] = None,
    report: Annotated[bool, typer.Option("--report/--no-report", help="Write RUN/report.html at the end (intervals, calibration, Grad-CAM).")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Train a new head on a frozen pretrained backbone (and optionally fine-tune it), evaluate, and save the run.

    --model auto ranks the offline backbones on your training images under the --max-* limits
    (see `transferkit rank`) and fits the top one.
    """
    from pydantic import ValidationError

    from ..api import fit as api_fit

    if data is None and resume is None:
        _fail(TransferKitError("missing DATA folder (or --resume RUN). See `transferkit fit --help`."))
    if resume is not None:
        out = resume
    out = out or Path("runs") / f"{data.resolve().name}-{model}"
    kwargs = dict(model=model, weights=weights, positive=positive, hidden_dim=hidden_dim, groups=groups, groups_file=groups_file,
                  dropout=dropout, epochs=epochs, batch_size=batch_size, device=device, cache_dir=cache_dir, progress=not quiet,
                  strategy=strategy, unfreeze=unfreeze, finetune_epochs=ft_epochs, finetune_lr=ft_lr,
                  augment={"enabled": augment, "crop_scale_min": crop_scale, "hflip": hflip, "rotation": rotation,
                           "color_jitter": color_jitter},
                  balance=balance, freeze_bn=freeze_bn, max_params=max_params, max_size_mb=max_size_mb,
                  max_latency_ms=max_latency_ms, max_memory_mb=max_memory_mb, report=report, tta=tta,
                  feature_stages=feature_stages, auto_rule=auto_rule, train_views=train_views, wise_alpha=wise_ft)
    if seeds > 1 and resume is None:
        _fit_seeds_command(data, out, list(range(seed, seed + seeds)), kwargs)
        return
    try:
        if resume is not None:
            refuse_options_beside_resume(ctx, resume, keep=("data", "resume", "out", "quiet", "report"))  # DATA: a moved folder
            typed = getattr(ctx.get_parameter_source("report"), "name", "") == "COMMANDLINE"
            result = api_fit(data, resume=resume, progress=not quiet, report=report if typed else None)  # else: as the run started
        else:
            result = api_fit(data, out=out, seed=seed, **kwargs)
    except TransferKitError as exc:
        _fail(exc)
    except ValidationError as exc:
        _fail(_option_error(exc))
    from ..launch import is_main_process

    if not is_main_process():  # under `accelerate launch`, one process prints
        return
    _print_data_notes(result.metrics["data"])
    name = Path(result.config.data.root).name
    val_label = "val (OOF)" if "refit" in result.metrics["training"] else "val"
    console.print(_metrics_table({val_label: result.metrics["val"], "test": result.metrics["test"]}, f"{result.config.backbone} on {name}"))
    w = result.model.backbone.weights_record
    t = result.metrics["timing_s"]
    tr = result.metrics["training"]
    from ..training.head_selection import describe_refit, describe_train_views

    lines = [
        f"weights: {w['source']}" + (f" sha256 {w['sha256'][:16]}…" if w.get("sha256") else ""),
        f"strategy: {tr.get('chosen', 'linear-probe')}" + (f" ({tr['selection']}: requested {tr['requested']})" if tr.get("selection", "").startswith("auto") else "")
        + (f"; {describe_refit(tr['refit'])}" if "refit" in tr
           else f"; logistic regression, C={tr['C']:g} (lowest val loss)" if tr.get("best_epoch") is None and "C" in tr
           else f"; best epoch {tr['best_epoch']} of {tr['epochs_run']}"),
        f"features: {t['features_computed']} computed, {t['features_cached']} from cache; {t['total']:.1f} s in all",
    ]
    if "head_selection" in tr:
        from ..training.head_selection import describe_head_choice

        lines.insert(2, "head: " + describe_head_choice(tr["head_selection"]))
    if result.config.tta != "none":
        lines.append(f"test-time views: {result.config.tta} (features averaged over 4 views; every forward pass outside training costs 4x)")
    if "wise_ft" in tr:
        from ..training.weight_interpolation import describe_wise_ft

        lines.append("WiSE-FT: " + describe_wise_ft(tr["wise_ft"]))
    if "from_scratch" in tr:
        from ..training.finetune import describe_from_scratch

        lines.append("from scratch: " + describe_from_scratch(tr["from_scratch"]))
    if "train_views" in tr:
        lines.append("training copies: " + describe_train_views(tr["train_views"]))
    if result.config.feature_stages > 1:
        lines.append(f"feature stages: last {result.config.feature_stages} pooled and concatenated ({result.model.backbone.num_features} features)")
    if "stages" in result.metrics:
        st = result.metrics["stages"]
        lines.append("val accuracy: linear probe {:.3f}, fine-tuned {:.3f}".format(st["linear_probe"]["val"]["accuracy"], st["finetune"]["val"]["accuracy"]))
    if "auto" in tr:
        from ..training.finetune import describe_auto_choice

        lines.append("auto: " + describe_auto_choice(tr["auto"]))
    if (out / "ranking.json").is_file():
        lines.append(f"chosen by ranking: {result.config.backbone} (evidence in {out}/ranking.json)")
    if "report" in result.metrics:
        for warning in result.metrics["report"]["warnings"]:
            err.print(f"[yellow]warning:[/] {warning}")
        lines.append(f"report: {result.metrics['report']['path']}")
    elif (result.metrics.get("calibration") or {}).get("note"):  # the report would have shown it among its warnings
        err.print(f"[yellow]warning:[/] temperature scaling {escape(result.metrics['calibration']['note'])}")
    lines += [f"saved: {out}/model  (metrics.json, config.json beside it)", f"next: transferkit predict {out} IMAGE…"]
    console.print(Panel.fit("\n".join(lines), title="run"))


def _fit_seeds_command(data: Path, out: Path, seeds: list[int], kwargs: dict) -> None:
    from pydantic import ValidationError

    from ..api import fit_seeds

    try:
        result = fit_seeds(data, seeds=seeds, out=out, **kwargs)
    except TransferKitError as exc:
        _fail(exc)
    except ValidationError as exc:
        _fail(_option_error(exc))
    from ..launch import is_main_process

    if not is_main_process():  # under `accelerate launch`, one process prints
        return
    table = Table(title=f"{result.runs[0].config.backbone} on {data.name}: mean ± std over seeds {seeds}", header_style="bold")
    table.add_column("metric")
    for split in ("val", "test"):
        table.add_column(split, justify="right")
    names = [n for n in result.summary.get("test", {})]
    for n in names:
        table.add_row(n.replace("_", " "), *(f"{result.summary[s][n]['mean']:.3f} ± {result.summary[s][n]['std']:.3f}"
                                               if n in result.summary.get(s, {}) else "-" for s in ("val", "test")))
    console.print(table)
    console.print(f"saved: {out}/seed-*/ and {out}/seeds.json")


@app.command(epilog="Example: transferkit evaluate runs/pneu-mnv2 data/pneumonia/test --json")
def evaluate(
    model: Annotated[Path, typer.Argument(help="Run folder or model folder.")],
    data: Annotated[Path, typer.Argument(help="Folder with one sub-folder per class (or a root with test/).")],
    positive: Annotated[Optional[str], typer.Option(help="Positive class for sensitivity/specificity.")] = None,
    threshold: Annotated[Optional[float], typer.Option(help="Decision threshold on P(positive) (default: the model's).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print metrics as JSON.")] = False,
    include_training_images: Annotated[bool, typer.Option("--include-training-images", help=(
        "Also score images the run trained on (left out by default: RUN/splits.json lists them by content hash)."))] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Evaluate a saved model on a labelled image folder.

    Images the run was trained on (its train and val splits, copies included) are left out and
    counted, so `evaluate RUN DATA` on the folder RUN was fitted on scores its held-out images only.
    """
    model = model.expanduser()  # a quoted or --opt=~/x path: the shell left the ~
    if _is_text_model(model):
        _fail(TransferKitError(f"'{model}' is a text model (fit-text): evaluate it on a labelled text file with "
                               f"`transferkit evaluate-text {model} {data}`."))
    from ..api import evaluate as api_evaluate

    try:
        metrics = api_evaluate(model, data, positive=positive, threshold=threshold, progress=not (quiet or as_json),
                               include_training_images=include_training_images)
    except TransferKitError as exc:
        _fail(exc)
    if as_json:
        console.print_json(dumps_strict(metrics, indent=None))
        return
    if metrics["skipped"]:  # in fit's words: counted by reason (hidden/system files are not "unreadable")
        from ..data.folder import skip_reason_counts

        reasons = skip_reason_counts(s["reason"] for s in metrics["skipped"])
        err.print(f"[yellow]skipped {len(metrics['skipped'])} file(s):[/] {escape(', '.join(f'{n} {r}' for r, n in reasons.items()))} "
                  "(listed with --json)")
    if metrics.get("training_record"):
        err.print(f"[yellow]note:[/] {metrics['training_record']}.")
    if metrics["excluded_training_images"]:
        err.print(f"[yellow]left out {metrics['excluded_training_images']} image(s) this run trained on (train/val, by content); "
                  f"scored the other {metrics['num_samples']}. --include-training-images scores them all.[/]")
    console.print(_metrics_table({data.name: metrics}, f"{model}"))


def _is_text_model(model: Path) -> bool:
    """A text export (export.json says so) or a text model/run folder (from `fit-text`)."""
    from ..runtime import EXPORT_CONFIG_NAME, is_export_folder

    if is_export_folder(model):
        try:  # only the modality: what else is wrong with the folder, the predict call reports
            return json.loads((model / EXPORT_CONFIG_NAME).read_text()).get("modality") == "text"
        except (ValueError, OSError, AttributeError):
            return False
    if not model.is_dir():
        return False
    from ..text.model import is_text_model_folder

    return is_text_model_folder(model)


@app.command(epilog="Examples: transferkit predict runs/pneu-mnv2 xray1.jpeg xray2.jpeg --json\n\n"
             "transferkit predict exports/amazon-int8 \"Great phone\" \"Broke after a week\"   (a text model: texts, --file or stdin)")
def predict(
    model: Annotated[Path, typer.Argument(help="Run folder, model folder or export folder (image or text).")],
    items: Annotated[Optional[list[str]], typer.Argument(
        help="Image files or folders of images; for a text model, texts ('-', or nothing with piped input, reads stdin).")] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", help="Text models: a file of texts, one per line, or a .csv/.jsonl column.")] = None,
    text_col: Annotated[Optional[str], typer.Option(help="Text models: the text column of a .csv/.jsonl --file.")] = None,
    encoding: Annotated[str, typer.Option(help="Text models: the text encoding of --file.")] = "utf-8",
    threshold: Annotated[Optional[float], typer.Option(help="Binary models: decide 'positive' when its calibrated probability is at "
                                                       "least this (e.g. a report's operating point; default: the model's own).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (one object per image or text).")] = False,
) -> None:
    """Predict the class of image files, or of texts with a text model (export folders need no torch)."""
    model = model.expanduser()  # a quoted or --opt=~/x path: the shell left the ~
    from ..image_files import list_images
    from ..runtime import predict_files as api_predict  # export folders run on onnxruntime; model folders on PyTorch

    if not model.is_dir():
        _fail(TransferKitError(f"'{model}' is not a folder; expected an export folder (`transferkit export`) "
                               "or a run/model folder (`transferkit fit`, `transferkit fit-text`)."))
    if _is_text_model(model):
        from ..runtime import predict_texts
        from .text_commands import print_text_results, read_text_inputs

        try:
            results = predict_texts(model, read_text_inputs(items, file, text_col, encoding), threshold=threshold)
        except TransferKitError as exc:
            _fail(exc)
        print_text_results(results, as_json)
        return
    if file is not None:
        _fail(TransferKitError(f"--file is for text models; '{model}' is not one. Pass image files or folders."))
    left_out: list[tuple[Path, str]] = []
    files = list_images([Path(p).expanduser() for p in items or []], skipped=left_out)
    if left_out:
        shown = "; ".join(f"{p}: {why}" for p, why in left_out[:3])
        err.print(f"[yellow]left out {len(left_out)} file(s) found in the folders[/] (not in the results): {shown}"
                  + (f"; and {len(left_out) - 3} more" if len(left_out) > 3 else ""))
    if not files:
        _fail(TransferKitError(f"no image files found in {', '.join(items or []) or 'the arguments (none given)'}."))
    try:
        results = api_predict(model, files, threshold=threshold)
    except TransferKitError as exc:
        _fail(exc)
    if as_json:
        console.print_json(json.dumps(results))
    else:
        table = Table(show_header=True, header_style="bold")
        table.add_column("file")
        table.add_column("label")
        table.add_column("probability", justify="right")
        for r in results:
            if "error" in r:
                table.add_row(r["path"], "[red]error[/]", r["error"])
            else:
                table.add_row(r["path"], r["label"], f"{r['probabilities'][r['label']]:.3f}")
        console.print(table)
    if any("error" in r for r in results):
        raise typer.Exit(code=1)


@app.command(epilog="Example: transferkit models --offline")
def models(
    pattern: Annotated[str, typer.Argument(help="Wildcard pattern, e.g. '*mobilenet*'.")] = "*",
    offline: Annotated[bool, typer.Option("--offline", help="Only backbones whose weights are on this machine.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the registered backbones and whether their weights are available right now."""
    from ..backbones import get_backbone_spec, list_backbones

    rows = []
    for name in list_backbones(pattern, offline=offline):
        spec = get_backbone_spec(name)
        available, where = spec.weights_available()
        rows.append({
            "name": name, "library": spec.library, "family": spec.family, "num_features": spec.num_features,
            "num_params": spec.num_params, "imagenet_top1": spec.imagenet_top1, "top1_source": spec.top1_source,
            "modality": spec.modality,
            "input_size": spec.weights.input_size[1] if spec.modality == "image" else None, "tags": list(spec.tags), "weights_available": available, "weights_where": where,
        })
    if as_json:
        console.print_json(json.dumps(rows))
        return
    if not rows:
        err.print(f"[yellow]no registered backbone matches '{pattern}'" + (" with weights on this machine" if offline else "")
                  + "[/]: `transferkit models` lists them all (patterns are shell-style, e.g. '*mobilenet*').")
        raise typer.Exit(code=1)
    table = Table(title="backbones", header_style="bold")
    for c in ("name", "lib", "dim", "params M", "top-1", "input", "weights"):
        table.add_column(c, justify="right" if c in ("dim", "params M", "top-1", "input") else "left", no_wrap=True)
    for r in rows:
        table.add_row(r["name"], r["library"], str(r["num_features"]), f"{r['num_params'] / 1e6:.1f}",
                      f"{r['imagenet_top1']:.1f}" if r["imagenet_top1"] else "-",
                      f"{r['input_size']}px" if r["input_size"] else r["modality"],
                      f"[green]{r['weights_where'].split(' ')[0]}[/]" if r["weights_available"]
                      else "[red]damaged[/]" if r["weights_where"].startswith("damaged") else "[yellow]missing[/]")
    console.print(table)
    for r in rows:
        if r["weights_where"].startswith("damaged"):
            console.print(f"[red]{r['name']}[/]: {r['weights_where'][len('damaged: '):]} (transferkit reads it before other sources).")
    console.print("params M: the published count, with the ImageNet classifier; `rank` and --max-params count the backbone "
                  "without it (the part that is transferred).")
    missing = [r for r in rows if not r["weights_available"] and not r["weights_where"].startswith("damaged")]
    if any(r["modality"] == "image" for r in missing):
        import torch

        console.print("Missing image weights: pass --weights PATH to `fit`, or place torchvision's file in the torch hub cache "
                      f"({Path(torch.hub.get_dir()) / 'checkpoints'}).")
    if any(r["modality"] == "text" for r in missing):
        from ..backbones._weights import _hf_cache_dir

        console.print("Missing text encoders: pass a local Hugging Face model folder to `fit-text --model` or `--weights`, or "
                      f"put the model in the Hugging Face cache ({_hf_cache_dir()}), e.g. with `huggingface-cli download NAME` "
                      "on a machine that is online.")


# Feature modules add their commands to `app` (one module per feature, no edits here needed).
from . import cache_commands, export_commands, rank_commands, report_commands, text_commands  # noqa: E402,F401


_AGAIN = "[yellow]interrupted.[/] Nothing was written; run the same command again."
_CACHED = ("[yellow]interrupted.[/] Run the same command again: the {what} computed so far are in the feature cache and are not "
           "computed twice.")
_INTERRUPTED = {
    "fit": ("[yellow]interrupted.[/] Run the same command again: features computed so far are in the cache (stored every "
            "256 images) and are not computed twice. A fit whose RUN/config.json still says \"running\" also continues with "
            "`transferkit fit --resume RUN`."),
    "fit-text": ("[yellow]interrupted.[/] Run the same command again: text embeddings computed so far are in the cache (stored "
                 "once each split's texts are embedded) and are not computed twice. A finetune or lora run whose "
                 "RUN/config.json still says \"running\" also continues with `transferkit fit-text --resume RUN`."),
    "rank": _CACHED.format(what="features (or text embeddings)"),
    "report": "[yellow]interrupted.[/] The report was not written (the run itself is unchanged); run the same command again.",
    "export": "[yellow]interrupted.[/] The export folder was not finished; run the same command again (with --overwrite if it asks).",
    "benchmark": "[yellow]interrupted.[/] Nothing was measured to the end; run the same command again.",
    "cache": "[yellow]interrupted.[/] Feature spaces already deleted stay deleted; run the same command again for the rest.",
}


def _interrupted_message(argv: list[str] | None = None) -> str:
    """What to say of a Ctrl-C no command handled (e.g. during the imports), in the words of the command on the command
    line (its name is the first argument that is not an option): where work is kept and how to go on, or that nothing was
    written (evaluate, predict, models ...)."""
    command = next((a for a in (sys.argv if argv is None else argv)[1:] if not a.startswith("-")), None)
    return _INTERRUPTED.get(command, _AGAIN)


def _never_fail_on_output() -> None:
    """Under a non-UTF-8 locale (LC_ALL=C, a Windows code page) printing "…" or a CJK class name raised UnicodeEncodeError
    and ended a finished fit with a traceback: characters the terminal cannot show are replaced instead."""
    for stream in (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
        if encoding not in ("utf8", "utf8sig") and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="replace")
            except (ValueError, OSError):  # a stream that cannot be reconfigured: leave it
                pass


def main() -> None:
    from ..launch import is_main_process

    _never_fail_on_output()
    try:
        app()
    except KeyboardInterrupt:  # outside training (which saves a checkpoint and says how to resume): e.g. during feature extraction
        if is_main_process():  # under `accelerate launch` every process is interrupted: the main one says so
            err.print(_interrupted_message())
        sys.exit(130)
    except SystemExit as exc:
        # typer turns a Ctrl-C that no command handled into a silent exit 130; training's own (a checkpoint saved) is
        # handled and said where it happens, so only an unhandled one is said here
        if exc.code == 130 and isinstance(getattr(exc.__context__, "__cause__", None), KeyboardInterrupt) and is_main_process():
            err.print(_interrupted_message())
        raise
    except OSError as exc:  # a path that cannot be read or written (a folder in the way, no permission, a full disk)
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        err.print(f"[bold red]error:[/] {escape(str(exc.strerror or exc))}{escape(where)}. Check the path, its permissions and the free space.")
        sys.exit(1)
