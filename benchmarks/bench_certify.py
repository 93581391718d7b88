"""How much each certified answer threshold answers, and how often its certificate fails.

Run ``python benchmarks/bench_certify.py`` (``--quick`` for a smoke run on digits and
CIFAR-10 only). Every contender certifies the same statement on the same calibration rows:
*among inputs answered automatically (confidence ≥ threshold), the error rate is at most
``target_risk``, with probability at least ``confidence_level`` over the calibration draw*
(defaults 2 % and 95 %, failwise's defaults), and then answers as much as it can.

Contenders:

- ``failwise``: :class:`failwise.policy.RiskThreshold` as it is now (two pre-registered
  starts, zero and up to three errors allowed, plus restart points; exact binomial
  p-values), on the calibrated top-label probability of the 70 % policy part.
- ``failwise, all rows``: the default of ``failwise evaluate`` (``calibration="all"``): the
  temperature is fitted on every validation row and the policy answers by the calibrated
  top-two log-odds, whose order over rows is the raw logit margin's whatever the
  temperature; so the certificate is ``RiskThreshold`` on the raw margins of *all* the
  validation rows (run exactly so here), with no calibrator in the loop.
- ``failwise (before)``: the procedure ``RiskThreshold`` ran before, frozen here: 90 % of δ
  on one start (the top 5 % of rows, at least the fewest that pass with zero errors, at
  most where 20 errors pass), 10 % on restart points 2^k ≥ twice that start.
- ``joint levels`` (and ``joint levels, all rows``): the plan ``RiskThreshold`` runs for the
  binomial bound, implemented again here as a check that the library and this description
  agree (its rows must equal ``failwise``'s). Starts allowing 0, 1, …, 5 errors (those
  within 60 % of the rows; the zero-error start always), each at the fewest answered rows
  where its error count passes the binomial test at one common level λ, plus restart points
  2^k ≥ twice the deepest start on 10 % of δ. λ is the largest level at which the starts
  pass *together* with probability at most δ under the flat null (every row wrong with
  probability ``target_risk``, independently), computed exactly by following the error count
  from start to start, instead of the Bonferroni sum of the starts' levels; the starts'
  tests overlap (the top rows are in all of them), so the same δ buys shallower starts.
  Below the deepest start that passes, each candidate answering r rows is tested at δ minus
  the flat-null size of the starts deeper than r. Exact under the monotone-risk assumption:
  given the number m of calibration rows above the strictest threshold whose risk exceeds
  the target, the error count of those m rows is Binomial(m, R) with R > ``target_risk`` and
  every row below them is wrong with probability above it, independently; so the error path
  from rank m + 1 on dominates the flat null, and each local test of the closed test (reject
  when few errors occur somewhere at or below rank m + 1) has size at most δ. The plan
  depends on n, ``target_risk`` and δ only.
- ``mapie BH``, ``mapie FST``: MAPIE's ``BinaryClassificationController`` with
  ``risk="precision"`` (positive prediction = answer, positive label = correct, so
  precision ≥ 1 − target is selective risk ≤ target), ``fwer_method="bonferroni_holm"`` or
  ``"fixed_sequence"``, on MAPIE's default grid of thresholds 0, 0.01, …, 0.99, binary
  Hoeffding–Bentkus p-values; the lowest valid threshold.
- ``mapie SFST``: ``fwer_method="split_fixed_sequence"``: the order is learned with
  ``learn_fixed_sequence_order`` (200 target p-values from 1e-25 to 1) on a random 30 % of
  the calibration rows, the test runs on the other 70 %.
- ``SGR``: selection with guaranteed risk (Geifman & El-Yaniv, 2017, Algorithm 1),
  implemented here from the paper: binary search over the sorted calibration confidences
  for ⌈log₂ m⌉ steps, each testing the midpoint's Clopper–Pearson upper bound at
  δ / ⌈log₂ m⌉ against the target; the last threshold that passed.

Data (model outputs are computed once per seed and cached under
``$FAILWISE_CACHE_DIR/bench_certify``):

- ``banking77``: TF-IDF (word 1–2-grams) + logistic regression (C = 10) trained on
  BANKING77 ``train`` minus a random 20 % validation split, with 10 random intents held
  out of training and validation (the category nobody evaluated); seeds 0–5 (held-out
  intents and split change with the seed). Temperature scaling on 30 % of the validation
  rows; the other 70 % are the calibration rows the policy sees.
- ``digits``: the ``failwise demo`` SVM (RBF kernel, standardised pixels; digits 1 and 2
  held out), seeds 0–5, calibrated the same way.
- ``cifar10``: VGG probabilities on the CIFAR-10 test set (Kumar et al., 2019), used as
  given; 5,000 calibration rows.
- ``clinc150``: failwise's TF-IDF + linear SVM on CLINC150 ``train`` (in-scope), margins
  calibrated as above.

**Splits.** Each model's *pool* is its calibration rows plus its in-scope test rows (the
held-out intents / digits are left out, so calibration and test rows are exchangeable).
A split draws as many calibration rows as the model's own validation part and keeps the
rest as held-out rows. Per split: the *hindsight* coverage (the largest top-confidence
share of the calibration rows whose one-sided Clopper–Pearson bound at the same
confidence, with no multiplicity correction, is below the target), each contender's
coverage on the calibration rows, and its risk among answered held-out rows.

**Designs.** ``split`` (every contender but ``failwise, all rows``): calibration rows are the
70 % policy part, scored by calibrated top-label probability. ``all rows``: calibration
rows are every in-scope validation row, scored by the top-two logit margin (for CIFAR-10,
given as probabilities, the top-two log-odds); its pool is those rows plus the in-scope
test rows, and its splits draw as many rows as the validation set holds. SGR is run on
both designs (it only needs an order). Hindsight is computed per design on that design's
own calibration rows.

**Plan floor.** Over the splits whose hindsight coverage is ≥ 20 % (grouped by calibration
size), the fewest left certifying nothing by *any* plan of two or three starts (a zero-error
start, then starts allowing more errors, each at the shallowest point whose union keeps its
flat-null size within δ), the plan chosen on those very splits: a floor for exact plans of
that kind, not a method. A plan certifies nothing exactly when none of its starts passes.

Reported per contender: mean coverage; over splits whose hindsight coverage is ≥ 20 %,
mean coverage ÷ mean hindsight and the share of splits certifying nothing; the violation
rate, the share of splits whose held-out risk among answers exceeds the target (held-out
rows have sampling noise of their own, so this runs above δ for a sharp method even when
the guarantee holds) and the share whose *pool* risk (all rows of the pool, the
population the splits are drawn from) exceeds it. A second table shows each banking77 and
digits seed on its own validation / test split, before and after.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

import _harness as h

NAME = "certify"
HINDSIGHT_FLOOR = 0.2
CASES = ("banking77", "digits", "cifar10", "clinc150")
QUICK_CASES = ("digits", "cifar10")
SEEDS = tuple(range(6))

FAILWISE = "failwise"
FAILWISE_BEFORE = "failwise (before)"
FAILWISE_ALL = "failwise, all rows"
SGR_ALL = "SGR, all rows"
MAPIE_BH = "mapie BH"
MAPIE_FST = "mapie FST"
MAPIE_SFST = "mapie SFST"
SGR = "SGR"
JOINT = "joint levels"
JOINT_ALL = "joint levels, all rows"
CONTENDERS = (FAILWISE, FAILWISE_BEFORE, JOINT, MAPIE_BH, MAPIE_FST, MAPIE_SFST, SGR)
ALL_ROWS_CONTENDERS = (FAILWISE_ALL, JOINT_ALL, SGR_ALL)

#: The joint-levels design: starts allowing 0..5 errors (those within 60 % of the rows), one
#: common level for all of them, and 10 % of δ on restart points 2^k, as in RiskThreshold.
JOINT_ERRORS = tuple(range(6))
JOINT_REACH = 0.6
JOINT_RESTART_SHARE = 0.1

Pool = dict[str, NDArray[Any]]


# --------------------------------------------------------------------------- data


def _data_dir(given: Path | None) -> Path:
    if given is not None:
        return given
    env = os.environ.get("FAILWISE_DATA_DIR")
    return Path(env) if env else h.ROOT.parent / "shared" / "data"


def _cache_dir() -> Path:
    from failwise.datasets import get_cache_dir

    path = get_cache_dir() / "bench_certify"
    path.mkdir(parents=True, exist_ok=True)
    return path


def top_two_margin(scores: NDArray[Any]) -> NDArray[np.float64]:
    """Largest minus second-largest score per row (logits, or log-probabilities)."""
    top = np.partition(np.asarray(scores, dtype=np.float64), scores.shape[1] - 2, axis=1)
    return np.asarray(top[:, -1] - top[:, -2], dtype=np.float64)


def _calibrated(
    val: NDArray[Any],
    y_val: NDArray[np.intp],
    test: NDArray[Any],
    y_test: NDArray[np.intp],
    seed: int,
    *,
    from_probabilities: bool = False,
) -> Pool:
    """Temperature scaling on 30 % of the in-scope validation rows; confidences of the rest.

    ``all_*`` keys: the all-rows design, raw top-two margins of every in-scope validation
    row and of the test rows.
    """
    from failwise.calibration import TemperatureScaling

    rng = np.random.default_rng(seed)
    in_scope = np.flatnonzero(y_val >= 0)
    rng.shuffle(in_scope)
    fit_rows = np.zeros(y_val.size, dtype=bool)
    fit_rows[in_scope[: round(0.3 * in_scope.size)]] = True
    scaler = TemperatureScaling(from_probabilities=from_probabilities)
    scaler.fit(val[fit_rows], y_val[fit_rows])
    rest = ~fit_rows & (y_val >= 0)
    p_val = scaler.predict_proba(val[rest])
    p_test = scaler.predict_proba(test)
    raw_val = np.log(val) if from_probabilities else val
    raw_test = np.log(test) if from_probabilities else test
    return {
        "val_confidence": p_val.max(axis=1),
        "val_correct": p_val.argmax(axis=1) == y_val[rest],
        "test_confidence": p_test.max(axis=1),
        "test_correct": p_test.argmax(axis=1) == y_test,
        "test_in_scope": y_test >= 0,
        "all_val_confidence": top_two_margin(raw_val[in_scope]),
        "all_val_correct": raw_val[in_scope].argmax(axis=1) == y_val[in_scope],
        "all_test_confidence": top_two_margin(raw_test),
        "all_test_correct": raw_test.argmax(axis=1) == y_test,
    }


def _cached(name: str, build: Callable[[], Pool]) -> Pool:
    path = _cache_dir() / f"{name}-v2.npz"  # v2: with the all-rows design
    if path.is_file():
        with np.load(path, allow_pickle=False) as stored:
            return {key: stored[key] for key in stored.files}
    pool = build()
    np.savez(path, **pool)  # type: ignore[arg-type]
    return pool


def _banking77(data_dir: Path, seed: int) -> Pool:
    def build() -> Pool:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        folder = data_dir / "banking77"

        def read(name: str) -> tuple[list[str], list[str]]:
            with (folder / name).open(newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
            return [r["text"] for r in rows], [r["category"] for r in rows]

        intents = json.loads((folder / "categories.json").read_text(encoding="utf-8"))
        train_x, train_c = read("train.csv")
        test_x, test_c = read("test.csv")
        rng = np.random.default_rng(seed)
        held_out = set(rng.choice(len(intents), 10, replace=False).tolist())
        index = {c: i for i, c in enumerate(c for k, c in enumerate(intents) if k not in held_out)}
        y_train = np.array([index.get(c, -1) for c in train_c])
        y_test = np.array([index.get(c, -1) for c in test_c])
        val = np.zeros(y_train.size, dtype=bool)
        val[rng.permutation(y_train.size)[: round(0.2 * y_train.size)]] = True
        fit = ~val & (y_train >= 0)
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        features = vectorizer.fit_transform(
            [x for x, keep in zip(train_x, fit, strict=True) if keep]
        )
        model = LogisticRegression(C=10.0, max_iter=3000).fit(features, y_train[fit])
        val_x = [x for x, keep in zip(train_x, val, strict=True) if keep]
        z_val = model.decision_function(vectorizer.transform(val_x))
        z_test = model.decision_function(vectorizer.transform(test_x))
        return _calibrated(z_val, y_train[val], z_test, y_test, seed)

    return _cached(f"banking77-{seed}", build)


def _digits(seed: int) -> Pool:
    def build() -> Pool:
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC

        from failwise.datasets import load_digits_with_unseen

        data = load_digits_with_unseen(seed=seed, val_size=0.4, test_size=0.3)
        svm = make_pipeline(StandardScaler(), SVC(decision_function_shape="ovr", random_state=seed))
        svm.fit(data.train.X, data.train.y)
        return _calibrated(
            svm.decision_function(data.val.X),
            data.val.y,
            svm.decision_function(data.test.X),
            data.test.y,
            seed,
        )

    return _cached(f"digits-{seed}", build)


def _cifar10(data_dir: Path) -> Pool:
    with np.load(data_dir / "calibration" / "cifar10_vgg_probs.npz", allow_pickle=False) as d:
        proba, labels = d["probs"].astype(np.float64), d["labels"]
    proba /= proba.sum(axis=1, keepdims=True)
    correct = proba.argmax(axis=1) == labels
    confidence = proba.max(axis=1)
    with np.errstate(divide="ignore"):
        log_odds = top_two_margin(np.log(proba))
    return {
        "val_confidence": confidence[:5000],
        "val_correct": correct[:5000],
        "test_confidence": confidence[5000:],
        "test_correct": correct[5000:],
        "test_in_scope": np.ones(5000, dtype=bool),
        "all_val_confidence": log_odds[:5000],
        "all_val_correct": correct[:5000],
        "all_test_confidence": log_odds[5000:],
        "all_test_correct": correct[5000:],
    }


def _clinc150(data_dir: Path) -> Pool:
    def build() -> Pool:
        from failwise.datasets import load_clinc150
        from failwise.models import tfidf_linear_model

        data = load_clinc150(data_dir / "clinc150", download=False)
        keep = data.train.y >= 0
        model = tfidf_linear_model().fit(
            [x for x, k in zip(data.train.X, keep, strict=True) if k], data.train.y[keep]
        )
        return _calibrated(
            model.decision_function(data.val.X),
            data.val.y,
            model.decision_function(data.test.X),
            data.test.y,
            0,
        )

    return _cached("clinc150", build)


def load_case(case: str, data_dir: Path, *, quick: bool) -> list[tuple[str, Pool]]:
    """The models of one case, as (label, pool); raises OSError when data is missing."""
    seeds = SEEDS[:1] if quick else SEEDS
    if case == "banking77":
        return [(f"seed {s}", _banking77(data_dir, s)) for s in seeds]
    if case == "digits":
        return [(f"seed {s}", _digits(s)) for s in seeds]
    if case == "cifar10":
        return [("VGG", _cifar10(data_dir))]
    if case == "clinc150":
        return [("TF-IDF", _clinc150(data_dir))]
    raise ValueError(case)


# --------------------------------------------------------------------------- contenders


def _sorted_path(
    confidence: NDArray[np.float64], correct: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.intp], NDArray[np.intp]]:
    """Distinct thresholds strictest first, with answered counts and error counts."""
    order = np.argsort(-confidence, kind="stable")
    ordered = confidence[order]
    ends = np.flatnonzero(np.append(ordered[1:] != ordered[:-1], True))
    return ordered[ends], ends + 1, np.cumsum(~correct[order])[ends]


def _fewest(alpha: float, level: float, errors: int) -> int:
    """Fewest answered rows with which ``errors`` errors pass the binomial test at ``level``."""
    n = errors + 1
    step = 1
    while stats.binom.cdf(errors, n + step, alpha) > level:
        step *= 2
    low, high = n, n + step
    while high - low > 1:
        mid = (low + high) // 2
        if stats.binom.cdf(errors, mid, alpha) <= level:
            high = mid
        else:
            low = mid
    return high if stats.binom.cdf(errors, low, alpha) > level else low


def failwise_before(
    confidence: NDArray[np.float64], correct: NDArray[np.bool_], alpha: float, delta: float
) -> float:
    """The procedure RiskThreshold ran before (frozen): its threshold, inf if none."""
    thresholds, answered, errors = _sorted_path(confidence, correct)
    n = confidence.size
    clean = _fewest(alpha, 0.9 * delta, 0)
    share = math.ceil(0.05 * n)
    if share <= clean:
        start = clean
    elif stats.binom.cdf(20, share, alpha) > 0.9 * delta:
        start = share
    else:
        start = max(clean, _fewest(alpha, 0.9 * delta, 20))
    shares = np.zeros(answered.size + 1)
    shares[np.searchsorted(answered, start)] += 0.9 * delta
    counts = 2 ** np.arange(int(np.log2(n)) + 1)
    weights = 0.1 * delta * np.sqrt(counts) / np.sqrt(counts).sum()
    used = counts >= 2 * start
    np.add.at(shares, np.searchsorted(answered, counts[used]), weights[used])
    p = stats.binom.cdf(errors, answered, alpha)
    level, best = 0.0, np.inf
    for i in range(answered.size):
        level += shares[i]
        if level <= 0.0:
            continue
        if p[i] <= level:
            best = float(thresholds[i])
        else:
            level = 0.0
    return best


def failwise_now(
    confidence: NDArray[np.float64], correct: NDArray[np.bool_], alpha: float, delta: float
) -> float:
    from failwise.exceptions import UncertifiedWarning
    from failwise.policy import RiskThreshold

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UncertifiedWarning)
        fitted = RiskThreshold(target_risk=alpha, confidence_level=1.0 - delta)
        return float(fitted.fit(confidence, correct).threshold_)


def flat_null_hit(starts: Sequence[tuple[int, int]], alpha: float) -> float:
    """P(some start passes) when every row is wrong with probability ``alpha``, independently.

    ``starts`` holds (answered count k, errors allowed b), by k; start (k, b) passes when the
    top k rows hold at most b errors. The error count is followed from start to start
    (counts above the largest b can no longer pass and are dropped), so the overlap of
    the starts' tests is counted once, not once per start as a Bonferroni sum does.
    """
    most = max((b for _, b in starts), default=-1)
    if most < 0:
        return 0.0
    mass = np.zeros(most + 1)
    mass[0] = 1.0
    hit, previous = 0.0, 0
    for k, b in starts:
        step = stats.binom.pmf(np.arange(most + 1), k - previous, alpha)
        mass = np.convolve(mass, step)[: most + 1]
        previous = k
        if b >= 0:
            hit += float(mass[: b + 1].sum())
            mass[: b + 1] = 0.0
    return hit


def _critical_count(n: int, alpha: float, level: float) -> int:
    """Most errors among ``n`` rows that pass the binomial test at ``level`` (-1: none)."""
    count = int(stats.binom.ppf(level, n, alpha))
    while count >= 0 and stats.binom.cdf(count, n, alpha) > level:
        count -= 1
    while stats.binom.cdf(count + 1, n, alpha) <= level:
        count += 1
    return count


def _joint_starts(
    n: int, alpha: float, delta: float, level: float, errors: Sequence[int]
) -> list[tuple[int, int]]:
    starts = [(_fewest(alpha, level, e), e) for e in errors]
    counts = 2 ** np.arange(int(np.log2(max(n, 1))) + 1)
    counts = counts[counts >= 2 * max(k for k, _ in starts)]
    if counts.size:
        shares = JOINT_RESTART_SHARE * delta * np.sqrt(counts) / np.sqrt(counts).sum()
        for count, share in zip(counts.tolist(), shares.tolist(), strict=True):
            if (b := _critical_count(count, alpha, share)) >= 0:
                starts.append((count, b))
    return sorted(starts)


@lru_cache(maxsize=64)
def joint_plan(n: int, alpha: float, delta: float) -> tuple[tuple[int, int], ...]:
    """The joint-levels starts for ``n`` rows: a function of n, alpha and delta only.

    Every start is placed at one common level λ (the fewest rows at which its error count
    passes at λ), the largest λ whose starts pass together with probability at most δ
    under the flat null (:func:`flat_null_hit`), found by bisection. Starts that then lie
    beyond 60 % of the rows are dropped and λ is found again for the rest (the zero-error
    start always stays).
    """
    errors = list(JOINT_ERRORS)
    while True:

        def size(level: float, errors: list[int] = errors) -> float:
            return flat_null_hit(_joint_starts(n, alpha, delta, level, errors), alpha)

        low, high = 1e-9, delta
        if size(high) <= delta:
            low = high
        while high - low > 1e-12:
            middle = (low + high) / 2
            low, high = (middle, high) if size(middle) <= delta else (low, middle)
        starts = _joint_starts(n, alpha, delta, low, errors)
        # The reach applies to the starts only, not to the restart points among them.
        kept = [e for e in errors if e == 0 or _fewest(alpha, low, e) <= JOINT_REACH * n]
        if kept == errors:
            return tuple(starts)
        errors = kept


def _joint_threshold(
    confidence: NDArray[np.float64],
    correct: NDArray[np.bool_],
    alpha: float,
    delta: float,
    starts: Sequence[tuple[int, int]],
) -> float:
    """The closed test of the starts' union: the threshold it certifies, inf if none.

    The local test at the candidate answering r rows rejects when some start deeper than r
    passes, or when P(Binomial(r, α) ≤ e_r) ≤ δ − (flat-null size of the union of the starts
    deeper than r). Under the monotone-risk assumption the error path below the strictest
    false hypothesis dominates the flat null at α, and each local test is a decreasing
    event of that path, so its size is at most δ: the certificate is exact.
    """
    thresholds, answered, errors = _sorted_path(confidence, correct)
    ranks = np.array([k for k, _ in starts])
    allowed = np.array([b for _, b in starts])
    at = np.searchsorted(answered, ranks)  # the first candidate answering >= k rows
    reach = at < answered.size
    passed = np.zeros(ranks.size, dtype=bool)
    passed[reach] = errors[at[reach]] <= allowed[reach]
    deeper = [flat_null_hit(starts[j:], alpha) for j in range(len(starts))] + [0.0]
    levels = delta - np.array(deeper)[np.searchsorted(ranks, answered, side="right")]
    first = int(at[np.flatnonzero(passed)[-1]]) + 1 if passed.any() else 0
    failed = np.flatnonzero(
        stats.binom.cdf(errors[first:], answered[first:], alpha) > levels[first:]
    )
    last = first + (int(failed[0]) if failed.size else answered.size - first) - 1
    return float(thresholds[last]) if last >= 0 else np.inf


def failwise_joint(
    confidence: NDArray[np.float64], correct: NDArray[np.bool_], alpha: float, delta: float
) -> float:
    """Starts allowing 0–5 errors tested jointly: the threshold, inf if none."""
    starts = joint_plan(int(confidence.size), alpha, delta)
    return _joint_threshold(confidence, correct, alpha, delta, starts)


def plan_floor(
    paths: NDArray[np.intp], alpha: float, delta: float, *, three: bool
) -> dict[str, Any]:
    """The fewest of these splits left certifying nothing by any plan of two or three starts.

    ``paths[i, k - 1]`` is split i's error count among its k most confident rows. Plans: a
    zero-error start at k0, then starts allowing e1 < e2 errors at the shallowest answered
    counts whose union keeps its flat-null size within δ. The plan is chosen on the very
    splits it is scored on, so this is a floor for plans of this kind, not a method.
    """
    n = paths.shape[1]

    def shallowest(fixed: list[tuple[int, int]], errors: int, low: int) -> int | None:
        high = n
        if flat_null_hit([*fixed, (high, errors)], alpha) > delta:
            return None
        while high - low > 1:
            middle = (low + high) // 2
            if flat_null_hit([*fixed, (middle, errors)], alpha) <= delta:
                high = middle
            else:
                low = middle
        return high

    def left(plan: list[tuple[int, int]]) -> int:
        ok = np.zeros(paths.shape[0], dtype=bool)
        for k, b in plan:
            ok |= paths[:, k - 1] <= b
        return int((~ok).sum())

    best: tuple[int, list[tuple[int, int]]] = (paths.shape[0] + 1, [])
    clean = _fewest(alpha, delta, 0)
    for k0 in range(clean, min(n, 2 * clean) + 1, 1 if not three else 3):
        for e1 in range(1, 6):
            k1 = shallowest([(k0, 0)], e1, k0)
            if k1 is None:
                continue
            plans = [[(k0, 0), (k1, e1)]]
            if three:
                for k1b in np.linspace(k1, min(n, 2 * k1), 6).astype(int).tolist():
                    for e2 in range(e1 + 1, 8):
                        k2 = shallowest([(k0, 0), (k1b, e1)], e2, k1b)
                        if k2 is not None:
                            plans.append([(k0, 0), (k1b, e1), (k2, e2)])
            for plan in plans:
                best = min(best, (left(plan), plan))
    return {
        "splits": int(paths.shape[0]),
        "left_certifying_nothing": best[0],
        "share": best[0] / max(paths.shape[0], 1),
        "plan": best[1],
    }


def sgr(
    confidence: NDArray[np.float64], correct: NDArray[np.bool_], alpha: float, delta: float
) -> float:
    """Selection with guaranteed risk (Geifman & El-Yaniv, 2017, Algorithm 1)."""
    order = np.argsort(confidence, kind="stable")  # ascending: index 0 answers everything
    ordered = confidence[order]
    wrong = ~correct[order]
    m = confidence.size
    steps = max(1, math.ceil(math.log2(m)))
    z_min, z_max = 0, m - 1
    best = np.inf
    for _ in range(steps):
        z = math.ceil((z_min + z_max) / 2)
        theta = ordered[z]
        answered = ordered >= theta
        n_answered = int(answered.sum())
        errors = int(wrong[answered].sum())
        bound = (
            1.0
            if errors >= n_answered
            else stats.beta.ppf(1 - delta / steps, errors + 1, n_answered - errors)
        )
        if bound < alpha:
            best = min(best, float(theta))
            z_max = z
        else:
            z_min = z
    return best


def _mapie_threshold(
    confidence: NDArray[np.float64],
    correct: NDArray[np.bool_],
    alpha: float,
    delta: float,
    method: str,
    rng: np.random.Generator,
) -> float:
    from mapie.risk_control import BinaryClassificationController

    grid = np.linspace(0.0, 0.99, 100)  # MAPIE's default grid

    def answer_proba(X: NDArray[np.float64]) -> NDArray[np.float64]:
        scores = np.asarray(X, dtype=np.float64).reshape(-1)
        return np.column_stack([1.0 - scores, scores])

    controller = BinaryClassificationController(
        predict_function=answer_proba,
        risk="precision",
        target_level=1.0 - alpha,
        confidence_level=1.0 - delta,
        list_predict_params=grid,
        fwer_method=method,
    )
    labels = correct.astype(np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "split_fixed_sequence":
            rows = rng.permutation(confidence.size)
            learn, test = rows[: round(0.3 * rows.size)], rows[round(0.3 * rows.size) :]
            controller.learn_fixed_sequence_order(
                confidence[learn], labels[learn], beta_grid=np.logspace(-25, 0, 200), binary=True
            )
            controller.calibrate(confidence[test], labels[test])
        else:
            controller.calibrate(confidence, labels)
    valid = np.asarray(controller.valid_predict_params, dtype=np.float64)
    return float(valid.min()) if valid.size else np.inf


def contender_functions(
    rng: np.random.Generator,
) -> dict[str, Callable[[NDArray[np.float64], NDArray[np.bool_], float, float], float] | str]:
    """Each contender's threshold function, or the reason it cannot run."""
    out: dict[str, Any] = {
        FAILWISE: failwise_now,
        FAILWISE_BEFORE: failwise_before,
        JOINT: failwise_joint,
        SGR: sgr,
    }
    module, reason = h.optional_import("mapie.risk_control", extra="peers")
    for name, method in (
        (MAPIE_BH, "bonferroni_holm"),
        (MAPIE_FST, "fixed_sequence"),
        (MAPIE_SFST, "split_fixed_sequence"),
    ):
        if module is None:
            out[name] = reason
        else:
            out[name] = lambda c, k, a, d, method=method: _mapie_threshold(c, k, a, d, method, rng)
    return out


# --------------------------------------------------------------------------- measuring


def hindsight(
    confidence: NDArray[np.float64], correct: NDArray[np.bool_], alpha: float, delta: float
) -> float:
    """Largest top-confidence share whose uncorrected Clopper–Pearson bound is below alpha."""
    _, answered, errors = _sorted_path(confidence, correct)
    upper = stats.beta.ppf(1 - delta, errors + 1, np.maximum(answered - errors, 1e-12))
    upper = np.where(errors >= answered, 1.0, upper)
    passing = np.flatnonzero(upper < alpha)
    return float(answered[passing[-1]]) / confidence.size if passing.size else 0.0


def _risk(threshold: float, confidence: NDArray[np.float64], correct: NDArray[np.bool_]) -> float:
    answered = confidence >= threshold
    return float(np.mean(~correct[answered])) if answered.any() else float("nan")


def run_case(
    case: str,
    models: list[tuple[str, Pool]],
    *,
    n_splits: int,
    alpha: float,
    delta: float,
    seed: int,
    design: str = "split",
    three_start_floor: bool = True,
) -> dict[str, Any]:
    """Every contender of ``design`` ("split" or "all rows") on ``n_splits`` random splits.

    Also the plan floor (:func:`plan_floor`, three-start plans searched when
    ``three_start_floor``) over the splits whose hindsight coverage is substantial.
    """
    rng = np.random.default_rng(seed)
    functions = contender_functions(rng)
    if design != "split":
        functions = {FAILWISE_ALL: failwise_now, JOINT_ALL: failwise_joint, SGR_ALL: sgr}
    key = "" if design == "split" else "all_"
    per_model = max(1, math.ceil(n_splits / len(models)))
    rows: dict[str, dict[str, list[float]]] = {
        name: {"coverage": [], "held_out_risk": [], "pool_risk": [], "seconds": []}
        for name in functions
    }
    hind: list[float] = []
    sizes = []
    paths: dict[int, list[NDArray[np.intp]]] = {}
    for _, pool in models:
        inside = pool["test_in_scope"].astype(bool)
        confidence = np.concatenate(
            [pool[f"{key}val_confidence"], pool[f"{key}test_confidence"][inside]]
        )
        correct = np.concatenate(
            [pool[f"{key}val_correct"], pool[f"{key}test_correct"][inside]]
        ).astype(bool)
        m = int(pool[f"{key}val_confidence"].size)
        sizes.append((m, int(confidence.size)))
        for _ in range(per_model):
            rows_ = rng.permutation(confidence.size)
            cal, held = rows_[:m], rows_[m:]
            hind.append(hindsight(confidence[cal], correct[cal], alpha, delta))
            if hind[-1] >= HINDSIGHT_FLOOR:
                order = np.argsort(-confidence[cal], kind="stable")
                paths.setdefault(m, []).append(np.cumsum(~correct[cal][order]))
            for name, fn in functions.items():
                if isinstance(fn, str):
                    continue
                started = time.perf_counter()
                threshold = fn(confidence[cal], correct[cal], alpha, delta)
                rows[name]["seconds"].append(time.perf_counter() - started)
                rows[name]["coverage"].append(float(np.mean(confidence[cal] >= threshold)))
                rows[name]["held_out_risk"].append(
                    _risk(threshold, confidence[held], correct[held])
                )
                rows[name]["pool_risk"].append(_risk(threshold, confidence, correct))
    hindsight_arr = np.array(hind)
    substantial = hindsight_arr >= HINDSIGHT_FLOOR
    summary: dict[str, Any] = {}
    for name, fn in functions.items():
        if isinstance(fn, str):
            summary[name] = {"status": "unavailable", "reason": fn}
            continue
        coverage = np.array(rows[name]["coverage"])
        held = np.array(rows[name]["held_out_risk"])
        population = np.array(rows[name]["pool_risk"])
        big = substantial.any()
        summary[name] = {
            "status": "ok",
            "mean_coverage": float(coverage.mean()),
            "coverage_ratio_to_hindsight": (
                float(coverage[substantial].mean() / hindsight_arr[substantial].mean())
                if big
                else None
            ),
            "uncertified_share_where_hindsight_substantial": (
                float(np.mean(coverage[substantial] == 0.0)) if big else None
            ),
            "uncertified_share": float(np.mean(coverage == 0.0)),
            "violation_rate_held_out": float(np.mean(np.nan_to_num(held, nan=0.0) > alpha)),
            "violation_rate_pool": float(np.mean(np.nan_to_num(population, nan=0.0) > alpha)),
            "mean_held_out_risk": float(np.nanmean(held)) if np.isfinite(held).any() else None,
            "median_fit_s": float(np.median(rows[name]["seconds"])),
            "per_split": {
                "coverage": coverage.tolist(),
                "held_out_risk": held.tolist(),
                "pool_risk": population.tolist(),
            },
        }
    return {
        "case": case,
        "design": design,
        "models": [label for label, _ in models],
        "calibration_and_pool_sizes": sizes,
        "n_splits": int(hindsight_arr.size),
        "mean_hindsight": float(hindsight_arr.mean()),
        "share_hindsight_substantial": float(substantial.mean()),
        "hindsight": hindsight_arr.tolist(),
        "contenders": summary,
        "joint_plans": [
            {
                "calibration_rows": m,
                "starts": [list(start) for start in joint_plan(m, alpha, delta)],
                "flat_null_size": flat_null_hit(joint_plan(m, alpha, delta), alpha),
            }
            for m in sorted({m for m, _ in sizes})
        ],
        "plan_floor": [
            {
                "calibration_rows": m,
                **plan_floor(np.array(group), alpha, delta, three=three_start_floor),
            }
            for m, group in sorted(paths.items())
        ],
    }


def native_splits(
    case: str, models: list[tuple[str, Pool]], *, alpha: float, delta: float
) -> list[dict[str, Any]]:
    """Each model on its own calibration / test rows: before and after."""
    out = []
    for label, pool in models:
        confidence, correct = pool["val_confidence"], pool["val_correct"].astype(bool)
        t_conf, t_corr = pool["test_confidence"], pool["test_correct"].astype(bool)
        inside = pool["test_in_scope"].astype(bool)
        entry: dict[str, Any] = {
            "case": case,
            "model": label,
            "calibration_rows": int(confidence.size),
            "hindsight": hindsight(confidence, correct, alpha, delta),
        }
        designs = (
            (FAILWISE_BEFORE, failwise_before, ""),
            (FAILWISE, failwise_now, ""),
            (FAILWISE_ALL, failwise_now, "all_"),
        )
        for name, fn, key in designs:
            confidence = pool[f"{key}val_confidence"]
            correct = pool[f"{key}val_correct"].astype(bool)
            t_conf = pool[f"{key}test_confidence"]
            t_corr = pool[f"{key}test_correct"].astype(bool)
            threshold = fn(confidence, correct, alpha, delta)
            answered = confidence >= threshold
            n_answered, errors = int(answered.sum()), int((answered & ~correct).sum())
            upper = (
                float(stats.beta.ppf(1 - delta, errors + 1, n_answered - errors))
                if n_answered
                else 1.0
            )
            entry[name] = {
                "calibration_rows": int(confidence.size),
                "hindsight": hindsight(confidence, correct, alpha, delta),
                "coverage": n_answered / confidence.size,
                "risk_upper_bound": upper,
                "test_risk_seen": _risk(threshold, t_conf[inside], t_corr[inside]),
                "test_risk_all": _risk(threshold, t_conf, t_corr),
            }
        out.append(entry)
    return out


# --------------------------------------------------------------------------- output


def _pct(value: float | None) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{100 * value:.1f}"


def print_case(result: dict[str, Any], *, alpha: float, delta: float) -> None:
    rows = []
    for name in result["contenders"]:
        entry = result["contenders"][name]
        if entry["status"] != "ok":
            rows.append([name, "—", "—", "—", "—", "—", entry["reason"][:40]])
            continue
        ratio = entry["coverage_ratio_to_hindsight"]
        rows.append(
            [
                name,
                _pct(entry["mean_coverage"]),
                "—" if ratio is None else f"{ratio:.2f}",
                _pct(entry["uncertified_share_where_hindsight_substantial"]),
                _pct(entry["violation_rate_held_out"]),
                _pct(entry["violation_rate_pool"]),
                f"{1000 * entry['median_fit_s']:.1f}",
            ]
        )
    h.print_table(
        f"{result['case']} ({result['design']}): {result['n_splits']} splits, risk ≤ {alpha:g} at "
        f"{1 - delta:.0%}; mean hindsight {_pct(result['mean_hindsight'])} %, "
        f"≥ 20 % in {_pct(result['share_hindsight_substantial'])} % of splits",
        [
            "contender",
            "cov. %",
            "÷ hindsight",
            "none % (h≥20)",
            "viol. held-out %",
            "viol. pool %",
            "fit ms",
        ],
        rows,
        caption="÷ hindsight and none %: over splits whose hindsight coverage is ≥ 20 %",
    )
    floors = result["plan_floor"]
    if floors:
        left = sum(f["left_certifying_nothing"] for f in floors)
        total = sum(f["splits"] for f in floors)
        plans = "; ".join(f"{f['calibration_rows']} rows: {f['plan']}" for f in floors)
        print(
            f"plan floor: the best plan of two or three starts, chosen on these very splits, "
            f"still certifies nothing on {left} of {total} ({_pct(left / total)} %) — {plans}"
        )


def print_native(entries: list[dict[str, Any]]) -> None:
    rows = []
    for e in entries:
        parts = [e[FAILWISE_BEFORE], e[FAILWISE], e[FAILWISE_ALL]]

        def cells(field: str, parts: list[dict[str, Any]] = parts) -> str:
            return " / ".join(_pct(part[field]) for part in parts)

        rows.append(
            [
                f"{e['case']} {e['model']}",
                f"{e['calibration_rows']} / {parts[2]['calibration_rows']}",
                f"{_pct(e['hindsight'])} / {_pct(parts[2]['hindsight'])}",
                cells("coverage"),
                cells("risk_upper_bound"),
                cells("test_risk_seen"),
                cells("test_risk_all"),
            ]
        )
    h.print_table(
        "Own validation / test split (percent): rows and hindsight split / all rows; "
        "the rest before / now (split) / all rows",
        ["model", "rows", "hindsight", "coverage", "bound", "test risk", "test risk (+unseen)"],
        rows,
        caption="test risk: among answered test rows of the trained classes; +unseen: all "
        "test rows, with the held-out intents / digits",
    )


def main(argv: list[str] | None = None) -> int:
    parser = h.build_parser(NAME, __doc__.splitlines()[0], default_repeats=1)
    parser.add_argument("--target-risk", type=float, default=0.02)
    parser.add_argument("--confidence-level", type=float, default=0.95)
    parser.add_argument("--splits", type=int, default=None, help="splits per case (200)")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--cases", nargs="*", default=None, choices=CASES)
    args = parser.parse_args(argv)
    h.ensure_failwise_importable()
    alpha, delta = float(args.target_risk), 1.0 - float(args.confidence_level)
    n_splits = args.splits if args.splits is not None else (8 if args.quick else 200)
    data_dir = _data_dir(args.data_dir)
    cases = args.cases if args.cases else (QUICK_CASES if args.quick else CASES)
    results, native, skipped = [], [], {}
    for case in cases:
        try:
            models = load_case(case, data_dir, quick=args.quick)
        except OSError as exc:
            skipped[case] = f"data not found: {exc}"
            print(f"{case}: skipped ({skipped[case]})")
            continue
        for design in ("split", "all rows"):
            result = run_case(
                case,
                models,
                n_splits=n_splits,
                alpha=alpha,
                delta=delta,
                seed=args.seed,
                design=design,
                three_start_floor=not args.quick,
            )
            print_case(result, alpha=alpha, delta=delta)
            results.append(result)
        if case in ("banking77", "digits"):
            native.extend(native_splits(case, models, alpha=alpha, delta=delta))
    if native:
        print_native(native)
    payload = {
        "benchmark": NAME,
        "description": __doc__,
        "argv": sys.argv[1:] if argv is None else argv,
        "quick": args.quick,
        "seed": args.seed,
        "target_risk": alpha,
        "confidence_level": 1.0 - delta,
        "hindsight_floor": HINDSIGHT_FLOOR,
        "contenders": list(CONTENDERS) + list(ALL_ROWS_CONTENDERS),
        "cases": results,
        "native_splits": native,
        "skipped": skipped,
        "environment": h.environment(),
    }
    path = h.write_json(args.out, payload)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
