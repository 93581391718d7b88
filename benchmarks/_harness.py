"""Shared machinery for the benchmark scripts in this folder.

Each ``bench_*.py`` script builds its data, hands a list of :class:`Contender` objects to
:func:`run_interleaved`, prints a table with :func:`print_table` and writes every raw
timing, the medians, the ratios and :func:`environment` with :func:`write_json`.

Timing rules, chosen because the machines these run on are shared and noisy:

- every contender runs in the same process, on the same arrays;
- the order of the contenders rotates from one repeat to the next, so none always runs
  first (cold caches) or last (after the others have fragmented memory);
- the summary is the median of the repeats, with the minimum and the interquartile range
  next to it; the ratios are ratios of medians.

Peak memory is the peak resident set size of the process during a call, minus the resident
size just before it, read from ``/proc/self/status`` after resetting the high-water mark
through ``/proc/self/clear_refs``. Unlike ``tracemalloc`` it also sees memory that PyTorch
allocates, and it costs nothing while the clock runs. It is ``None`` where ``/proc`` does
not offer this (outside Linux).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import math
import os
import platform
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"

#: Distributions whose versions go into every result file.
VERSIONED_PACKAGES = (
    "failwise",
    "numpy",
    "scipy",
    "scikit-learn",
    "netcal",
    "mapie",
    "torch",
    "pyro-ppl",
    "rich",
)

_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


# --------------------------------------------------------------------------- imports


def ensure_failwise_importable() -> None:
    """Make ``import failwise`` work when the package is not installed.

    The scripts run as ``python benchmarks/bench_x.py`` from a checkout; if failwise is not
    installed (editable or not), the checkout's ``src`` folder is put on ``sys.path``.
    An installed failwise is left alone.
    """
    try:
        importlib.import_module("failwise")
    except ImportError:
        sys.path.insert(0, str(ROOT / "src"))


def optional_import(module: str, *, extra: str | None = None) -> tuple[ModuleType | None, str]:
    """Import ``module`` or explain why it could not be imported.

    Returns ``(module, "")`` on success and ``(None, reason)`` otherwise, so that a script
    can still time the other contenders and record why one is missing.
    """
    try:
        return importlib.import_module(module), ""
    except ImportError as exc:
        hint = f" (install it with `pip install failwise[{extra}]`)" if extra else ""
        return None, f"cannot import {module}: {exc}{hint}"


# --------------------------------------------------------------------------- arguments


def build_parser(name: str, description: str, *, default_repeats: int) -> argparse.ArgumentParser:
    """Return the argument parser every benchmark script shares.

    ``--quick`` switches to tiny sizes (seconds, for smoke tests), ``--repeats`` sets the
    number of timed repeats per contender, ``--out`` the JSON path and ``--seed`` the data.
    """
    parser = argparse.ArgumentParser(
        prog=f"bench_{name}.py",
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes, to check that the script works; the timings mean nothing",
    )
    parser.add_argument(
        "--repeats",
        type=_positive_int,
        default=None,
        help=f"timed repeats per contender (default {default_repeats}, 2 with --quick); "
        "slow peers may be capped lower, which the output says",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS_DIR / f"{name}.json",
        help="where to write the JSON results",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    return parser


def resolve_repeats(args: argparse.Namespace, *, default_repeats: int) -> int:
    """The number of repeats: ``--repeats`` if given, else the script's default."""
    if args.repeats is not None:
        return int(args.repeats)
    return 2 if args.quick else default_repeats


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 1; got {text}")
    return value


# --------------------------------------------------------------------------- memory


def _read_status_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


class PeakRSS:
    """Context manager measuring the peak resident memory a block adds, in bytes.

    ``peak_bytes`` is ``None`` when the platform cannot reset the high-water mark.
    """

    def __init__(self) -> None:
        self.peak_bytes: int | None = None
        self._before_kib: int | None = None

    def __enter__(self) -> PeakRSS:
        if _reset_peak_rss():
            self._before_kib = _read_status_kib("VmRSS")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._before_kib is None:
            return
        peak_kib = _read_status_kib("VmHWM")
        if peak_kib is not None:
            self.peak_bytes = max(0, peak_kib - self._before_kib) * 1024


# --------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class Contender:
    """One thing to time.

    Parameters
    ----------
    name : str
        Label in tables and JSON.
    run : callable
        Called with no argument; its last return value is kept (e.g. a fitted model).
    warmup : int, default=1
        Untimed calls before the timed ones. Use 0 for a slow peer that earlier, smaller
        cases in the same process have already warmed up.
    max_repeats : int or None, default=None
        Never time more repeats than this.
    budget_s : float or None, default=None
        Stop timing further repeats once one call took longer than this; the result
        then says how many repeats ran and why.
    """

    name: str
    run: Callable[[], object]
    warmup: int = 1
    max_repeats: int | None = None
    budget_s: float | None = None


@dataclass
class Measurement:
    """Raw timings of one contender and their summary (seconds, bytes)."""

    name: str
    times_s: list[float] = field(default_factory=list)
    peak_rss_bytes: int | None = None
    status: str = "ok"
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok" and bool(self.times_s)

    @property
    def median_s(self) -> float | None:
        return float(np.median(self.times_s)) if self.times_s else None

    @property
    def min_s(self) -> float | None:
        return float(np.min(self.times_s)) if self.times_s else None

    @property
    def iqr_s(self) -> float | None:
        if not self.times_s:
            return None
        q25, q75 = np.percentile(self.times_s, [25, 75])
        return float(q75 - q25)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "repeats": len(self.times_s),
            "times_s": list(self.times_s),
            "median_s": self.median_s,
            "min_s": self.min_s,
            "iqr_s": self.iqr_s,
            "peak_rss_bytes": self.peak_rss_bytes,
            "notes": list(self.notes),
        }


def unavailable(name: str, reason: str) -> Measurement:
    """A measurement for a contender that could not run at all."""
    return Measurement(name=name, status="unavailable", notes=[reason])


def with_missing(
    measurements: Mapping[str, Measurement], missing: Mapping[str, str], order: Sequence[str]
) -> dict[str, Measurement]:
    """Measurements in ``order``, with an ``unavailable`` entry for each missing name.

    ``missing`` maps a contender that could not be set up to the reason; names in neither
    mapping are left out, and names not in ``order`` come last.
    """
    combined = {**measurements, **{n: unavailable(n, r) for n, r in missing.items()}}
    names = [n for n in order if n in combined] + [n for n in combined if n not in order]
    return {name: combined[name] for name in names}


def run_interleaved(
    contenders: Sequence[Contender], *, repeats: int
) -> tuple[dict[str, Measurement], dict[str, object]]:
    """Time every contender ``repeats`` times, rotating their order between repeats.

    Repeat ``r`` runs the contenders in the order of the list rotated by ``r`` places, so
    each of them takes each position in turn. A contender that raises is marked
    ``failed`` (with the exception in its notes) and not called again; the others go on.

    Returns
    -------
    measurements : dict
        Name → :class:`Measurement`, in the order given.
    results : dict
        Name → the value the contender's last successful call returned.
    """
    measurements = {c.name: Measurement(name=c.name) for c in contenders}
    results: dict[str, object] = {}
    active = {c.name: True for c in contenders}

    def call(contender: Contender, *, timed: bool) -> None:
        measurement = measurements[contender.name]
        try:
            with warnings.catch_warnings(record=True) as seen, PeakRSS() as memory:
                warnings.simplefilter("always")
                start = time.perf_counter()
                value = contender.run()
                elapsed = time.perf_counter() - start
        except Exception as exc:  # a failing peer must not stop the others
            measurement.status = "failed"
            measurement.notes.append(f"{type(exc).__name__}: {exc}")
            measurement.notes.append(traceback.format_exc(limit=3))
            active[contender.name] = False
            return
        results[contender.name] = value
        del value
        for warning in seen:
            note = f"{warning.category.__name__}: {warning.message}"
            if note not in measurement.notes:
                measurement.notes.append(note)
        if memory.peak_bytes is not None:
            measurement.peak_rss_bytes = max(measurement.peak_rss_bytes or 0, memory.peak_bytes)
        if not timed:
            return
        measurement.times_s.append(elapsed)
        cap = contender.max_repeats
        if cap is not None and len(measurement.times_s) >= cap:
            active[contender.name] = False
            if cap < repeats:
                measurement.notes.append(f"capped at {cap} repeat(s) of {repeats}")
        elif contender.budget_s is not None and elapsed > contender.budget_s:
            active[contender.name] = False
            if len(measurement.times_s) < repeats:
                measurement.notes.append(
                    f"stopped after {len(measurement.times_s)} of {repeats} repeat(s): one "
                    f"call took {elapsed:.1f} s, over the {contender.budget_s:.0f} s budget"
                )

    for contender in contenders:
        for _ in range(contender.warmup):
            if active[contender.name]:
                call(contender, timed=False)

    count = len(contenders)
    for repeat in range(repeats):
        shift = repeat % count if count else 0
        for contender in [*contenders[shift:], *contenders[:shift]]:
            if active[contender.name]:
                call(contender, timed=True)
    return measurements, results


def latency_samples(fn: Callable[[int], object], *, calls: int, warmup: int = 50) -> NDArray[Any]:
    """Per-call wall time in seconds of ``fn(i)`` for ``i`` in ``range(calls)``."""
    for i in range(warmup):
        fn(i)
    samples = np.empty(calls, dtype=np.float64)
    clock = time.perf_counter_ns
    for i in range(calls):
        start = clock()
        fn(i)
        samples[i] = clock() - start
    return samples * 1e-9


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator`` or ``None`` when either is missing or zero."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def median_ratio(a: Measurement | None, b: Measurement | None) -> float | None:
    """Ratio of the medians of two measurements (``a / b``), if both ran."""
    if a is None or b is None or not a.ok or not b.ok:
        return None
    return ratio(a.median_s, b.median_s)


# --------------------------------------------------------------------------- output


def format_seconds(seconds: float | None) -> str:
    """A duration with a unit that keeps 3 significant digits readable."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    if seconds >= 1:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def format_bytes(size: int | None) -> str:
    if size is None:
        return "—"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover - the loop always returns


def format_ratio(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.3g}×"


def format_number(value: float | None, digits: int = 4) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.{digits}g}"


def print_table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], *, caption: str = ""
) -> None:
    """Print a table with rich (plain text when stdout is not a terminal)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, caption=caption or None, title_justify="left")
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right")
    for row in rows:
        table.add_row(*row)
    Console(width=max(100, len(" ".join(columns)) + 8 * len(columns))).print(table)


def measurement_row(
    measurement: Measurement, *, extra: Sequence[str] = (), show_memory: bool = True
) -> list[str]:
    """The standard first columns of a table row for one measurement."""
    if not measurement.ok:
        reason = measurement.notes[0] if measurement.notes else ""
        label = f"{measurement.name} ({measurement.status}: {reason[:60]})"
        return [label, "—", "—", "—", *(["—"] if show_memory else []), *extra]
    capped = "*" if any(note.startswith(CAP_NOTES) for note in measurement.notes) else ""
    return [
        measurement.name + capped,
        format_seconds(measurement.median_s),
        format_seconds(measurement.min_s),
        format_seconds(measurement.iqr_s),
        *([format_bytes(measurement.peak_rss_bytes)] if show_memory else []),
        *extra,
    ]


#: How the notes of a contender whose repeats were cut short begin.
CAP_NOTES = ("capped at", "stopped after")

MEASUREMENT_COLUMNS = ("contender", "median", "min", "IQR", "peak RSS +")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Measurement):
        return _jsonable(value.to_dict())
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` as indented JSON (non-finite floats become ``null``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_jsonable(payload), indent=2, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- environment


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_total_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        if name == "failwise":
            module, _ = optional_import("failwise")
            return getattr(module, "__version__", None) if module else None
        return None


def _git_revision() -> dict[str, Any]:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": head, "dirty": bool(dirty)}


def _blas() -> str | None:
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # the layout of show_config changes between NumPy versions
        return None


def _torch_threads() -> int | None:
    if "torch" not in sys.modules:
        return None
    torch = sys.modules["torch"]
    return int(torch.get_num_threads())


def environment() -> dict[str, Any]:
    """Machine, interpreter and package versions to store next to the timings.

    Call it after the benchmark ran, so that lazily imported peers (and PyTorch's thread
    count) are reported as they were used.
    """
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return {
        "timestamp_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(affinity) if affinity is not None else None,
        "memory_total_bytes": _memory_total_bytes(),
        "blas": _blas(),
        "torch_threads": _torch_threads(),
        "thread_variables": {name: os.environ.get(name) for name in _THREAD_VARIABLES},
        "packages": {name: _package_version(name) for name in VERSIONED_PACKAGES},
        "git": _git_revision(),
    }


# --------------------------------------------------------------------------- data


def softmax_rows(logits: NDArray[np.float64], *, chunk_rows: int = 100_000) -> NDArray[np.float64]:
    """Row-wise softmax, computed in chunks to bound the temporary memory."""
    out = np.empty_like(logits)
    for start in range(0, logits.shape[0], chunk_rows):
        block = logits[start : start + chunk_rows]
        shifted = block - block.max(axis=1, keepdims=True)
        np.exp(shifted, out=shifted)
        shifted /= shifted.sum(axis=1, keepdims=True)
        out[start : start + chunk_rows] = shifted
    return out


def make_classifier_outputs(
    n_samples: int,
    n_classes: int,
    *,
    overconfidence: float,
    mean_margin: float = 1.5,
    rng: np.random.Generator,
    chunk_rows: int = 100_000,
) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """Synthetic logits of an overconfident classifier and labels drawn from the truth.

    For each row a class ``c`` is drawn uniformly and the *calibrated* logits are
    ``u = s·e_c + N(0, I)``, with a per-row signal ``s = log(K − 1) + ½ + N(mean_margin,
    1.5²)`` so that the top class's probability spreads over (0, 1) for any number of
    classes ``K`` (about 0.75 accuracy at the default margin). The label is drawn from
    ``softmax(u)`` (Gumbel-max) and the model's logits are ``overconfidence · u``, so
    temperature scaling's population optimum is ``T = overconfidence``.

    Returns
    -------
    logits : ndarray of shape (n_samples, n_classes), float64
    labels : ndarray of shape (n_samples,), intp
    """
    logits = np.empty((n_samples, n_classes), dtype=np.float64)
    labels = np.empty(n_samples, dtype=np.intp)
    offset = math.log(max(n_classes - 1, 1)) + 0.5
    for start in range(0, n_samples, chunk_rows):
        rows = min(chunk_rows, n_samples - start)
        block = rng.standard_normal((rows, n_classes))
        signal_class = rng.integers(0, n_classes, size=rows)
        block[np.arange(rows), signal_class] += offset + rng.normal(mean_margin, 1.5, size=rows)
        labels[start : start + rows] = np.argmax(block + rng.gumbel(size=block.shape), axis=1)
        block *= overconfidence
        logits[start : start + rows] = block
    return logits, labels


def size_label(n_samples: int, n_classes: int | None = None) -> str:
    """``1M×100``-style label for a case."""

    def short(value: int) -> str:
        for unit, scale in (("M", 1_000_000), ("k", 1_000)):
            if value >= scale and value % scale == 0:
                return f"{value // scale}{unit}"
        return str(value)

    return short(n_samples) if n_classes is None else f"{short(n_samples)}×{n_classes}"
