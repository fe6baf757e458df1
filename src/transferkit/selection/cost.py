"""What a backbone costs on the user's own device: latency, throughput, memory, size, compute.

* latency at batch 1, timed in rounds (:func:`interleaved_latencies`): ``num_runs`` timed forwards
  split over ``LATENCY_ROUNDS`` rounds, each after one untimed forward; p50 = the median of the
  rounds' medians, spread = their min-max, p95 over every timed forward. The ranking times its
  candidates together, round-robin (each round times every candidate once, the first one
  rotating), so a slow phase of a shared machine hits them all alike instead of whichever
  candidate was being measured then;
* throughput (images/s) at ``batch_size``;
* peak memory of one batch-1 forward: on CUDA the allocator's peak
  (``torch.cuda.max_memory_allocated``); on CPU the peak of live tensor bytes (weights +
  activations), counted op by op with a torch dispatch mode (CPU allocators keep no peak);
* parameters, state-dict size (fp32, what a saved model weighs) and the weights file's size;
* MACs/FLOPs of one image with torch's own counter, ``torch.utils.flop_counter.FlopCounterMode``.

On CUDA the forwards run under fp16 autocast, as feature extraction does.

Text encoders (:func:`measure_text_cost`) are measured the same way on real inputs: latency on
the *typical* text of the user's data (the one of median length), throughput (texts/s) on a
sample of the user's texts spread over their lengths, run as feature extraction runs them (in
length order, batches padded to their own longest), and FLOPs both at
the typical text's token count and at the encoder's ``max_length`` (the worst case). FLOPs are
counted with eager attention, since torch's counter does not see inside the fused CPU
scaled-dot-product kernel.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ..backbones import Backbone
from ..features import resolve_device


@dataclass(frozen=True)
class CostReport:
    """Measured cost of one backbone on one device (all sizes in MB = 2**20 bytes)."""

    device: str
    input_size: int
    num_params: int
    state_dict_mb: float
    weights_file_mb: float | None
    macs: int
    flops: int
    latency_ms_p50: float
    latency_ms_p95: float
    throughput_img_s: float
    throughput_batch_size: int
    peak_memory_mb: float
    peak_memory_method: str
    latency_ms_spread: tuple[float, float] | None = None  # min-max of the rounds' medians (see interleaved_latencies)
    latency_rounds: int | None = None
    latency_method: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


LATENCY_ROUNDS = 10  # rounds the timed forwards are split into (interleaved across candidates when several are timed)


@dataclass(frozen=True)
class LatencyProbe:
    """A batch-1 forward ready to be timed: ``forward(x)`` (see :func:`interleaved_latencies`)."""

    forward: Callable[[Any], None]
    x: Any


@torch.inference_mode()
def interleaved_latencies(probes: list[LatencyProbe], *, num_runs: int = 20, rounds: int = LATENCY_ROUNDS, warmup_per_round: int = 1,
                          timer: Callable[[], float] = time.perf_counter) -> list[dict[str, Any]]:
    """Batch-1 latency of each probe, timed round-robin so the machine's slow and fast phases hit every probe alike.

    ``num_runs`` timed forwards per probe, split over ``rounds`` rounds; in each round every probe runs
    ``warmup_per_round`` untimed forwards (its weights back in the caches) and then its share of timed ones, the
    probes in turn, the first one rotating from round to round (round r starts with probe r mod n). Per probe:
    ``latency_ms_p50`` = the median of its rounds' medians, ``latency_ms_spread`` = [min, max] of them (how much the
    machine moved it), ``latency_ms_p95`` over all its timed forwards. Same total timed forwards as one block of
    ``num_runs``, plus ``rounds * warmup_per_round`` untimed ones.
    """
    rounds = max(1, min(int(rounds), int(num_runs)))
    per_round = -(-int(num_runs) // rounds)
    n = len(probes)
    times: list[list[list[float]]] = [[[] for _ in range(rounds)] for _ in probes]
    for r in range(rounds):
        for j in range(n):
            i = (r + j) % n
            probe = probes[i]
            for _ in range(warmup_per_round):
                probe.forward(probe.x)
            for _ in range(per_round):
                t0 = timer()
                probe.forward(probe.x)
                times[i][r].append((timer() - t0) * 1000)
    method = (f"median of {rounds} round medians ({per_round} timed batch-1 forwards each, after {warmup_per_round} untimed)"
              + (f", interleaved round-robin with {n - 1} other candidate{'s' if n > 2 else ''}" if n > 1 else ""))
    return [latency_summary(t, method) for t in times]


def latency_summary(rounds_ms: list[list[float]], method: str = "") -> dict[str, Any]:
    """p50 (median of the rounds' medians), p95 (of every run), the spread (min-max of the rounds' medians)."""
    medians = [float(np.median(r)) for r in rounds_ms]
    p50 = float(np.median(medians))
    return {"latency_ms_p50": p50, "latency_ms_p95": max(p50, float(np.percentile([t for r in rounds_ms for t in r], 95))),
            "latency_ms_spread": (min(medians), max(medians)), "latency_rounds": len(medians), "latency_method": method}


class _LiveTensorBytes(TorchDispatchMode):
    """Counts the bytes of tensor storages created by ops while they are alive; keeps the peak."""

    def __init__(self, baseline: int):
        super().__init__()
        self.live = baseline
        self.peak = baseline
        self._storages: dict[int, list[int]] = {}  # data_ptr -> [nbytes, python tensors alive]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self._track(t)
        return out

    def _track(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr == 0:
            return
        entry = self._storages.get(ptr)
        if entry is None:
            entry = self._storages[ptr] = [storage.nbytes(), 0]
            self.live += entry[0]
            self.peak = max(self.peak, self.live)
        entry[1] += 1
        weakref.finalize(t, self._release, ptr)

    def _release(self, ptr: int) -> None:
        entry = self._storages.get(ptr)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] <= 0:
            self.live -= entry[0]
            del self._storages[ptr]


def _tensor_bytes(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))


def _state_dict_mb(module: torch.nn.Module) -> float:
    """What the module's floating-point state dict weighs saved as fp32 (MB)."""
    return sum(t.numel() * 4 for t in module.state_dict().values() if t.is_floating_point()) / 2**20


def _device_forward(dev: torch.device, run: Callable[[Any], Any]) -> Callable[[Any], None]:
    """``run(x)`` as it is measured: under fp16 autocast on CUDA (as feature extraction runs it), waiting for the GPU."""
    use_amp = dev.type == "cuda"

    def forward(x: Any) -> None:
        with torch.autocast(dev.type, dtype=torch.float16, enabled=use_amp):
            run(x)
        if use_amp:
            torch.cuda.synchronize(dev)

    return forward


def _count_flops(forward: Callable[[Any], None], x: Any) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        forward(x)
    return int(counter.get_total_flops())


def _peak_memory(forward: Callable[[Any], None], x: Any, dev: torch.device, resident_bytes: int, what: str) -> tuple[int, str]:
    """Peak bytes of one forward of ``x`` (``resident_bytes``: the weights and ``x`` itself) and how it was measured."""
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        before = torch.cuda.memory_allocated(dev)
        forward(x)
        return (resident_bytes + torch.cuda.max_memory_allocated(dev) - before,
                f"torch.cuda.max_memory_allocated (weights + activations, {what})")
    tracker = _LiveTensorBytes(resident_bytes)
    with tracker:
        forward(x)
    return tracker.peak, f"peak live tensor bytes in a torch dispatch mode (weights + activations, {what})"


def _throughput(forward: Callable[[Any], None], xb: Any, batch_size: int, num_runs: int) -> float:
    """Inputs per second over ``num_runs`` forwards of the batch ``xb`` (after one untimed forward)."""
    forward(xb)
    t0 = time.perf_counter()
    for _ in range(num_runs):
        forward(xb)
    return batch_size * num_runs / (time.perf_counter() - t0)


def _throughput_batches(forward: Callable[[Any], None], batches: list[Any], sizes: list[int]) -> float:
    """Inputs per second over one pass of ``batches`` (``sizes`` inputs each), after one untimed forward of the first."""
    forward(batches[0])
    t0 = time.perf_counter()
    for xb in batches:
        forward(xb)
    return sum(sizes) / (time.perf_counter() - t0)


@torch.inference_mode()
def prepare_cost(backbone: Backbone, *, device: str = "auto", batch_size: int = 16, num_warmup: int = 3,
                 num_throughput_runs: int = 3) -> tuple[dict[str, Any], LatencyProbe]:
    """Everything of :func:`measure_cost` but the latency (size, FLOPs, peak memory, throughput), and the batch-1
    forward to time: the ranking times the candidates' probes together (:func:`interleaved_latencies`)."""
    dev = resolve_device(device)
    backbone.eval().to(dev)
    size = int(backbone.data_cfg["input_size"][-1])
    forward = _device_forward(dev, backbone)

    x1 = torch.randn(1, 3, size, size, device=dev)
    flops = _count_flops(forward, x1)
    for _ in range(max(0, num_warmup - 1)):
        forward(x1)

    peak, method = _peak_memory(forward, x1, dev, _tensor_bytes(backbone) + x1.numel() * x1.element_size(), "batch 1")
    throughput = _throughput(forward, torch.randn(batch_size, 3, size, size, device=dev), batch_size, num_throughput_runs)

    path = backbone.weights_record.get("path")
    file_mb = Path(path).stat().st_size / 2**20 if path and Path(path).is_file() else None
    static = dict(device=str(dev), input_size=size, num_params=sum(p.numel() for p in backbone.parameters()),
                  state_dict_mb=_state_dict_mb(backbone), weights_file_mb=file_mb, macs=flops // 2, flops=flops,
                  throughput_img_s=float(throughput), throughput_batch_size=batch_size, peak_memory_mb=peak / 2**20,
                  peak_memory_method=method)
    return static, LatencyProbe(forward, x1)


def measure_cost(backbone: Backbone, *, device: str = "auto", batch_size: int = 16, num_runs: int = 20,
                 num_warmup: int = 3, num_throughput_runs: int = 3) -> CostReport:
    """Measure ``backbone`` on ``device`` (see the module docstring for what each number is)."""
    static, probe = prepare_cost(backbone, device=device, batch_size=batch_size, num_warmup=num_warmup,
                                 num_throughput_runs=num_throughput_runs)
    (latency,) = interleaved_latencies([probe], num_runs=num_runs)
    return CostReport(**static, **latency)


@dataclass(frozen=True)
class TextCostReport:
    """Measured cost of one text encoder on one device (sizes in MB = 2**20 bytes)."""

    device: str
    num_tokens: int  # of the typical text (the latency input)
    max_length: int
    num_params: int
    state_dict_mb: float
    weights_file_mb: float | None
    macs: int  # at num_tokens
    flops: int
    macs_max_length: int  # at max_length
    flops_max_length: int
    latency_ms_p50: float
    latency_ms_p95: float
    throughput_texts_s: float
    throughput_batch_size: int
    peak_memory_mb: float
    peak_memory_method: str
    typical_text: str
    latency_ms_spread: tuple[float, float] | None = None  # min-max of the rounds' medians (see interleaved_latencies)
    latency_rounds: int | None = None
    latency_method: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def typical_text(texts: list[str]) -> str:
    """The text of median length (characters): what "a typical sentence" of this data set is."""
    if not texts:
        raise ValueError("no texts to pick a typical one from.")
    order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), i))
    return texts[order[len(order) // 2]]


@contextmanager
def _eager_attention(encoder) -> Iterator[None]:
    """The encoder with eager attention inside the block (torch's FLOP counter does not see into fused kernels)."""
    before = getattr(encoder.config, "_attn_implementation", None)
    switch = hasattr(encoder, "set_attn_implementation") and before not in (None, "eager")
    if switch:
        encoder.set_attn_implementation("eager")
    try:
        yield
    finally:
        if switch:
            encoder.set_attn_implementation(before)


def measure_text_cost(backbone, texts: list[str], *, device: str = "auto", batch_size: int = 16, num_runs: int = 20,
                      num_warmup: int = 3, num_throughput_runs: int = 3) -> TextCostReport:
    """Measure a :class:`~transferkit.backbones.text.TextBackbone` on ``device`` with the user's ``texts``
    (:func:`prepare_text_cost`, then the latency of its typical text timed in rounds)."""
    static, probe = prepare_text_cost(backbone, texts, device=device, batch_size=batch_size, num_warmup=num_warmup,
                                      num_throughput_runs=num_throughput_runs)
    (latency,) = interleaved_latencies([probe], num_runs=num_runs)
    return TextCostReport(**static, **latency)


@torch.inference_mode()
def prepare_text_cost(backbone, texts: list[str], *, device: str = "auto", batch_size: int = 16, num_warmup: int = 3,
                      num_throughput_runs: int = 3) -> tuple[dict[str, Any], LatencyProbe]:
    """Everything of :func:`measure_text_cost` but the latency, and the batch-1 forward of the typical text to time.

    Latency: batch 1 on :func:`typical_text`. Throughput: ``batch_size * num_throughput_runs``
    texts spread evenly over the data's lengths, in length order, in batches of ``batch_size``
    each padded to its own longest (how :func:`~transferkit.text.features.embed_texts` runs
    them), so a few long texts cost what they cost there, not a whole padded batch each.
    """
    dev = resolve_device(device)
    backbone.eval().to(dev)

    def batch_of(items: list[str]) -> dict[str, torch.Tensor]:
        return {k: v.to(dev) for k, v in backbone.collate(backbone.tokenize(items)).items()}

    forward = _device_forward(dev, lambda batch: backbone(**batch))

    typical = typical_text(texts)
    x1 = batch_of([typical])
    num_tokens = int(x1["input_ids"].shape[1])
    full = {k: v[:, :1].repeat(1, backbone.max_length) for k, v in x1.items()}  # max_length tokens, all attended
    with _eager_attention(backbone.encoder):
        flops = _count_flops(forward, x1)
        flops_max = _count_flops(forward, full)
    for _ in range(max(0, num_warmup - 1)):
        forward(x1)

    input_bytes = sum(v.numel() * v.element_size() for v in x1.values())
    peak, method = _peak_memory(forward, x1, dev, _tensor_bytes(backbone) + input_bytes, "batch 1, typical text")

    tokenized = backbone.tokenize(texts)
    by_length = sorted(range(len(texts)), key=lambda i: (len(tokenized[i]["input_ids"]), i))
    num = min(len(texts), batch_size * max(1, num_throughput_runs))
    picks = [texts[by_length[int(i)]] for i in np.linspace(0, len(texts) - 1, num=num)]
    chunks = [picks[i:i + batch_size] for i in range(0, num, batch_size)]
    throughput = _throughput_batches(forward, [batch_of(c) for c in chunks], [len(c) for c in chunks])

    path = backbone.weights_record.get("path")
    wfile = None
    if path:
        p = Path(path)
        wfile = next((p / f for f in ("model.safetensors", "pytorch_model.bin") if (p / f).is_file()), p if p.is_file() else None)
    static = dict(
        device=str(dev),
        num_tokens=num_tokens,
        max_length=int(backbone.max_length),
        num_params=sum(p.numel() for p in backbone.parameters()),
        state_dict_mb=_state_dict_mb(backbone),
        weights_file_mb=wfile.stat().st_size / 2**20 if wfile is not None and backbone.weights_record.get("sha256") else None,
        macs=flops // 2,
        flops=flops,
        macs_max_length=flops_max // 2,
        flops_max_length=flops_max,
        throughput_texts_s=float(throughput),
        throughput_batch_size=batch_size,
        peak_memory_mb=peak / 2**20,
        peak_memory_method=method,
        typical_text=typical[:200],
    )
    return static, LatencyProbe(forward, x1)
