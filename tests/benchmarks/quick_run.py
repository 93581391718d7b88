"""A benchmark script run as a user runs it: ``python benchmarks/SCRIPT --quick --out FILE``.

The checkout's ``src`` comes first on ``PYTHONPATH``; the script must exit 0 and write
its JSON, which is returned.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["BENCHMARKS", "ROOT", "quick_run"]

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"


def quick_run(
    script: str,
    out: Path,
    *extra: str,
    python: str = sys.executable,
    timeout_s: float = 600.0,
) -> dict[str, Any]:
    """Run ``benchmarks/<script> --quick --out out *extra`` with ``python``; its JSON."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])])
    completed = subprocess.run(
        [python, str(BENCHMARKS / script), "--quick", "--out", str(out), *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert completed.returncode == 0, (
        f"{script} exited with {completed.returncode}\n"
        f"stdout:\n{completed.stdout[-3000:]}\nstderr:\n{completed.stderr[-3000:]}"
    )
    assert out.is_file(), f"{script} did not write {out}"
    payload: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return payload
