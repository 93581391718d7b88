"""Slice finding: planted slices come first, the same as SliceLine's, flukes stay out."""

from __future__ import annotations

import numpy as np
import pytest

from failwise.exceptions import InputError
from failwise.monitor import find_slices


def _setting(seed: int) -> tuple[dict[str, np.ndarray], np.ndarray, set[tuple[str, str]]]:
    """Random categorical and numeric context, one planted slice of one or two predicates."""
    rng = np.random.default_rng(seed)
    n = int(rng.choice([1500, 3000, 6000]))
    n_columns = int(rng.integers(3, 7))
    context: dict[str, np.ndarray] = {}
    for c in range(n_columns):
        levels = int(rng.integers(2, 6))
        context[f"c{c}"] = rng.choice([f"v{i}" for i in range(levels)], size=n)
    context["amount"] = rng.lognormal(3.0, 1.0, size=n)
    columns = rng.choice(n_columns, size=int(rng.integers(1, 3)), replace=False)
    mask = np.ones(n, dtype=bool)
    planted = set()
    for c in columns:
        value = str(context[f"c{c}"][0])
        mask &= context[f"c{c}"] == value
        planted.add((f"c{c}", f"== {value!r}"))
    base = float(rng.uniform(0.03, 0.12))
    failed = rng.random(n) < np.where(mask, base * float(rng.uniform(3.0, 5.0)), base)
    return context, failed, planted


def test_planted_slices_come_first_in_nine_of_ten_settings() -> None:
    hits = 0
    for seed in range(30):
        context, failed, planted = _setting(seed)
        found = find_slices(context, failed, min_size=20)
        hits += bool(found) and set(found[0].predicates) == planted
    assert hits >= 27


def test_same_top_slices_as_sliceline() -> None:
    sliceline = pytest.importorskip("sliceline")
    for seed in range(5):
        context, failed, _ = _setting(seed)
        categorical = {k: v for k, v in context.items() if k != "amount"}
        codes = np.stack([np.unique(v, return_inverse=True)[1] for v in categorical.values()], 1)
        finder = sliceline.Slicefinder(alpha=0.95, k=4, max_l=2, min_sup=20, verbose=False)
        finder.fit(codes, failed.astype(float))
        theirs = []
        for row in finder.top_slices_:
            theirs.append(
                {
                    (name, f"== {str(np.unique(values)[code])!r}")
                    for (name, values), code in zip(categorical.items(), row, strict=True)
                    if code is not None
                }
            )
        ours = find_slices(categorical, failed, min_size=20, k=4, alpha=1.0)
        assert [set(s.predicates) for s in ours] == theirs


def test_without_a_planted_slice_flukes_are_rarely_reported() -> None:
    rng = np.random.default_rng(11)
    reported = 0
    for _ in range(40):
        context = {f"c{c}": rng.choice(["a", "b", "c", "d"], size=1000) for c in range(4)}
        reported += bool(find_slices(context, rng.random(1000) < 0.1, min_size=20))
    # Holm keeps the family-wise error at 5 %; allow three standard errors of 40 draws.
    assert reported <= 40 * (0.05 + 3 * np.sqrt(0.05 * 0.95 / 40))


def test_slice_statistics_numeric_bins_and_metric_deltas() -> None:
    rng = np.random.default_rng(3)
    amount = rng.uniform(0, 100, size=4000)
    channel = rng.choice(["app", "web"], size=4000)
    failed = rng.random(4000) < np.where(amount >= 75, 0.3, 0.05)
    completed = (~failed).astype(float)
    top = find_slices(
        {"amount": amount, "channel": channel}, failed, metrics={"completed": completed}
    )[0]
    assert top.predicates[0][0] == "amount"
    assert top.description.startswith("amount in [")
    assert top.description.endswith("]")  # the last bin includes its upper edge
    rows = top.rows
    assert top.size == rows.size
    assert np.all(amount[rows] >= 74)
    rest = np.setdiff1d(np.arange(4000), rows)
    assert top.failure_rate == pytest.approx(failed[rows].mean())
    assert top.rest_failure_rate == pytest.approx(failed[rest].mean())
    assert top.lift == pytest.approx(failed[rows].mean() / failed.mean())
    assert top.metric_deltas["completed"] == pytest.approx(
        completed[rows].mean() - completed[rest].mean()
    )
    assert top.adjusted_p_value >= top.p_value
    assert top.to_dict()["predicates"][0][0] == "amount"


def test_missing_numbers_get_their_own_slice_and_nothing_failed_means_no_slice() -> None:
    rng = np.random.default_rng(4)
    amount = rng.uniform(0, 10, size=2000)
    amount[:200] = np.nan
    failed = np.zeros(2000, dtype=bool)
    assert find_slices({"amount": amount}, failed) == []
    failed[:200] = rng.random(200) < 0.5
    failed[200:] = rng.random(1800) < 0.05
    assert find_slices({"amount": amount}, failed)[0].description == "amount is missing"


@pytest.mark.parametrize(
    ("context", "failed", "kwargs", "message"),
    [
        ({}, [1], {}, "`context` must be a non-empty mapping"),
        ({"a": [1, 2], "b": [1]}, [1, 0], {}, "has 1 values but the others have 2"),
        ({"a": [[1, 2]]}, [1], {}, "must be 1-D"),
        ({"a": [1, 2]}, [1], {}, "one 0/1 or bool per task"),
        ({"a": [1, 2]}, [1, 2], {}, "must hold booleans or 0/1"),
        ({"a": [1, 2]}, [1, 0], {"min_size": 0}, "`min_size` must be"),
        ({"a": [1, 2]}, [1, 0], {"alpha": 0.0}, "`alpha` must be"),
        ({"a": [1, 2]}, [1, 0], {"metrics": {"m": ["x", "y"]}}, "Metric 'm' must be numeric"),
    ],
)
def test_bad_input_is_named(
    context: object, failed: object, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        find_slices(context, failed, **kwargs)  # type: ignore[arg-type]
