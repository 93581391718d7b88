"""Shared fixtures.

The public datasets are read from ``$FAILWISE_DATA_DIR`` (default: ``../shared/data``
beside the checkout); tests that need one skip with a clear reason when it is absent.
Statistical tests take their seed from the ``seed`` fixture: fixed by default, swept
with ``FAILWISE_TEST_SEEDS=0,1,2,...``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("FAILWISE_DATA_DIR", ROOT.parent / "shared" / "data"))

settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

_SEEDS = [int(s) for s in os.environ.get("FAILWISE_TEST_SEEDS", "0").split(",") if s.strip()]


@pytest.fixture(params=_SEEDS, ids=lambda s: f"seed{s}")
def seed(request: pytest.FixtureRequest) -> int:
    """A random seed: 0 unless ``FAILWISE_TEST_SEEDS`` lists others."""
    return int(request.param)


@pytest.fixture
def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder holding clinc150/, banking77/, hwu64/ and calibration/."""
    if not DATA_DIR.is_dir():
        pytest.skip(f"shared datasets not found at {DATA_DIR}; set FAILWISE_DATA_DIR")
    return DATA_DIR


@pytest.fixture(scope="session")
def clinc150_dir(data_dir: Path) -> Path:
    path = data_dir / "clinc150"
    if not (path / "data_full.json").is_file():
        pytest.skip(f"CLINC150 not found at {path}")
    return path


@pytest.fixture(scope="session")
def cifar10_probs(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Real VGG softmax outputs on CIFAR-10 (10,000 × 10) and labels."""
    path = data_dir / "calibration" / "cifar10_vgg_probs.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with np.load(path, allow_pickle=False) as archive:
        return archive["probs"].astype(np.float64), archive["labels"].astype(np.intp)
