"""GPU check: what a lab measures before trusting the pipeline with a month of GPU hours.

    benchmarks/gpu_check.sh               # on a GPU node (about 3-5 min on one H100)
    benchmarks/gpu_check.sh --cpu-small   # the CI form: CPU, tiny sizes, under a minute

Prints, side by side with their references and targets:

1. training throughput (images/s) of LeNet, VGG-11 and ResNet-18 on Fashion-MNIST, the data
   resident on the device, through the training loop of `harsanyi.train`;
2. masked extraction (`game_values`, samples × 2^n masked inputs per second) against plain
   batched inference of the same model on as many ready-made inputs, at n = 10 and 12
   (n = 8 in the CPU form); target ≥ 50 %;
3. the sparsifier's samples per second: the certified `exact` solver (CPU only) and `adam`
   on the device;
4. peak memory (GPU: `torch.cuda.max_memory_allocated`; CPU: the process's max RSS);
5. interactions of a few samples computed on the GPU and recomputed on the CPU: largest
   difference relative to max|I| (the salient threshold is `salient_ratio` × max|I|); target
   below 1 % of that threshold. Float32 forward passes with TF32 off.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from bench_extraction import BatchSizes  # the same call-size recorder
from torch import nn

from harsanyi.config import ANALYSIS_DEFAULTS
from harsanyi.data import load_dataset
from harsanyi.games import ImageMasker, PatchGrid, game_values
from harsanyi.io import write_json
from harsanyi.jobs import configure_gpu_numerics, device_name, pick_device
from harsanyi.models import build_model
from harsanyi.provenance import package_versions
from harsanyi.sparsifier import sparsify
from harsanyi.train import _Tensors, _train_epoch
from harsanyi.transforms import and_transform

ARCHS = ("lenet", "vgg11", "resnet18")
EXTRACTION_TARGET = 0.5  # masked extraction ≥ 50 % of plain inference
DIFFERENCE_TARGET = 0.01  # GPU/CPU difference below 1 % of the salient threshold


@dataclass
class Sizes:
    """How much work each section does (the CPU form shrinks all of it)."""

    train_images: dict[str, int]
    train_epochs: int
    batch_size: int
    extraction_n: tuple[int, ...]
    extraction_samples: int
    extraction_archs: tuple[str, ...]
    exact_samples: dict[int, int]
    adam_samples: int
    adam_iters: int | None
    repeats: int
    compare_samples: int
    compare_n: int
    notes: list[str] = field(default_factory=list)


FULL = Sizes(
    train_images=dict.fromkeys(ARCHS, 20000),
    train_epochs=2,
    batch_size=128,
    extraction_n=(10, 12),
    extraction_samples=16,
    extraction_archs=ARCHS,
    exact_samples={10: 4, 12: 1},  # one n = 12 LP: 181 s on a loaded 2-core CPU
    adam_samples=64,
    adam_iters=None,  # the solver's default (2000)
    repeats=3,
    compare_samples=4,
    compare_n=10,
)
CPU_SMALL = Sizes(
    train_images={"lenet": 256, "vgg11": 32, "resnet18": 32},
    train_epochs=1,
    batch_size=32,
    extraction_n=(8,),
    extraction_samples=2,
    extraction_archs=("lenet",),
    exact_samples={8: 2},
    adam_samples=8,
    adam_iters=200,
    repeats=2,
    compare_samples=0,
    compare_n=8,
    notes=[
        "CPU form: 1 timed epoch of 256 (LeNet) or 32 (VGG-11, ResNet-18) training images, "
        "batch 32; extraction n = 8, 2 samples, LeNet only; exact solver n = 8 (2 samples); "
        "adam 200 iterations"
    ],
)


@dataclass
class Row:
    section: str
    item: str
    value: str
    reference: str = ""
    ratio: str = ""
    target: str = ""
    verdict: str = ""
    memory: str = ""


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, run: Callable[[], object]) -> float:
    synchronize(device)
    start = time.perf_counter()
    run()
    synchronize(device)
    return time.perf_counter() - start


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated(device) / 2**20:,.0f} MiB GPU"
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return f"{rss_kib / 1024:,.0f} MiB RSS"


def train_throughput(
    arch: str, data, device: torch.device, sizes: Sizes
) -> tuple[float, nn.Module, str]:
    """Images per second of `harsanyi.train`'s epoch loop (data and index on the device)."""
    model = build_model(arch, data.input_shape, len(data.classes), seed=0).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    count = sizes.train_images[arch]
    split = _Tensors(data.train.x[:count].to(device), data.train.y[:count].long().to(device), None)
    warm_up = _Tensors(split.x[: sizes.batch_size], split.y[: sizes.batch_size], None)
    shuffle = torch.Generator().manual_seed(0)
    reset_peak(device)
    _train_epoch(model, optimizer, warm_up, sizes.batch_size, shuffle)  # one batch
    seconds = timed(
        device,
        lambda: [
            _train_epoch(model, optimizer, split, sizes.batch_size, shuffle)
            for _ in range(sizes.train_epochs)
        ],
    )
    return len(split) * sizes.train_epochs / seconds, model.eval(), peak_memory(device)


def extraction_throughput(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, n: int, device: torch.device, repeats: int
) -> tuple[float, float, str]:
    """(masked rows/s, plain rows/s, peak memory) for samples × 2^n inputs."""
    players = PatchGrid.random(tuple(x.shape[-2:]), (7, 7), n, seed=0)
    masker = ImageMasker(players)
    wrapped = BatchSizes(model).eval()
    rows = x.shape[0] * 2**n
    reset_peak(device)
    game_values(wrapped, masker, x, y)  # warm-up; records the chunk size game_values picks
    batch = max(wrapped.sizes)
    inputs = torch.rand(rows, *x.shape[1:], device=device)

    def plain() -> None:
        with torch.inference_mode():
            for start in range(0, rows, batch):
                model(inputs[start : start + batch])

    def masked() -> None:
        game_values(wrapped, masker, x, y)

    plain()
    times: dict[str, list[float]] = {"masked": [], "plain": []}
    for _ in range(repeats):  # interleaved, so that load drifts hit both
        times["masked"].append(timed(device, masked))
        times["plain"].append(timed(device, plain))
    memory = peak_memory(device)
    return (
        rows / statistics.median(times["masked"]),
        rows / statistics.median(times["plain"]),
        memory,
    )


def sparsifier_rate(v: torch.Tensor, solver: str, device: torch.device, iters: int | None) -> float:
    options: dict[str, Any] = {"solver": solver}
    if solver != "exact":
        options.update(device=device, iters=iters)
    seconds = timed(device, lambda: sparsify(v, **options))
    return len(v) / seconds


def gpu_cpu_difference(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, n: int, device: torch.device
) -> dict[str, float]:
    """v, the Harsanyi AND transform of v, and the exact solver's I_and/I_or from v computed
    on `device` against the same computed on the CPU: largest difference / max|I|."""
    masker = ImageMasker(PatchGrid.random(tuple(x.shape[-2:]), (7, 7), n, seed=1))
    v_gpu = game_values(model.to(device), masker, x.to(device), y.to(device))
    v_cpu = game_values(model.to("cpu"), masker, x.cpu(), y.cpu())
    model.to(device)
    t_gpu, t_cpu = and_transform(v_gpu), and_transform(v_cpu)
    s_gpu, s_cpu = sparsify(v_gpu, solver="exact"), sparsify(v_cpu, solver="exact")
    i_gpu = torch.cat([torch.as_tensor(s_gpu.I_and), torch.as_tensor(s_gpu.I_or)], -1)
    i_cpu = torch.cat([torch.as_tensor(s_cpu.I_and), torch.as_tensor(s_cpu.I_or)], -1)
    return {
        "v": float((v_gpu - v_cpu).abs().max() / v_cpu.abs().max()),
        "and_transform": float((t_gpu - t_cpu).abs().max() / t_cpu.abs().max()),
        "sparse": float((i_gpu - i_cpu).abs().max() / i_cpu.abs().max()),
    }


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def format_table(rows: list[Row]) -> str:
    """The check's table as printed: aligned columns, a rule between sections."""
    headers = Row(
        "section", "item", "value", "reference", "ratio", "target", "verdict", "peak memory"
    )
    columns = list(vars(headers))
    widths = {c: max(len(getattr(r, c)) for r in [headers, *rows]) for c in columns}
    section = None
    lines = []
    for row in [headers, *rows]:
        if row.section != section and row is not headers:
            lines.append("-" * (sum(widths.values()) + 3 * (len(columns) - 1)))
        section = row.section
        lines.append(" | ".join(getattr(row, c).ljust(widths[c]) for c in columns).rstrip())
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cpu-small", action="store_true", help="the CI form: CPU, tiny sizes, under a minute"
    )
    parser.add_argument("--device", default=None, help="auto (default) | cpu | cuda:0")
    parser.add_argument("--json", help="also write the measurements to this JSON file")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    sizes = CPU_SMALL if args.cpu_small else FULL
    device = pick_device(args.device or ("cpu" if args.cpu_small else "auto"))
    configure_gpu_numerics()  # TF32 off, deterministic cuDNN: on the CPU these change nothing
    torch.manual_seed(0)
    print("harsanyi GPU check" + (" (CPU-small form)" if args.cpu_small else ""))
    print(f"date      {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"device    {device_name(device)}")
    cuda = f", CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}"
    print(
        f"software  torch {torch.__version__}{cuda if device.type == 'cuda' else ''}, "
        f"python {platform.python_version()}, {torch.get_num_threads()} CPU threads"
    )
    print(
        "precision float32 forward passes, TF32 off (matmul.allow_tf32="
        f"{torch.backends.cuda.matmul.allow_tf32}, cudnn.allow_tf32="
        f"{torch.backends.cudnn.allow_tf32}); v and the sparsifier in float64"
    )
    for note in sizes.notes:
        print(f"note      {note}")
    print()

    data = load_dataset(
        "fashion_mnist",
        max_train=max(sizes.train_images.values()),
        max_test=max(64, sizes.extraction_samples),
    )
    rows: list[Row] = []
    results: dict[str, Any] = {"device": device_name(device), "cpu_small": args.cpu_small}

    def measure() -> None:
        models = {}
        for arch in ARCHS:
            rate, models[arch], memory = train_throughput(arch, data, device, sizes)
            rows.append(Row("training", f"{arch} images/s", f"{rate:,.0f}", memory=memory))
            results[f"train_{arch}_images_per_s"] = rate
            print(f"training {arch}: {rate:,.0f} images/s", file=sys.stderr, flush=True)

        x = data.test.x[: sizes.extraction_samples]
        y = data.test.y[: sizes.extraction_samples].long()
        for n in sizes.extraction_n:
            for arch in sizes.extraction_archs:
                masked, plain, memory = extraction_throughput(
                    models[arch], x, y, n, device, sizes.repeats
                )
                ratio = masked / plain
                rows.append(
                    Row(
                        "extraction",
                        f"{arch} n={n} rows/s",
                        f"{masked:,.0f} masked",
                        f"{plain:,.0f} plain",
                        f"{ratio:.0%}",
                        f">= {EXTRACTION_TARGET:.0%}",
                        verdict(ratio >= EXTRACTION_TARGET),
                        memory,
                    )
                )
                results[f"extraction_{arch}_n{n}"] = {"masked": masked, "plain": plain}
                print(f"extraction {arch} n={n}: {ratio:.0%}", file=sys.stderr, flush=True)

        for n, count in sizes.exact_samples.items():
            seeded = torch.Generator().manual_seed(n)
            v = torch.randn(count, 2**n, dtype=torch.float64, generator=seeded)
            rate = sparsifier_rate(v, "exact", torch.device("cpu"), None)
            rows.append(Row("sparsifier", f"exact n={n} (CPU, {count} samples)", f"{rate:.3g}/s"))
            results[f"sparsify_exact_n{n}_per_s"] = rate
        adam_n = sorted({*sizes.exact_samples, *sizes.extraction_n})
        for n in adam_n:
            v = torch.randn(sizes.adam_samples, 2**n, dtype=torch.float64)
            reset_peak(device)
            rate = sparsifier_rate(v, "adam", device, sizes.adam_iters)
            memory = peak_memory(device)
            reference = ratio = ""
            if device.type == "cuda":  # the same solve on this node's CPU, side by side
                cpu_rate = sparsifier_rate(v, "adam", torch.device("cpu"), sizes.adam_iters)
                reference, ratio = f"{cpu_rate:.3g}/s CPU", f"{rate / cpu_rate:.1f}x"
                results[f"sparsify_adam_n{n}_cpu_per_s"] = cpu_rate
            iters = sizes.adam_iters or 2000
            rows.append(
                Row(
                    "sparsifier",
                    f"adam n={n} ({device.type}, {sizes.adam_samples} samples, {iters} it)",
                    f"{rate:.3g}/s",
                    reference,
                    ratio,
                    memory=memory,
                )
            )
            results[f"sparsify_adam_n{n}_per_s"] = rate
        print("sparsifier done", file=sys.stderr, flush=True)

        rows.append(Row("memory", "peak of the whole check", "", memory=peak_memory(device)))
        if device.type == "cuda":
            results["peak_memory_mib"] = torch.cuda.max_memory_allocated(device) / 2**20

        salient = ANALYSIS_DEFAULTS["salient_ratio"]
        threshold = DIFFERENCE_TARGET * salient
        if device.type == "cuda" and sizes.compare_samples:
            xs = data.test.x[: sizes.compare_samples]
            ys = data.test.y[: sizes.compare_samples].long()
            for arch in ARCHS:
                diff = gpu_cpu_difference(models[arch], xs, ys, sizes.compare_n, device)
                results[f"gpu_cpu_{arch}"] = diff
                for kind, label in (
                    ("v", "max|dv| / max|v|"),
                    ("and_transform", "max|dI| / max|I| (AND transform)"),
                    ("sparse", "max|dI| / max|I| (exact sparse I)"),
                ):
                    gated = kind != "v"
                    rows.append(
                        Row(
                            "GPU vs CPU",
                            f"{arch} n={sizes.compare_n}, {len(xs)} samples: {label}",
                            f"{diff[kind]:.2e}",
                            f"salient {salient:g}" if gated else "",
                            f"{diff[kind] / salient:.1e} of it" if gated else "",
                            f"< {threshold:.0e}" if gated else "",
                            verdict(diff[kind] < threshold) if gated else "",
                        )
                    )
        else:
            rows.append(Row("GPU vs CPU", "max|dI| / max|I|", "n/a, no GPU"))
            results["gpu_cpu"] = None

    try:
        measure()
    except KeyboardInterrupt:  # gpu_check.sh's time limit: show what was measured
        rows.append(Row("total", "stopped", "time limit reached", verdict="FAIL"))
    wall = time.perf_counter() - started
    rows.append(Row("total", "wall time", f"{wall:.1f} s"))
    results["wall_s"] = wall
    table = format_table(rows)
    print(table, end="")
    failed = [r for r in rows if r.verdict == "FAIL"]
    if args.json:  # with the printed table, for the documentation (scripts/docs_numbers.py)
        results |= {
            "command": " ".join(["benchmarks/gpu_check.sh", *(argv or sys.argv[1:])]),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "torch": torch.__version__,
            "packages": package_versions(),
            "threads": torch.get_num_threads(),
            "table": table,
            "targets_failed": len(failed),
        }
        write_json(results, args.json)  # under a temporary name, then renamed
    print(f"\n{len(failed)} target(s) failed" if failed else "\nall targets met")
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
