"""The report's plain-data inputs validate themselves and stay plain data."""

from __future__ import annotations

import dataclasses
import math
import pickle
from typing import Any

import numpy as np
import pytest

from failwise.exceptions import InputError
from failwise.report import (
    ACTIONS,
    METRIC_NAMES,
    Assumption,
    MetricValue,
    ModelSection,
    ReliabilityBins,
)


def _bins(**overrides: Any) -> ReliabilityBins:
    fields: dict[str, Any] = {
        "mean_confidence": [0.3, float("nan"), 0.9],
        "accuracy": [0.2, float("nan"), 0.8],
        "count": [10, 0, 30],
        "bin_lower": [0.0, 0.5, 0.75],
        "bin_upper": [0.5, 0.75, 1.0],
        "ece": 0.1,
    }
    fields.update(overrides)
    return ReliabilityBins(**fields)


def _section(**overrides: Any) -> ModelSection:
    fields: dict[str, Any] = {
        "name": "model",
        "accuracy": 0.9,
        "before": _bins(),
        "after": _bins(),
        "coverage": [0.5, 1.0],
        "risk": [0.01, 0.1],
        "operating_coverage": 0.5,
        "operating_risk": 0.01,
        "target_risk": 0.02,
        "outcome_counts": {"answer": (49, 1), "escalate": (48, 2)},
        "metrics": {"task_completion_rate": MetricValue(0.97, 0.95, 0.98)},
    }
    fields.update(overrides)
    return ModelSection(**fields)


# --- MetricValue ---------------------------------------------------------------------------


def test_metric_value_rejects_percentages_given_as_whole_numbers() -> None:
    with pytest.raises(InputError, match=r"unit '%' expects a fraction in \[0, 1\]. Pass 0.873"):
        MetricValue(87.3)


def test_metric_value_rejects_an_unknown_unit() -> None:
    with pytest.raises(InputError, match=r"`unit` must be one of .*got 'ms'"):
        MetricValue(12.0, unit="ms")


def test_metric_value_rejects_a_reversed_interval() -> None:
    with pytest.raises(InputError, match=r"interval is reversed \(low=0.9 > high=0.8\)"):
        MetricValue(0.85, low=0.9, high=0.8)


def test_metric_value_rejects_a_value_outside_its_interval() -> None:
    with pytest.raises(InputError, match="lies outside its interval"):
        MetricValue(0.5, low=0.6, high=0.7)


def test_metric_value_rejects_infinite_bounds_and_non_numbers() -> None:
    with pytest.raises(InputError, match="`high` must be finite"):
        MetricValue(3.0, low=1.0, high=float("inf"), unit="s")
    with pytest.raises(InputError, match="`value` must be a number; got str"):
        MetricValue("0.5")  # type: ignore[arg-type]


def test_metric_value_accepts_nan_for_an_undefined_metric() -> None:
    assert math.isnan(MetricValue(float("nan")).value)


def test_metric_value_reads_a_nan_bound_as_unknown() -> None:
    value = MetricValue(0.5, low=float("nan"), high=0.6)
    assert value.low is None
    assert value.high == 0.6


def test_metric_value_stores_numpy_scalars_as_floats() -> None:
    value = MetricValue(np.float64(0.5), low=np.float64(0.4), high=np.float64(0.6))
    assert type(value.value) is float
    assert type(value.low) is float


# --- Assumption ------------------------------------------------------------------------------


def test_assumption_needs_a_name_and_a_value() -> None:
    with pytest.raises(InputError, match="Assumption: `name` is empty"):
        Assumption("  ", "0.6", "why")
    with pytest.raises(InputError, match="Assumption: `value` must be a string; got float"):
        Assumption("P(notice)", 0.6, "why")  # type: ignore[arg-type]


# --- ReliabilityBins -------------------------------------------------------------------------


def test_reliability_bins_store_nan_for_empty_bins_whatever_they_held() -> None:
    bins = _bins(mean_confidence=[0.3, 0.0, 0.9], accuracy=[0.2, 0.0, 0.8])
    assert math.isnan(bins.mean_confidence[1])
    assert math.isnan(bins.accuracy[1])
    assert bins.count == (10, 0, 30)
    assert bins.n_samples == 40


def test_reliability_bins_reject_nan_in_a_filled_bin() -> None:
    with pytest.raises(InputError, match=r"`accuracy` contains NaN at position 1"):
        _bins(mean_confidence=[0.3, 0.6, 0.9], count=[10, 5, 30])


def test_reliability_bins_reject_fields_of_different_lengths() -> None:
    with pytest.raises(InputError, match=r"every field needs one value per bin.*`count` has 2"):
        _bins(count=[10, 30])


def test_reliability_bins_reject_all_empty_bins() -> None:
    with pytest.raises(InputError, match="every bin is empty"):
        _bins(count=[0, 0, 0])


def test_reliability_bins_reject_overlapping_or_unsorted_edges() -> None:
    with pytest.raises(InputError, match="bins must be increasing and must not overlap"):
        _bins(bin_lower=[0.0, 0.4, 0.75])


def test_reliability_bins_reject_negative_or_fractional_counts() -> None:
    with pytest.raises(InputError, match="`count` must hold non-negative integers"):
        _bins(count=[10, 0, -3])
    with pytest.raises(InputError, match="`count` must hold non-negative integers"):
        _bins(count=[10, 0.5, 3])


def test_reliability_bins_reject_an_empty_sequence() -> None:
    with pytest.raises(InputError, match="`accuracy` is empty"):
        _bins(accuracy=[])


def test_reliability_bins_from_predictions_match_a_direct_computation(
    rng: np.random.Generator,
) -> None:
    confidence = rng.uniform(0.2, 1.0, size=2_000)
    correct = (rng.random(2_000) < confidence**2).astype(int)
    bins = ReliabilityBins.from_predictions(confidence, correct, n_bins=10)
    assert sum(bins.count) == 2_000
    expected_ece = 0.0
    for k in range(10):
        low, high = k / 10, (k + 1) / 10
        inside = (confidence > low) & (confidence <= high)
        if k == 0:
            inside |= confidence == 0.0
        assert bins.count[k] == inside.sum()
        if inside.any():
            assert bins.accuracy[k] == pytest.approx(correct[inside].mean())
            assert bins.mean_confidence[k] == pytest.approx(confidence[inside].mean())
            gap = abs(correct[inside].mean() - confidence[inside].mean())
            expected_ece += inside.mean() * gap
    assert bins.ece == pytest.approx(expected_ece)


def test_reliability_bins_from_predictions_ignore_the_order_of_inputs(
    rng: np.random.Generator,
) -> None:
    confidence = rng.random(500)
    correct = rng.random(500) < confidence
    order = rng.permutation(500)
    a = ReliabilityBins.from_predictions(confidence, correct)
    b = ReliabilityBins.from_predictions(confidence[order], correct[order])
    assert a.count == b.count
    assert a.ece == pytest.approx(b.ece)


def test_reliability_bins_from_predictions_put_zero_confidence_in_the_first_bin() -> None:
    bins = ReliabilityBins.from_predictions([0.0, 1.0], [0, 1], n_bins=4)
    assert bins.count == (1, 0, 0, 1)


def test_reliability_bins_from_predictions_validate_their_inputs() -> None:
    with pytest.raises(InputError, match="`confidence` must lie in"):
        ReliabilityBins.from_predictions([1.5, 0.2], [1, 0])
    with pytest.raises(InputError, match="same number of samples"):
        ReliabilityBins.from_predictions([0.5, 0.2], [1, 0, 1])
    with pytest.raises(InputError, match="`n_bins` must be an int >= 1; got 0"):
        ReliabilityBins.from_predictions([0.5], [1], n_bins=0)


# --- ModelSection ----------------------------------------------------------------------------


def test_model_section_requires_task_completion_for_ranking() -> None:
    with pytest.raises(InputError, match="lacks 'task_completion_rate'; the report ranks models"):
        _section(metrics={"escalation_rate": MetricValue(0.1)})


def test_model_section_maps_display_labels_to_metric_names() -> None:
    section = _section(
        metrics={
            "Task completion": MetricValue(0.97),
            "Escalation rate": MetricValue(0.1),
            "cost per task": MetricValue(0.3, unit=""),
        }
    )
    assert list(section.metrics) == ["task_completion_rate", "escalation_rate", "cost per task"]


def test_model_section_accepts_the_names_of_product_metrics_fields() -> None:
    section = _section(
        metrics={
            "task_completion_rate": MetricValue(0.97),
            "time_to_correct_output_median_s": MetricValue(3.2, unit="s"),
            "human_hours_per_1000_tasks": MetricValue(4.0, unit="h"),
        }
    )
    assert set(section.metrics) <= set(METRIC_NAMES)


def test_model_section_rejects_a_known_metric_in_the_wrong_unit() -> None:
    with pytest.raises(InputError, match="must have unit 's'; got '%'"):
        _section(
            metrics={
                "task_completion_rate": MetricValue(0.97),
                "time_to_correct_output_median_s": MetricValue(0.5),
            }
        )


def test_model_section_rejects_a_metric_given_under_two_names() -> None:
    with pytest.raises(InputError, match="given twice"):
        _section(
            metrics={
                "task_completion_rate": MetricValue(0.97),
                "Task completion": MetricValue(0.97),
            }
        )


def test_model_section_rejects_unknown_ladder_actions() -> None:
    with pytest.raises(InputError, match=r"unknown action\(s\) \['escalation'\]"):
        _section(outcome_counts={"answer": (1, 0), "escalation": (1, 0)})


def test_model_section_fills_missing_actions_with_zero_in_ladder_order() -> None:
    section = _section(outcome_counts={"escalate": (3, 1), "answer": (5, 0)})
    assert list(section.outcome_counts) == list(ACTIONS)
    assert section.outcome_counts["clarify"] == (0, 0)


def test_model_section_rejects_bad_counts() -> None:
    with pytest.raises(InputError, match=r"`outcome_counts\['answer'\]` must be a pair"):
        _section(outcome_counts={"answer": (1, -1)})
    with pytest.raises(InputError, match="all zeros"):
        _section(outcome_counts={"answer": (0, 0)})


def test_model_section_rejects_a_curve_of_mismatched_lengths() -> None:
    with pytest.raises(InputError, match="`coverage` has 3 points but `risk` has 2"):
        _section(coverage=[0.1, 0.5, 1.0], risk=[0.0, 0.1])


def test_model_section_rejects_percentages_in_the_curve() -> None:
    with pytest.raises(InputError, match=r"`coverage` must lie in \[0, 1\]"):
        _section(coverage=[50.0, 100.0])


def test_model_section_accepts_nan_risk_but_not_an_all_nan_curve() -> None:
    section = _section(coverage=[0.0, 0.5, 1.0], risk=[float("nan"), 0.01, 0.1])
    assert math.isnan(section.risk[0])
    with pytest.raises(InputError, match="NaN everywhere"):
        _section(risk=[float("nan"), float("nan")])


def test_model_section_names_itself_in_errors() -> None:
    with pytest.raises(InputError, match=r"ModelSection 'bert': `accuracy` must be a number"):
        _section(name="bert", accuracy=1.2)


def test_model_section_rejects_raw_confidence_arrays_for_the_diagrams() -> None:
    with pytest.raises(InputError, match=r"`before` must be a ReliabilityBins.*from_predictions"):
        _section(before=[0.9, 0.8])


def test_model_section_pickles_and_compares_by_value() -> None:
    section = _section()
    clone = pickle.loads(pickle.dumps(section))
    assert clone == section
    assert clone is not section
    assert hash(clone) == hash(section)
    assert clone != dataclasses.replace(section, accuracy=0.8)


def test_metric_names_cover_the_product_vocabulary() -> None:
    for name in (
        "task_completion_rate",
        "time_to_correct_output_median_s",
        "time_to_correct_output_p90_s",
        "escalation_rate",
        "recovery_rate",
        "silent_failure_rate",
        "automation_rate",
        "selective_accuracy",
        "human_hours_per_1000_tasks",
    ):
        assert name in METRIC_NAMES
