"""Helpers shared by the benchmark scripts: timing, memory, percentiles, machine facts, output.

Kept deliberately small; each ``bench_*.py`` script imports what it needs from here. Nothing in
this module imports the ``rag`` package, so it is cheap to import.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import resource
import shlex
import statistics
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO_ROOT / "benchmarks"

NOISE_NOTE = (
    "Timings were taken on a shared 2-core machine where other agents were using the CPU at the "
    "same time, so individual numbers are noisy; medians (p50) are the figures to trust, and "
    "ratios between configurations are more reliable than absolute values."
)


# ---------------------------------------------------------------- timing


@dataclass
class Stopwatch:
    """Wall-clock seconds (``seconds``) and this process's CPU seconds, all threads (``cpu_seconds``)
    of a ``with timed() as t:`` block.

    On a machine shared with other busy processes the wall time grows while the CPU time mostly
    does not; ``cpu_seconds / seconds`` says how many cores the block really got.
    """

    seconds: float = 0.0
    cpu_seconds: float = 0.0

    def cores_used(self) -> float:
        """Average number of cores the block ran on (CPU time / wall time)."""
        return self.cpu_seconds / self.seconds if self.seconds > 0 else 0.0


@contextlib.contextmanager
def timed() -> Iterator[Stopwatch]:
    """Time a block: ``with timed() as t: ...``, then ``t.seconds`` and ``t.cpu_seconds``."""
    watch = Stopwatch()
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        yield watch
    finally:
        watch.seconds = time.perf_counter() - start
        watch.cpu_seconds = time.process_time() - cpu_start


def percentiles(samples: Iterable[float], scale: float = 1.0, digits: int = 3) -> dict[str, float | int]:
    """Summary of ``samples`` (multiplied by ``scale``, e.g. 1000 for ms): n, p50, p95, mean, min, max.

    Percentiles use linear interpolation between closest ranks (numpy's default).
    """
    values = np.asarray(list(samples), dtype=np.float64) * scale
    if values.size == 0:
        return {"n": 0}
    return {
        "n": int(values.size),
        "p50": round(float(np.percentile(values, 50)), digits),
        "p95": round(float(np.percentile(values, 95)), digits),
        "mean": round(float(values.mean()), digits),
        "min": round(float(values.min()), digits),
        "max": round(float(values.max()), digits),
    }


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence."""
    return float(statistics.median(values))


# ---------------------------------------------------------------- memory


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (``ru_maxrss`` is KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    divisor = 1024 * 1024 if sys.platform == "darwin" else 1024  # macOS reports bytes
    return round(peak / divisor, 1)


def current_rss_mb() -> float:
    """Current resident set size in MiB (from ``/proc/self/status``; falls back to the peak)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return peak_rss_mb()


# ---------------------------------------------------------------- compute peak


def measure_sgemm_gflops(
    size: int = 4096, repeats: int = 5, threads: int | None = None, backend: str = "numpy"
) -> dict[str, Any]:
    """Measured float32 matmul throughput (``size`` x ``size`` squares) of numpy's BLAS or torch.

    ``threads`` caps the thread pool (numpy via threadpoolctl when installed, torch via
    ``torch.set_num_threads``). Returns the best and median GFLOP/s over ``repeats`` runs after one
    warm-up: the best run is the peak (least disturbed by other processes), the median shows how
    noisy the machine was. ``cores_used_median`` (CPU time / wall time) says how many cores the
    runs really got, and ``gflop_per_cpu_s_best`` is the per-core rate.
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    flop = 2.0 * size**3
    a_op: Any = a
    b_op: Any = b
    matmul: Any
    limits: Any = contextlib.nullcontext()
    if backend == "torch":
        import torch

        if threads:
            torch.set_num_threads(threads)
        a_op, b_op = torch.from_numpy(a), torch.from_numpy(b)
        matmul = torch.matmul
        library = f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    elif backend == "numpy":
        matmul = np.matmul
        library = f"numpy {np.__version__}"
        try:
            from threadpoolctl import threadpool_info, threadpool_limits

            blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
            info = [i for i in blas if "numpy" in str(i.get("filepath", ""))] or blas  # not torch's or faiss's
            if info:
                library += f", {info[0].get('internal_api')} {info[0].get('version')} ({info[0].get('architecture')})"
            limits = threadpool_limits(limits=threads, user_api="blas")
        except ImportError:
            pass
    else:
        raise ValueError(f"unknown backend {backend!r}; use 'numpy' or 'torch'")
    rates, per_cpu_s, cores = [], [], []
    with limits:
        matmul(a_op, b_op)  # warm-up: thread pool start, page faults
        for _ in range(repeats):
            with timed() as t:
                matmul(a_op, b_op)
            rates.append(flop / t.seconds / 1e9)
            per_cpu_s.append(flop / max(t.cpu_seconds, 1e-9) / 1e9)
            cores.append(t.cores_used())
    return {
        "library": library,
        "matrix": f"{size}x{size} float32",
        "threads": threads,
        "gflops_best": round(max(rates), 1),
        "gflops_median": round(median(rates), 1),
        "runs": [round(r, 1) for r in rates],
        "cores_used_median": round(median(cores), 2),
        # GFLOP per CPU-second: the per-core rate, much less affected by other processes than wall time
        "gflop_per_cpu_s_best": round(max(per_cpu_s), 1),
    }


# ---------------------------------------------------------------- machine and output


def cpu_model() -> str:
    """The CPU model name from ``/proc/cpuinfo`` (or ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def total_ram_gb() -> float | None:
    """Physical memory in GiB, if the OS reports it."""
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def package_versions(packages: Sequence[str]) -> dict[str, str]:
    """Installed versions of ``packages`` (missing ones are left out)."""
    found = {"python": platform.python_version()}
    for package in packages:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (how busy other processes kept the CPU)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_info(packages: Sequence[str]) -> dict[str, Any]:
    """Where and when a benchmark ran: CPU, core count, RAM, load, date, library versions."""
    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "ram_gb": total_ram_gb(),
        "platform": platform.platform(),
        "load_average_at_start": load_average(),
        "versions": package_versions(packages),
    }


def command_line() -> str:
    """The exact command that ran this script, relative to the repository root when possible."""
    script = Path(sys.argv[0]).resolve()
    try:
        script_str = str(script.relative_to(REPO_ROOT))
    except ValueError:
        script_str = str(script)
    return shlex.join(["python", script_str, *sys.argv[1:]])


def write_results(name: str, payload: dict[str, Any], markdown: str, out_dir: Path = BENCH_DIR) -> tuple[Path, Path]:
    """Write ``<out_dir>/<name>.json`` and ``<out_dir>/<name>.md``; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{name}.json", out_dir / f"{name}.md"
    json_path.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(markdown.rstrip() + "\n", encoding="utf-8")
    return json_path, md_path


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_markdown(machine: dict[str, Any], command: str) -> str:
    """The common 'Machine' and 'Reproduce' sections of a benchmark summary."""
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    return (
        "## Machine\n\n"
        f"- {machine['nproc']} CPU cores ({machine['cpu_model']}), {machine['ram_gb']} GiB RAM, no GPU\n"
        f"- {machine['platform']}; load average at start {machine['load_average_at_start']}\n"
        f"- run on {machine['date']}\n"
        f"- {versions}\n\n"
        f"{NOISE_NOTE}\n\n"
        "## Reproduce\n\n"
        f"```bash\n{command}\n```\n"
    )


def log(message: str) -> None:
    """Progress line on stderr, timestamped, flushed (benchmarks run under nohup)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
