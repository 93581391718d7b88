"""Deterministic fallback rules: keywords, regular expressions, batch application, measurement."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.stats import binomtest

from failwise.exceptions import InputError
from failwise.policy._fallback import (
    NO_OPINION,
    FallbackResult,
    KeywordRules,
    RegexRules,
    apply_fallback,
    measure_fallback,
)

OUT_OF_SCOPE = -1


@pytest.fixture(scope="module")
def clinc150_val(clinc150_dir: Path) -> tuple[list[str], NDArray[np.intp], list[str]]:
    """CLINC150 validation texts (in scope and out of scope), labels by sorted intent name."""
    data = json.loads((clinc150_dir / "data_full.json").read_text(encoding="utf-8"))
    intents = sorted({intent for _, intent in data["train"]})
    index = {intent: i for i, intent in enumerate(intents)}
    rows = data["val"] + data["oos_val"]
    texts = [text for text, _ in rows]
    labels = np.array([index.get(intent, OUT_OF_SCOPE) for _, intent in rows], dtype=np.intp)
    return texts, labels, intents


def _clinc_rules(intents: list[str]) -> list[tuple[str, int]]:
    i = intents.index
    return [
        # specific phrases before the general keyword they contain
        ("reward balance", i("rewards_balance")),
        ("rewards balance", i("rewards_balance")),
        ("balance", i("balance")),
        ("translate", i("translate")),
        ("weather", i("weather")),
        ("flip a coin", i("flip_coin")),
        ("dice", i("roll_dice")),
        ("joke", i("tell_joke")),
        ("timer", i("timer")),
        ("alarm", i("alarm")),
        ("routing number", i("routing")),
        ("calories", i("calories")),
        ("uber", i("uber")),
        ("401k", i("rollover_401k")),
        ("carry on", i("carry_on")),
        ("interest rate", i("interest_rate")),
        ("meaning of life", i("meaning_of_life")),
        # keywords that signal a request the assistant does not handle
        ("brexit", OUT_OF_SCOPE),
        ("crypto", OUT_OF_SCOPE),
        ("black holes", OUT_OF_SCOPE),
    ]


# --------------------------------------------------------------------------- real data


def test_keyword_rules_on_clinc150_validation_are_precise_where_they_fire(
    clinc150_val: tuple[list[str], NDArray[np.intp], list[str]],
) -> None:
    texts, y, intents = clinc150_val
    rules = KeywordRules(_clinc_rules(intents))
    result = apply_fallback(rules, texts)
    assert result.n_errors == 0
    report = measure_fallback(result, y)
    assert report.n_samples == 3100
    # measured: 204 of 3100 inputs fire (6.6%), 202 of them correctly (99.0%, 95% CI 0.965-0.999)
    assert report.n_fired == 204
    assert report.n_correct == 202
    assert report.accuracy_low < report.accuracy < report.accuracy_high
    assert report.accuracy_low > 0.95
    oos = report.labels.tolist().index(OUT_OF_SCOPE)
    assert report.answered[oos] >= 4
    assert report.precision[oos] == 1.0  # out of scope answered on out-of-scope inputs is right


def test_rule_order_decides_between_overlapping_keywords_on_clinc150(
    clinc150_val: tuple[list[str], NDArray[np.intp], list[str]],
) -> None:
    texts, y, intents = clinc150_val
    i = intents.index
    rewards = [("reward balance", i("rewards_balance")), ("rewards balance", i("rewards_balance"))]
    specific_first = KeywordRules([*rewards, ("balance", i("balance"))])
    general_first = KeywordRules([("balance", i("balance")), *rewards])
    good = measure_fallback(specific_first.apply(texts), y)
    bad = measure_fallback(general_first.apply(texts), y)
    # measured: both fire on 12 inputs; 11 right with the phrases first, 2 with "balance" first
    assert good.n_fired == bad.n_fired == 12
    assert (good.n_correct, bad.n_correct) == (11, 2)


def test_keyword_rules_batch_equals_one_by_one_on_clinc150(
    clinc150_val: tuple[list[str], NDArray[np.intp], list[str]],
) -> None:
    texts, _, intents = clinc150_val
    rules = KeywordRules(_clinc_rules(intents))
    one_by_one = [rules(text) for text in texts[:500]]
    expected = [NO_OPINION if label is None else label for label in one_by_one]
    assert rules.apply(texts[:500]).tolist() == expected


# --------------------------------------------------------------------------- keyword matching


def test_first_rule_in_list_order_wins_not_first_in_text() -> None:
    rules = KeywordRules([("card", 1), ("lost", 2)])
    assert rules("I lost my card") == 1
    assert KeywordRules([("lost", 2), ("card", 1)])("I lost my card") == 2


def test_mapping_priority_follows_mapping_then_keyword_order() -> None:
    rules = KeywordRules({4: ["freeze", "block"], 9: ["card"]})
    assert rules("block my card") == 4
    assert rules("card") == 9
    assert KeywordRules({3: "balance"})("my balance") == 3  # a single string is one keyword


def test_whole_word_matching_skips_words_that_contain_the_keyword() -> None:
    assert KeywordRules([("card", 1)])("cardinal rules") is None
    assert KeywordRules([("card", 1)], whole_word=False)("cardinal rules") == 1
    assert KeywordRules([("c++", 2)])("I write C++ daily") == 2
    assert KeywordRules([("card", 1)])("card-holder") == 1  # a hyphen is a word boundary


def test_case_sensitivity_is_configurable() -> None:
    assert KeywordRules([("PIN", 1)])("reset my pin") == 1
    assert KeywordRules([("PIN", 1)], case_sensitive=True)("reset my pin") is None
    assert KeywordRules([("PIN", 1)], case_sensitive=True)("reset my PIN") == 1


def test_phrases_match_across_any_whitespace() -> None:
    rules = KeywordRules([("credit   card", 5)])
    assert rules("my credit\n card is gone") == 5
    assert rules("my creditcard") is None


def test_unicode_text_is_normalised_and_case_folded() -> None:
    rules = KeywordRules([("straße", 1), ("café", 2), ("Ärger", 3), ("予約", 4)])
    assert rules("Welche STRASSE?") == 1
    assert rules("un cafe\u0301 noir") == 2  # decomposed é matches the composed keyword
    assert rules("so viel ärger") == 3
    assert rules("予約") == 4
    assert (
        rules("レストランの予約をしたい") is None
    )  # no spaces between words: use whole_word=False
    assert KeywordRules([("予約", 4)], whole_word=False)("レストランの予約をしたい") == 4


def test_empty_and_blank_texts_get_no_opinion() -> None:
    rules = KeywordRules([("help", 0)])
    assert rules("") is None
    assert rules.apply(["", "   ", "help"]).tolist() == [NO_OPINION, NO_OPINION, 0]


def test_rules_that_never_fire_give_no_opinion_everywhere() -> None:
    rules = KeywordRules([("zzzz", 0)])
    labels = rules.apply(["hello", "world"])
    assert labels.dtype == np.intp
    report = measure_fallback(labels, [0, 1])
    assert report.n_fired == 0
    assert report.coverage == 0.0
    assert np.isnan(report.accuracy)
    assert (report.accuracy_low, report.accuracy_high) == (0.0, 1.0)
    assert report.labels.size == 0
    assert report.to_dict()["accuracy"] is None


def test_out_of_scope_keywords_return_minus_one() -> None:
    rules = KeywordRules({OUT_OF_SCOPE: ["stock tips", "lottery"], 2: ["transfer"]})
    assert rules.apply(["any lottery numbers?", "transfer $5"]).tolist() == [OUT_OF_SCOPE, 2]


def test_duplicate_keyword_with_the_same_label_is_allowed() -> None:
    rules = KeywordRules([("pin", 1), ("PIN", 1)])
    assert rules.n_rules == 1


def test_rules_pickle_and_keep_their_behaviour() -> None:
    keyword = KeywordRules([("balance", 3)], case_sensitive=False)
    regex = RegexRules([(r"\bw-?2\b", 5)])
    for rules, text, label in ((keyword, "BALANCE", 3), (regex, "my W2", 5)):
        restored = pickle.loads(pickle.dumps(rules))
        assert restored(text) == label
    assert "1 rules" in repr(keyword)


# --------------------------------------------------------------------------- regex rules


def test_regex_rules_first_matching_pattern_wins() -> None:
    rules = RegexRules([(r"\bcard\b.*\blost\b", 1), (r"\blost\b", 2)])
    assert rules("card was lost") == 1
    assert rules("lost my card") == 2
    assert rules("nothing here") is None


def test_regex_rules_ignore_case_by_default_and_accept_flags_and_compiled_patterns() -> None:
    assert RegexRules([(r"pin", 1)])("PIN") == 1
    assert RegexRules([(r"pin", 1)], flags=0)("PIN") is None
    assert RegexRules([(re.compile(r"PIN"), 1)])("pin") is None  # compiled keeps its own flags


# --------------------------------------------------------------------------- apply_fallback


def test_apply_fallback_records_exceptions_as_no_opinion_and_counts_them() -> None:
    def fragile(text: str) -> int | None:
        if "boom" in text:
            raise RuntimeError("backend down")
        return 1 if "yes" in text else None

    result = apply_fallback(fragile, ["yes", "boom", "no", "boom yes"])
    assert result.labels.tolist() == [1, NO_OPINION, NO_OPINION, NO_OPINION]
    assert result.n_errors == 2
    assert isinstance(result.first_error, RuntimeError)
    assert result.first_error_index == 1
    assert result.coverage == 0.25


def test_apply_fallback_counts_invalid_return_values_as_errors() -> None:
    outputs = {"a": "balance", "b": True, "c": -7, "d": 12, "e": np.int64(2), "f": -1}
    result = apply_fallback(outputs.__getitem__, list("abcdef"), n_classes=10)  # type: ignore[arg-type]
    assert result.labels.tolist() == [NO_OPINION] * 4 + [2, OUT_OF_SCOPE]
    assert result.n_errors == 4
    assert isinstance(result.first_error, InputError)
    assert "must return an int label or None; it returned str 'balance'" in str(result.first_error)


def test_apply_fallback_can_raise_for_debugging() -> None:
    with pytest.raises(ZeroDivisionError):
        apply_fallback(lambda x: 1 // x, [1, 0], on_error="raise")


def test_apply_fallback_on_keyword_rules_records_non_text_inputs() -> None:
    result = apply_fallback(KeywordRules([("hi", 0)]), ["hi", None, 3])
    assert result.labels.tolist() == [0, NO_OPINION, NO_OPINION]
    assert result.n_errors == 2
    assert "`text` must be a str; got NoneType None" in str(result.first_error)


def test_apply_fallback_accepts_an_empty_batch() -> None:
    result = apply_fallback(KeywordRules([("hi", 0)]), [])
    assert result.labels.shape == (0,)
    assert result.coverage == 0.0


def test_apply_fallback_rejects_a_single_string() -> None:
    with pytest.raises(InputError, match="got a single str, which would be split into characters"):
        apply_fallback(KeywordRules([("hi", 0)]), "hi there")


def test_apply_fallback_rejects_a_non_callable() -> None:
    with pytest.raises(InputError, match=r"`fallback` must be a callable x -> label \| None"):
        apply_fallback({"hi": 0}, ["hi"])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- measure_fallback


def test_measure_fallback_treats_out_of_scope_answers_correctly() -> None:
    fallback = [OUT_OF_SCOPE, OUT_OF_SCOPE, 2, 2, NO_OPINION]
    y = [OUT_OF_SCOPE, 2, OUT_OF_SCOPE, 2, 2]
    report = measure_fallback(fallback, y)
    assert report.n_fired == 4
    assert report.n_correct == 2
    assert report.labels.tolist() == [OUT_OF_SCOPE, 2]
    assert report.answered.tolist() == [2, 2]
    assert report.correct.tolist() == [1, 1]


def test_measure_fallback_interval_is_clopper_pearson() -> None:
    report = measure_fallback([0] * 20, [0] * 18 + [1] * 2, confidence_level=0.9)
    assert report.accuracy == pytest.approx(0.9)
    exact = binomtest(18, 20).proportion_ci(confidence_level=0.9, method="exact")
    assert report.accuracy_low == pytest.approx(exact.low, abs=1e-9)
    assert report.accuracy_high == pytest.approx(exact.high, abs=1e-9)
    assert (round(report.accuracy_low, 4), round(report.accuracy_high, 4)) == (0.7174, 0.9819)
    assert report.precision_low[0] == pytest.approx(report.accuracy_low)


def test_measure_fallback_interval_is_one_sided_at_the_extremes() -> None:
    report = measure_fallback([1] * 10, [1] * 10)
    assert report.accuracy_high == 1.0
    assert report.accuracy_low == pytest.approx(0.025 ** (1 / 10))


def test_fallback_report_serialises_as_json() -> None:
    report = measure_fallback(np.array([0, 1, NO_OPINION]), [0, 0, 1])
    as_dict = report.to_dict()
    assert as_dict["per_label"][1] == {
        "answered": 1,
        "correct": 0,
        "precision": 0.0,
        "precision_low": 0.0,
        "precision_high": pytest.approx(0.975),
    }
    json.dumps(as_dict)


def test_measure_fallback_accepts_a_fallback_result() -> None:
    result = FallbackResult(np.array([3, NO_OPINION]), 0, None, None)
    assert measure_fallback(result, [3, 1]).accuracy == 1.0


# --------------------------------------------------------------------------- errors


def test_invalid_regex_is_named_in_the_error() -> None:
    with pytest.raises(
        InputError, match=r"pattern 1 '\(unclosed' is not a valid regular expression"
    ):
        RegexRules([(r"ok", 0), (r"(unclosed", 1)])


def test_empty_keyword_is_rejected() -> None:
    with pytest.raises(InputError, match="rule 1 has an empty keyword '  '"):
        KeywordRules([("ok", 0), ("  ", 1)])


def test_swapped_rule_pairs_are_detected() -> None:
    with pytest.raises(InputError, match="Did you swap them"):
        KeywordRules([(3, "balance")])  # type: ignore[list-item]


def test_conflicting_labels_for_one_keyword_are_rejected() -> None:
    with pytest.raises(
        InputError, match=r"keyword 'Card' maps to 1 \(rule 0\) and to 2 \(rule 1\)"
    ):
        KeywordRules([("card", 1), ("Card", 2)])


@pytest.mark.parametrize(
    ("label", "message"),
    [
        (NO_OPINION, "-2 is NO_OPINION"),
        (-5, "must be a class index >= 0 or -1"),
        ("balance", "must be an int class index"),
        (True, "must be an int class index"),
    ],
)
def test_invalid_rule_labels_are_rejected(label: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        KeywordRules([("word", label)])  # type: ignore[list-item]
    with pytest.raises(InputError, match=message):
        RegexRules([("word", label)])  # type: ignore[list-item]


def test_empty_rule_sets_are_rejected() -> None:
    with pytest.raises(InputError, match="`rules` is empty"):
        KeywordRules([])
    with pytest.raises(InputError, match="`patterns` is empty"):
        RegexRules([])


def test_regex_rules_reject_a_mapping() -> None:
    with pytest.raises(InputError, match=r"list of \(pattern, label\) pairs in priority order"):
        RegexRules({"pin": 1})  # type: ignore[arg-type]


def test_non_text_input_to_rules_is_rejected_with_its_position() -> None:
    rules = KeywordRules([("hi", 0)])
    with pytest.raises(InputError, match="`text` must be a str; got int 5"):
        rules(5)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="item 1 is NoneType None"):
        rules.apply(["hi", None])  # type: ignore[list-item]
    with pytest.raises(InputError, match="got a single str"):
        rules.apply("hi")


def test_measure_fallback_rejects_bad_inputs() -> None:
    with pytest.raises(InputError, match="`fallback_labels` must be >= -2"):
        measure_fallback([-3, 0], [0, 0])
    with pytest.raises(InputError, match="`fallback_labels` has 2, `y` has 3"):
        measure_fallback([0, 0], [0, 0, 1])
    with pytest.raises(InputError, match="must hold int labels"):
        measure_fallback([None, 0], [0, 0])  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"`confidence_level` must be a number in \(0, 1\)"):
        measure_fallback([0], [0], confidence_level=95)
    with pytest.raises(InputError, match="must hold class indices >= -1"):
        measure_fallback([0], [-2])
