"""DeepSeek-OCR on this CPU: DeepEncoder per mode, decoder speed, and loading the full model.

Everything runs at full size with random weights (speed and memory do not depend on the
values). Each measurement runs in a fresh subprocess, so its ``ru_maxrss`` is its own peak.

1. DeepEncoder (SAM + compressor + CLIP + projector; the decoder stays on the meta device)
   per mode (tiny 512, small 640, base 1024, large 1280) in fp32 and bf16: seconds per
   image through ``DeepSeekOCR.encode_views`` and peak RSS.
2. A random checkpoint in the released layout (2,710 official tensor names, one bf16
   safetensors file and its index, a ``deepseek_vl_v2`` config.json) is streamed to a
   temporary directory one tensor at a time, loaded with ``DeepSeekOCR.from_pretrained``
   in bf16 (peak RSS split into anonymous and file-backed memory by a sampler thread),
   then the decoder runs a prefill and greedy decode steps with the KV cache. Decode speed
   is set against the memory-bandwidth bound: the bytes a decoded token must read (attention,
   the dense MLP of layer 0, 6 routed + the shared experts, routers, norms, lm_head) over
   the copy bandwidth. That bandwidth moves with where the host schedules the two vCPUs
   (35-70 GB/s from one process to the next on the same VM), so it is measured around every
   round of decode steps, and each round is set against its own bound: the reported fraction
   is the median over rounds. Two probes say where time goes: a bf16 GEMV over lm_head and
   one MoE block on one token. The checkpoint is deleted afterwards.

3. ``--decode-only``: part 2's decoder measurements alone, on a decoder whose random bf16
   weights are made in memory (DeepEncoder stays on the meta device; no checkpoint, no
   encoder), run ``--runs`` times in fresh processes; the run with the median decode speed
   is reported. The runs share a new inductor cache: the first compiles the decode kernels
   cold, the others load them (``first_decode_step_s`` shows both). ``--update FILE``
   writes its ``decoder`` entries into an earlier report.

The page cache is warm when the checkpoint is loaded (it was just written).
The machine may be shared: the load average is recorded next to every measurement.
``--threads N`` sets torch's thread count in the decoder workers (default: torch's own).

Usage: python benchmarks/model_cpu.py [--repeats N] [--skip-load] \
    > benchmarks/results/model_cpu.json
       python benchmarks/model_cpu.py --decode-only --runs 3 \
    --update benchmarks/results/model_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
MODES = {"tiny": 512, "small": 640, "base": 1024, "large": 1280}
GIB = 1024**3
# Room for the 6.7 GB checkpoint plus slack for others on the same disk.
CHECKPOINT_DISK_NEEDED = 14 * 10**9


# --- measuring helpers (run inside the workers) ----------------------------------------


def peak_rss_bytes() -> int:
    """This process's peak resident set (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def proc_status() -> dict[str, int]:
    """VmRSS, RssAnon, RssFile and VmHWM of this process, in bytes."""
    wanted = {"VmRSS", "RssAnon", "RssFile", "VmHWM"}
    out = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in wanted:
                out[name] = int(value.split()[0]) * 1024
    return out


class RssSampler(threading.Thread):
    """Samples /proc/self/status every 20 ms and keeps the peaks of each field."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peaks: dict[str, int] = {}
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            for name, value in proc_status().items():
                self.peaks[name] = max(self.peaks.get(name, 0), value)
            self._done.wait(0.02)

    def stop(self) -> dict[str, int]:
        self._done.set()
        self.join()
        return self.peaks


def gib(n: float) -> float:
    return round(n / GIB, 3)


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --- workers ------------------------------------------------------------------------------


def _random_(tensor: Any, name: str) -> None:
    """Plausible random values: norms 1, biases 0, everything else N(0, 0.02)."""
    if tensor.dim() == 1 and name.endswith("weight"):
        tensor.fill_(1.0)
    elif tensor.dim() == 1 and name.endswith("bias"):
        tensor.zero_()
    else:
        tensor.normal_(0.0, 0.02)


def worker_encoder(size: int, dtype_name: str, repeats: int, budget: float) -> dict[str, Any]:
    import torch
    from torch import nn

    from optical_memory.model import DeepSeekOCR, DeepSeekOCRConfig

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    rss_start = proc_status()["VmRSS"]
    loads = [load()]
    start = time.perf_counter()
    with torch.device("meta"):
        model = DeepSeekOCR(DeepSeekOCRConfig())
    inner = model.model
    # Only DeepEncoder gets memory: the decoder and lm_head stay on the meta device.
    for module in (inner.vision_tower, inner.multi_modal_projector):
        module.to(dtype).to_empty(device="cpu")
        with torch.no_grad():
            for name, param in module.named_parameters():
                _random_(param, name)
    for embeddings in (m for m in inner.vision_tower.modules() if hasattr(m, "position_ids")):
        positions = torch.arange(embeddings.position_ids.shape[-1]).expand(1, -1)
        embeddings.position_ids = positions  # to_empty left the buffer uninitialised
    width = model.config.text.hidden_size
    inner.image_newline = nn.Parameter(torch.randn(width, dtype=dtype) * 0.02)
    inner.view_separator = nn.Parameter(torch.randn(width, dtype=dtype) * 0.02)
    params = (
        sum(
            p.numel()
            for m in (inner.vision_tower, inner.multi_modal_projector)
            for p in m.parameters()
        )
        + 2 * width
    )
    build_s = time.perf_counter() - start
    rss_built = proc_status()["VmRSS"]

    pixels = torch.rand(3, size, size) * 2 - 1
    times: list[float] = []
    with torch.inference_mode():
        start = time.perf_counter()
        tokens = model.encode_views(pixels)
        first_s = time.perf_counter() - start
        expected = model.vision_layout(size).n_slots
        if tokens.shape[0] != expected or not torch.isfinite(tokens).all():
            raise RuntimeError(f"encoder gave {tuple(tokens.shape)}, expected {expected} tokens")
        spent = first_s
        # A slow mode (a minute per image under load) is timed by its first call alone.
        while len(times) < repeats and spent < budget:
            start = time.perf_counter()
            model.encode_views(pixels)
            times.append(time.perf_counter() - start)
            spent += times[-1]
    loads.append(load())
    return {
        "mode": next(name for name, side in MODES.items() if side == size),
        "image_size": size,
        "dtype": dtype_name,
        "vision_tokens": int(tokens.shape[0]),
        "params": params,
        "s_per_image_median": round(statistics.median(times or [first_s]), 3),
        "s_per_image_min": round(min(times or [first_s]), 3),
        "s_first_call": round(first_s, 3),
        "runs_after_warmup": len(times),
        "build_s": round(build_s, 2),
        "rss_after_imports_gib": gib(rss_start),
        "rss_after_build_gib": gib(rss_built),
        "peak_rss_gib": gib(peak_rss_bytes()),
        "loadavg_start_end": loads,
        "threads": torch.get_num_threads(),
    }


def worker_write_checkpoint(directory: str) -> dict[str, Any]:
    """Stream a random bf16 checkpoint with the official names, shapes and config."""
    import torch

    from optical_memory.model import DeepSeekOCR, DeepSeekOCRConfig

    config = DeepSeekOCRConfig()
    with torch.device("meta"):
        model = DeepSeekOCR(config)
    shapes = {name: tuple(t.shape) for name, t in model.official_state_dict().items()}
    del model
    names = sorted(shapes)
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name in names:
        size = 2 * _numel(shapes[name])
        header[name] = {
            "dtype": "BF16",
            "shape": list(shapes[name]),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the data starts 8-byte aligned
    path = Path(directory)
    file_name = "model-00001-of-000001.safetensors"
    start = time.perf_counter()
    # Drawing 3.3 billion normals takes minutes on two cores: cut every tensor from one
    # block of N(0, 0.02) values at a random offset instead.
    generator = torch.Generator().manual_seed(0)
    pool = (torch.randn(1 << 25, generator=generator) * 0.02).to(torch.bfloat16)
    with open(path / file_name, "wb") as out:
        out.write(struct.pack("<Q", len(raw)))
        out.write(raw)
        for name in names:
            count = _numel(shapes[name])
            if len(shapes[name]) == 1 and name.endswith("weight"):
                tensor = torch.ones(count, dtype=torch.bfloat16)
            elif len(shapes[name]) == 1 and name.endswith("bias"):
                tensor = torch.zeros(count, dtype=torch.bfloat16)
            elif count <= pool.numel():
                first = int(torch.randint(pool.numel() - count + 1, (1,), generator=generator))
                tensor = pool[first : first + count]
            else:
                tensor = pool.repeat(count // pool.numel() + 1)[:count]
            out.write(tensor.view(torch.uint8).numpy().tobytes())
    index = {"metadata": {"total_size": offset}, "weight_map": dict.fromkeys(names, file_name)}
    (path / "model.safetensors.index.json").write_text(json.dumps(index, indent=1))
    (path / "config.json").write_text(json.dumps(_official_config(config), indent=1))
    return {
        "tensors": len(names),
        "params": sum(_numel(s) for s in shapes.values()),
        "bytes": (path / file_name).stat().st_size,
        "write_s": round(time.perf_counter() - start, 1),
    }


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for side in shape:
        count *= side
    return count


def _official_config(config: Any) -> dict[str, Any]:
    """A config.json shaped like the released one (``deepseek_vl_v2``, ``language_config``)."""
    text = config.text
    language = {
        "vocab_size": text.vocab_size,
        "hidden_size": text.hidden_size,
        "intermediate_size": text.intermediate_size,
        "moe_intermediate_size": text.moe_intermediate_size,
        "num_hidden_layers": text.num_hidden_layers,
        "num_attention_heads": text.num_attention_heads,
        "num_key_value_heads": text.num_key_value_heads,
        "n_routed_experts": text.n_routed_experts,
        "n_shared_experts": text.n_shared_experts,
        "num_experts_per_tok": text.num_experts_per_tok,
        "first_k_dense_replace": 1,
        "topk_method": "greedy",
        "use_mla": False,
        "kv_lora_rank": None,
        "q_lora_rank": None,
        "max_position_embeddings": text.max_position_embeddings,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "torch_dtype": "bfloat16",
        "model_type": "deepseek_v2",
    }
    return {
        "model_type": "deepseek_vl_v2",
        "architectures": ["DeepseekOCRForCausalLM"],
        "language_config": language,
        "tile_tag": "2D",
        "torch_dtype": "bfloat16",
    }


def active_decode_params(config: Any) -> dict[str, int]:
    """Parameters one decoded token reads, by part (from the decoder config)."""
    text = config.text
    d, layers = text.hidden_size, text.num_hidden_layers
    dense_layers = sum(1 for kind in text.mlp_layer_types if kind == "dense")
    moe_layers = layers - dense_layers
    expert = 3 * d * text.moe_intermediate_size
    return {
        "attention": layers * 4 * d * text.num_attention_heads * text.head_dim,
        "dense_mlp": dense_layers * 3 * d * text.intermediate_size,
        "routed_experts": moe_layers * text.num_experts_per_tok * expert,
        "shared_experts": moe_layers * text.n_shared_experts * expert,
        "routers": moe_layers * text.n_routed_experts * d,
        "norms": (2 * layers + 1) * d,
        "lm_head": text.vocab_size * d,
    }


DECODE_ROUNDS = 8


class CopyProbe:
    """Two preallocated 256 MiB buffers (far beyond any cache) for quick copy readings
    between decode rounds; ``copy_GBps`` is the best of a few copies (read + written)."""

    def __init__(self, nbytes: int = GIB // 4) -> None:
        import torch

        self.source = torch.ones(nbytes // 4, dtype=torch.float32)
        self.target = torch.empty_like(self.source)
        self.target.copy_(self.source)  # fault the pages in

    def copy_GBps(self, repeats: int = 3) -> float:
        best = min(self._timed_copy() for _ in range(repeats))
        return 2 * self.source.numel() * 4 / best / 1e9

    def _timed_copy(self) -> float:
        start = time.perf_counter()
        self.target.copy_(self.source)
        return time.perf_counter() - start


def copy_bandwidth(nbytes: int = GIB, repeats: int = 5) -> dict[str, float]:
    """STREAM-style copy (bytes read + written per second) and a read-only sum."""
    import torch

    source = torch.ones(nbytes // 4, dtype=torch.float32)
    target = torch.empty_like(source)
    target.copy_(source)  # fault the pages in before timing
    copies, sums = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        target.copy_(source)
        copies.append(time.perf_counter() - start)
        start = time.perf_counter()
        source.sum()
        sums.append(time.perf_counter() - start)
    return {
        "copy_GBps": round(2 * nbytes / min(copies) / 1e9, 2),
        "read_GBps": round(nbytes / min(sums) / 1e9, 2),
        "buffer_GiB": round(nbytes / GIB, 2),
    }


def worker_decoder(directory: str, prefill: int, steps: int) -> dict[str, Any]:
    import torch

    from optical_memory.model import DeepSeekOCR

    rss_start = proc_status()["VmRSS"]
    loads = [load()]
    sampler = RssSampler()
    sampler.start()
    start = time.perf_counter()
    model = DeepSeekOCR.from_pretrained(directory, dtype=torch.bfloat16)
    load_s = time.perf_counter() - start
    peaks = sampler.stop()
    load_peak = peak_rss_bytes()
    after_load = proc_status()
    # Mapped weights fault in lazily: read each once so the RSS a user meets is counted.
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.sum()
    touched = proc_status()
    touched_peak = peak_rss_bytes()
    loads.append(load())
    params = sum(p.numel() for p in model.parameters())
    dtypes = sorted({str(p.dtype) for p in model.parameters()})
    decoder = measure_decoder(model, prefill, steps)
    loads.append(decoder.pop("loadavg_decode"))
    return {
        "load": {
            "dtype": "bf16",
            "params": params,
            "param_dtypes": dtypes,
            "load_s": round(load_s, 1),
            "peak_rss_gib": gib(load_peak),
            "peak_rss_anon_gib": gib(peaks.get("RssAnon", 0)),
            "peak_rss_file_gib": gib(peaks.get("RssFile", 0)),
            "rss_after_load_gib": gib(after_load["VmRSS"]),
            "rss_after_load_anon_gib": gib(after_load["RssAnon"]),
            "rss_after_load_file_gib": gib(after_load["RssFile"]),
            "rss_after_imports_gib": gib(rss_start),
            "rss_after_touching_all_weights_gib": gib(touched["VmRSS"]),
            "rss_after_touching_all_weights_anon_file_gib": [
                gib(touched["RssAnon"]),
                gib(touched["RssFile"]),
            ],
            "peak_rss_with_all_weights_read_gib": gib(touched_peak),
            "target_peak_rss_gib": 8.0,
            "meets_target": max(load_peak, touched_peak) <= 8 * GIB,
            "page_cache": "warm (checkpoint just written)",
        },
        "decoder": decoder,
        "loadavg_start_load_decode": loads,
    }


def worker_random_decoder(prefill: int, steps: int) -> dict[str, Any]:
    """The decoder measurements on random bf16 decoder weights made in memory."""
    start = time.perf_counter()
    model = build_random_decoder()
    build_s = time.perf_counter() - start
    decoder = measure_decoder(model, prefill, steps)
    decoder["weights"] = "random bf16 in memory (--decode-only)"
    decoder["build_s"] = round(build_s, 1)
    return {"decoder": decoder}


def build_random_decoder() -> Any:
    """The full-size model whose text model and ``lm_head`` hold random bf16 weights.

    The model is built on the meta device; only the text model and ``lm_head`` get memory,
    each tensor cut from one block of N(0, 0.02) values at random offsets (norms 1), so
    building takes seconds rather than the minutes of drawing 2.9 billion normals.
    DeepEncoder stays on the meta device.
    """
    import torch
    from torch import nn

    from optical_memory.model import DeepSeekOCR, DeepSeekOCRConfig

    with torch.device("meta"):
        model = DeepSeekOCR(DeepSeekOCRConfig())
    generator = torch.Generator().manual_seed(0)
    pool = (torch.randn(1 << 25, generator=generator) * 0.02).to(torch.bfloat16)
    text = model.model.language_model
    for root in (text, model.lm_head):
        for name, param in list(root.named_parameters()):
            tensor = torch.empty(param.shape, dtype=torch.bfloat16)
            if tensor.dim() == 1:
                tensor.fill_(1.0)  # the decoder's only 1-d tensors are RMSNorm weights
            else:
                flat = tensor.view(-1)
                for first in range(0, flat.numel(), pool.numel()):
                    piece = flat[first : first + pool.numel()]
                    last = pool.numel() - piece.numel()
                    offset = int(torch.randint(last + 1, (1,), generator=generator))
                    piece.copy_(pool[offset : offset + piece.numel()])
            module_name, _, attribute = name.rpartition(".")
            module = root.get_submodule(module_name)
            setattr(module, attribute, nn.Parameter(tensor, requires_grad=False))
    rotary = text.rotary_emb
    inv_freq, _ = rotary.compute_default_rope_parameters(rotary.config)
    rotary.register_buffer("inv_freq", inv_freq, persistent=False)
    rotary.register_buffer("original_inv_freq", inv_freq.clone(), persistent=False)
    return model.eval()


def measure_decoder(model: Any, prefill: int, steps: int) -> dict[str, Any]:
    """Prefill and greedy decode speed, the bandwidth bound, the probes and 1-thread decode."""
    import torch

    ids = torch.randint(3, 128000, (1, prefill), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        # Warm-up: the first calls pick and build the oneDNN kernels, and the first decode
        # step compiles the decode kernels (or loads them from inductor's on-disk cache).
        out = model(ids[:, :32], logits_to_keep=1)
        first_step_s = 0.0
        for _ in range(3):
            token = out.logits[:, -1].argmax(-1, keepdim=True)
            start = time.perf_counter()
            out = model(token, past_key_values=out.past_key_values, logits_to_keep=1)
            first_step_s = first_step_s or time.perf_counter() - start

        start = time.perf_counter()
        # A fresh cache of the model's own kind, as generate() uses (DeepseekOcrKVCache).
        out = model(ids, logits_to_keep=1)
        prefill_s = time.perf_counter() - start
        probe = CopyProbe()
        step_times: list[float] = []
        rounds = []
        for _ in range(DECODE_ROUNDS):
            before = probe.copy_GBps()
            times = []
            for _ in range(max(1, steps // DECODE_ROUNDS)):
                token = out.logits[:, -1].argmax(-1, keepdim=True)
                start = time.perf_counter()
                out = model(token, past_key_values=out.past_key_values, logits_to_keep=1)
                times.append(time.perf_counter() - start)
            # The larger of the two readings: the demanding bound for this round.
            copy = max(before, probe.copy_GBps())
            rounds.append((len(times) / sum(times), copy))
            step_times += times
        del probe
        if not torch.isfinite(out.logits).all():
            raise RuntimeError("decoder produced non-finite logits")
        loadavg_decode = load()
        probes = _probes(model)
        # On a shared machine every OpenMP barrier waits for a descheduled thread: compare
        # the same steps on one thread.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        one_thread = []
        for _ in range(min(steps, 16)):
            token = out.logits[:, -1].argmax(-1, keepdim=True)
            start = time.perf_counter()
            out = model(token, past_key_values=out.past_key_values, logits_to_keep=1)
            one_thread.append(time.perf_counter() - start)
        torch.set_num_threads(threads)
    decode_peak = peak_rss_bytes()

    active = active_decode_params(model.config)
    active_bytes = 2 * sum(active.values())
    bandwidth = copy_bandwidth()
    fractions = [tps / (copy * 1e9 / active_bytes) for tps, copy in rounds]
    round_copy = statistics.median(copy for _, copy in rounds)
    bound = round_copy * 1e9 / active_bytes
    decode_tps = len(step_times) / sum(step_times)
    fraction = statistics.median(fractions)
    return {
        "dtype": "bf16",
        "prefill_tokens": prefill,
        "prefill_s": round(prefill_s, 2),
        "prefill_tokens_per_s": round(prefill / prefill_s, 1),
        "decode_steps": len(step_times),
        "first_decode_step_s": round(first_step_s, 1),
        "inductor_cache": os.environ.get("MODEL_CPU_INDUCTOR_CACHE", "as found"),
        "decode_ms_per_token_median": round(1000 * statistics.median(step_times), 1),
        "decode_tokens_per_s": round(decode_tps, 2),
        "decode_tokens_per_s_1_thread": round(len(one_thread) / sum(one_thread), 2),
        "decode_ms_per_token_median_1_thread": round(1000 * statistics.median(one_thread), 1),
        "active_params_per_token": sum(active.values()),
        "active_params_by_part": active,
        "active_bytes_per_token": active_bytes,
        "bandwidth_rounds": [
            {"tokens_per_s": round(tps, 2), "copy_GBps": round(copy, 1), "fraction": round(f, 3)}
            for (tps, copy), f in zip(rounds, fractions, strict=True)
        ],
        "bandwidth_copy_GBps_median_of_rounds": round(round_copy, 1),
        "bandwidth_end_of_run": bandwidth,
        "bound_tokens_per_s": round(bound, 2),
        "fraction_of_bound": round(fraction, 3),
        "fraction_of_bound_is": "median over rounds of (round tokens/s) / (round bound)",
        "target_fraction_of_bound": 0.5,
        "meets_target": fraction >= 0.5,
        "probes": probes,
        "peak_rss_gib": gib(decode_peak),
        "threads": threads,
        "loadavg_decode": loadavg_decode,
    }


def _probes(model: Any) -> dict[str, Any]:
    """Where decode time goes: a bf16 GEMV over lm_head and one MoE block on one token."""
    import torch

    def best(fn: Any, repeats: int = 20) -> float:
        fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    width = model.config.text.hidden_size
    x = torch.randn(1, 1, width, dtype=torch.bfloat16)
    head = model.lm_head.weight
    gemv_s = best(lambda: torch.nn.functional.linear(x, head))
    moe = model.model.language_model.layers[1].mlp
    text = model.config.text
    moe_params = (
        text.num_experts_per_tok + text.n_shared_experts
    ) * 3 * width * text.moe_intermediate_size + text.n_routed_experts * width
    moe_s = best(lambda: moe(x))
    # One block's selected experts (~55 MB) stay in a large L3; one token through every
    # MoE block in turn reads more than the L3 holds, as a decode step does.
    layers = model.model.language_model.layers
    blocks = [m.mlp for m in layers if hasattr(m.mlp, "experts")]
    cold_s = best(lambda: [block(x) for block in blocks], repeats=5) / len(blocks)
    layer = model.model.language_model.layers[1]
    return {
        "lm_head_gemv_ms": round(1000 * gemv_s, 3),
        "lm_head_gemv_GBps": round(head.numel() * 2 / gemv_s / 1e9, 2),
        "moe_block_1_token_ms": round(1000 * moe_s, 3),
        "moe_block_1_token_GBps": round(moe_params * 2 / moe_s / 1e9, 2),
        "moe_block_1_token_all_layers_ms": round(1000 * cold_s, 3),
        "moe_block_1_token_all_layers_GBps": round(moe_params * 2 / cold_s / 1e9, 2),
        "moe_block_active_params": moe_params,
        "moe_layer_type": type(layer.mlp).__name__,
    }


# --- orchestration ------------------------------------------------------------------------


def run_worker(
    args: list[str], timeout: float, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter and parse its JSON line."""
    command = [sys.executable, str(HERE), "--worker", *args]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=False, env=env
    )
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-5:]
        return {"error": f"worker {' '.join(args)} failed (exit {done.returncode})", "stderr": tail}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def machine() -> dict[str, Any]:
    import torch
    import transformers

    model_name, flags = "", set()
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name") and not model_name:
                model_name = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    memory = 0
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) * 1024
    return {
        "cpus": os.cpu_count(),
        "cpu": model_name,
        "bf16_isa": sorted(flags & {"avx512_bf16", "amx_bf16", "amx_tile", "avx512f"}),
        "memory_gib": gib(memory),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "transformers": transformers.__version__,
    }


def decode_only(
    prefill: int, steps: int, runs: int, threads: list[str], update: Path | None
) -> None:
    """``--decode-only``: decoder runs in fresh processes; the median-speed run is reported."""
    worker = ["random-decoder", str(prefill), str(steps), *threads]
    # An inductor cache of their own: the first run compiles the decode kernels cold, the
    # later ones load them, so first_decode_step_s shows both.
    with tempfile.TemporaryDirectory(prefix="om-inductor-") as cache:
        results = []
        for run in range(runs):
            state = "cold" if run == 0 else "warm"
            env = {
                **os.environ,
                "TORCHINDUCTOR_CACHE_DIR": cache,
                "MODEL_CPU_INDUCTOR_CACHE": state,
            }
            results.append(run_worker(worker, timeout=900, env=env))
    failed = [r for r in results if "error" in r]
    if failed:
        json.dump(failed, sys.stderr, indent=1)
        raise SystemExit(1)
    decoders = sorted((r["decoder"] for r in results), key=lambda d: d["decode_tokens_per_s"])
    summary = {
        key: [d[key] for d in decoders]
        for key in (
            "decode_ms_per_token_median",
            "decode_tokens_per_s",
            "decode_tokens_per_s_1_thread",
            "bound_tokens_per_s",
            "fraction_of_bound",
            "prefill_tokens_per_s",
            "loadavg_decode",
        )
    }
    summary["first_decode_step_s"] = {
        r["decoder"]["inductor_cache"]: r["decoder"]["first_decode_step_s"] for r in results
    }
    summary["moe_block_1_token_ms"] = [d["probes"]["moe_block_1_token_ms"] for d in decoders]
    summary["moe_block_1_token_all_layers_ms"] = [
        d["probes"]["moe_block_1_token_all_layers_ms"] for d in decoders
    ]
    # One run's copy probe can be slowed by a neighbour, which inflates its own fraction:
    # also set the reported run against the median bound of all runs.
    reported = decoders[len(decoders) // 2]
    bound = statistics.median(d["bound_tokens_per_s"] for d in decoders)
    summary["median_bound_tokens_per_s"] = bound
    summary["fraction_of_median_bound"] = round(reported["decode_tokens_per_s"] / bound, 3)
    report: dict[str, Any] = {"decoder": reported, "decoder_runs": summary}
    if update is not None:
        previous = json.loads(update.read_text(encoding="utf-8"))
        if "decoder" in previous and "weights" not in previous["decoder"]:
            # The full run's decode on the loaded checkpoint stays in the report beside these.
            previous["decoder_after_checkpoint_load"] = previous["decoder"]
        previous.update(report)
        update.write_text(json.dumps(previous, indent=1) + "\n", encoding="utf-8")
    json.dump(report, sys.stdout, indent=1)
    sys.stdout.write("\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=1, help="encoder runs after a warm-up")
    parser.add_argument(
        "--budget", type=float, default=20.0, help="no encoder repeats once this many seconds spent"
    )
    parser.add_argument("--prefill", type=int, default=512)
    parser.add_argument("--steps", type=int, default=64, help="decode steps, in 8 rounds")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated encoder modes")
    parser.add_argument("--skip-load", action="store_true", help="skip the checkpoint and decoder")
    parser.add_argument(
        "--decode-only", action="store_true", help="only the decoder, random weights in memory"
    )
    parser.add_argument("--runs", type=int, default=3, help="decoder runs with --decode-only")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's own)")
    parser.add_argument("--update", type=Path, help="with --decode-only: report to update")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        kind, *rest = args.worker
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        if kind == "encoder":
            result = worker_encoder(int(rest[0]), rest[1], int(rest[2]), float(rest[3]))
        elif kind == "write":
            result = worker_write_checkpoint(rest[0])
        elif kind == "random-decoder":
            result = worker_random_decoder(int(rest[0]), int(rest[1]))
        else:
            result = worker_decoder(rest[0], int(rest[1]), int(rest[2]))
        print(json.dumps(result))
        return

    threads = ["--threads", str(args.threads)] if args.threads else []
    if args.decode_only:
        decode_only(args.prefill, args.steps, args.runs, threads, args.update)
        return
    began = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": "model_cpu",
        "machine": machine(),
        "loadavg_at_start": load(),
        "weights": "random, full size (values do not change speed or memory)",
        "encoder": [],
    }
    for mode in args.modes.split(","):
        for dtype in ("fp32", "bf16"):
            worker = ["encoder", str(MODES[mode]), dtype, str(args.repeats), str(args.budget)]
            report["encoder"].append(run_worker(worker, timeout=600))
    if not args.skip_load:
        free = shutil.disk_usage(tempfile.gettempdir()).free
        if free < CHECKPOINT_DISK_NEEDED:
            report["load"] = {"error": f"only {free / 1e9:.1f} GB free in {tempfile.gettempdir()}"}
        else:
            directory = tempfile.mkdtemp(prefix="om-model-cpu-")
            try:
                report["checkpoint"] = run_worker(["write", directory], timeout=900)
                if "error" not in report["checkpoint"]:
                    worker = ["decoder", directory, str(args.prefill), str(args.steps)]
                    result = run_worker([*worker, *threads], timeout=900)
                    report.update(result if "error" not in result else {"load": result})
            finally:
                shutil.rmtree(directory, ignore_errors=True)
    report["loadavg_at_end"] = load()
    report["wall_s"] = round(time.perf_counter() - began, 1)
    json.dump(report, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
