"""What a backbone costs on the user's own device: latency, throughput, memory, size, compute.

* latency at batch 1 (p50 / p95 over ``num_runs`` timed forwards after warm-up);
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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def _latencies_ms(forward: Callable[[Any], None], x: Any, num_runs: int) -> list[float]:
    times = []
    for _ in range(num_runs):
        t0 = time.perf_counter()
        forward(x)
        times.append((time.perf_counter() - t0) * 1000)
    return times


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
def measure_cost(backbone: Backbone, *, device: str = "auto", batch_size: int = 16, num_runs: int = 20,
                 num_warmup: int = 3, num_throughput_runs: int = 3) -> CostReport:
    """Measure ``backbone`` on ``device`` (see the module docstring for what each number is)."""
    dev = resolve_device(device)
    backbone.eval().to(dev)
    size = int(backbone.data_cfg["input_size"][-1])
    forward = _device_forward(dev, backbone)

    x1 = torch.randn(1, 3, size, size, device=dev)
    flops = _count_flops(forward, x1)
    for _ in range(max(0, num_warmup - 1)):
        forward(x1)

    peak, method = _peak_memory(forward, x1, dev, _tensor_bytes(backbone) + x1.numel() * x1.element_size(), "batch 1")
    times = _latencies_ms(forward, x1, num_runs)
    throughput = _throughput(forward, torch.randn(batch_size, 3, size, size, device=dev), batch_size, num_throughput_runs)

    path = backbone.weights_record.get("path")
    file_mb = Path(path).stat().st_size / 2**20 if path and Path(path).is_file() else None
    return CostReport(
        device=str(dev),
        input_size=size,
        num_params=sum(p.numel() for p in backbone.parameters()),
        state_dict_mb=_state_dict_mb(backbone),
        weights_file_mb=file_mb,
        macs=flops // 2,
        flops=flops,
        latency_ms_p50=float(np.percentile(times, 50)),
        latency_ms_p95=float(np.percentile(times, 95)),
        throughput_img_s=float(throughput),
        throughput_batch_size=batch_size,
        peak_memory_mb=peak / 2**20,
        peak_memory_method=method,
    )


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


@torch.inference_mode()
def measure_text_cost(backbone, texts: list[str], *, device: str = "auto", batch_size: int = 16, num_runs: int = 20,
                      num_warmup: int = 3, num_throughput_runs: int = 3) -> TextCostReport:
    """Measure a :class:`~transferkit.backbones.text.TextBackbone` on ``device`` with the user's ``texts``.

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
    times = _latencies_ms(forward, x1, num_runs)

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
    return TextCostReport(
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
        latency_ms_p50=float(np.percentile(times, 50)),
        latency_ms_p95=float(np.percentile(times, 95)),
        throughput_texts_s=float(throughput),
        throughput_batch_size=batch_size,
        peak_memory_mb=peak / 2**20,
        peak_memory_method=method,
        typical_text=typical[:200],
    )
