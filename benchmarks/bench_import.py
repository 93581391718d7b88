"""Time `import failwise` in fresh interpreters and list the heavy modules it loads.

Run: ``python benchmarks/bench_import.py [--runs 10] [--json out.json]``. Prints a table
(median, min and max wall time of the import over the runs, each in a new subprocess) and
writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

#: Modules that `import failwise` must not load until they are used.
HEAVY = ("failwise.store", "sqlite3", "psycopg", "duckdb", "scipy.stats", "sklearn", "pyarrow")

_PROBE = """
import sys, time, json
start = time.perf_counter()
import failwise
elapsed = time.perf_counter() - start
heavy = {heavy!r}
print(json.dumps({{"seconds": elapsed, "loaded": [m for m in heavy if m in sys.modules],
                  "n_modules": len(sys.modules)}}))
"""


def measure(runs: int) -> dict[str, object]:
    """Import failwise ``runs`` times, each in a fresh interpreter."""
    samples = []
    last: dict[str, object] = {}
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _PROBE.format(heavy=HEAVY)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        last = json.loads(out)
        samples.append(float(last["seconds"]))  # type: ignore[arg-type]
    return {
        "runs": runs,
        "median_s": statistics.median(samples),
        "min_s": min(samples),
        "max_s": max(samples),
        "heavy_modules_loaded": last["loaded"],
        "modules_loaded": last["n_modules"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", type=Path, default=Path("bench_import.json"))
    args = parser.parse_args()
    result = measure(args.runs)
    print(f"{'runs':>6} {'median s':>10} {'min s':>8} {'max s':>8} {'modules':>8}  heavy loaded")
    print(
        f"{result['runs']:>6} {result['median_s']:>10.3f} {result['min_s']:>8.3f} "
        f"{result['max_s']:>8.3f} {result['modules_loaded']:>8}  "
        f"{', '.join(result['heavy_modules_loaded']) or '-'}"  # type: ignore[arg-type]
    )
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
