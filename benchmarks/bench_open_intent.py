"""Open-intent splits of BANKING77, CLINC150 and HWU64: the out-of-scope screen, seed by seed.

Run ``nice -n 10 python benchmarks/bench_open_intent.py`` (``--quick`` for a smoke run on a
tiny synthetic intent set, TF-IDF only, whose numbers mean nothing; ``--skip-embeddings``
without the `embeddings` extra).

Protocol (that of Zhang, Xu & Lin, "Deep Open Intent Classification with Adaptive Decision
Boundary", AAAI 2021): for each seed a random 25 / 50 / 75 % of the intents are *known*;
the models train on the known intents only; the validation split holds only known intents
(no open example anywhere before test); every test query of another intent (and, for
CLINC150, every ``oos_test`` query) is *open*. BANKING77 has no validation split: 10 % of
its training queries, stratified by intent and drawn per seed, play that part. HWU64 is
read in its published train / valid / test split (8,954 / 1,076 / 1,076 queries, 64
intents; see the data folder's README), and has no out-of-scope queries of its own. As in
``failwise evaluate`` (``calibration="all"``), the temperature and the policy are both fitted
on every validation row, and the policy answers by the calibrated top-two log-odds, whose
order temperature scaling does not change (so the certificate stays exact).
``--calibration split`` runs the earlier design instead: 30 % of the validation rows fit the
temperature, 70 % fit the policy, which answers by the top label's probability.

Models: all-MiniLM-L6-v2 sentence embeddings (each dataset encoded once, cached under
``benchmarks/results/cache/``) with logistic regression, and TF-IDF word + character
n-grams with a linear SVM (the light model). BLAS runs single-threaded (``--threads``): on
a shared two-core machine a logistic regression on embeddings fits about ten times faster
than with threads fighting over the cores.

Out-of-scope score, **chosen per split without test data** (:func:`select_candidate`): the
candidates (:func:`candidates`) are the model's own uncertainty (1 − max probability;
negated max margin for the SVM), the cosine distance to the k-th nearest training query
(:class:`failwise.policy.KNNDistance`), the Mahalanobis distance to the nearest intent
centre (:class:`failwise.policy.MahalanobisDistance`, embeddings only), the free energy
of the logits, and mean-rank combinations of these (:class:`failwise.policy.CombinedOODScore`,
reference distributions from the training queries, leave-one-out for the k-NN distance);
for the embeddings, each at C ∈ ``EMBEDDING_C`` of the logistic regression. Pseudo-open
cross-validation on the training queries of the known intents
(:func:`failwise.policy.pseudo_open_folds`, ``SELECTION``) holds out a quarter of the known
intents as unknown in each of four folds and scores each candidate by the macro-F1 with
"open" of the stated-target policy on held-out queries. The one-standard-error rule
(:func:`failwise.policy.choose_by_folds`, ``SELECTION_RULE``) keeps the score used before
unless another beats it by more than one standard error of its per-fold advantage; the
choice is refitted on every known intent. Every rule of ``SELECTION_RULES`` runs in every
run, so each can be compared. The test split, and every open example, stay out of the
choice.
The score used before (uncertainty + 1-NN distance, C = 10, chosen on test macro-F1 of
seeds 0–2) runs beside it as ``stated_targets_fixed_score``.

Reported per dataset, model, known ratio and seed:

(a) the **default policy** (``Policy()`` given the out-of-scope score: selective risk ≤ 2 %
    at 95 % confidence, at most 5 % of in-scope inputs screened): coverage of known-intent
    test queries (answered automatically), the share of open test queries answered
    automatically (silent failures), and whether the screen is on and met its rule; the
    same with the demo's accuracy budget (``ood_max_accuracy_loss=0.02``);
(b) **targets stated up front** for this benchmark's trade-off, never tuned on test:
    ``Policy(target_risk=0.1, ood_false_alarm_rate=0.1)``. Macro-F1 over the known intents
    plus "open", where every non-answer (clarify, fallback, escalate, abstain) counts as
    "open", beside the ADB rows.

Published ADB numbers (F1 over all classes, %, BERT-base, mean over seeds) are copied from
the README of the authors' repository, github.com/thuiar/Adaptive-Decision-Boundary
("Overall Performance" table; "OOS" is CLINC150 with its out-of-scope test queries). ADB
was not published on HWU64, so every row is also compared with ADB's decision rule run here
(:func:`adb_rule`: nearest centroid, "open" outside the intent's radius) on the same
features and the same splits.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import _harness as h

NAME = "open_intent"
RATIOS = (0.25, 0.5, 0.75)
CALIBRATION_SHARE = 0.3
STATED = {"target_risk": 0.1, "ood_false_alarm_rate": 0.1}

#: Zhang, Xu & Lin (AAAI 2021), ADB with BERT: F1 over all classes (%) by known ratio.
ADB_F1 = {
    "banking77": {0.25: 71.62, 0.5: 80.90, 0.75: 85.96},
    "clinc150": {0.25: 77.19, 0.5: 85.05, 0.75: 88.53},
}
ADB_SOURCE = (
    "Zhang, Xu & Lin, Deep Open Intent Classification with Adaptive Decision Boundary, "
    "AAAI 2021; numbers from the 'Overall Performance' table of "
    "github.com/thuiar/Adaptive-Decision-Boundary README.md (BANKING, OOS = CLINC150)"
)


@dataclass
class Corpus:
    """Texts and intent ids of one dataset; ``-1`` marks queries outside every intent."""

    name: str
    n_intents: int
    train_texts: list[str]
    train_y: NDArray[np.intp]
    val_texts: list[str] | None  # None: carve validation out of train per seed
    val_y: NDArray[np.intp] | None
    test_texts: list[str]
    test_y: NDArray[np.intp]


# --------------------------------------------------------------------------- data


def _data_dir() -> Path:
    env = os.environ.get("FAILWISE_DATA_DIR")
    candidates = [Path(env)] if env else []
    candidates += [h.ROOT.parent / "shared" / "data"]
    for path in candidates:
        if any((path / name).is_dir() for name in LOADERS_BY_NAME):
            return path
    raise SystemExit("shared datasets not found; set FAILWISE_DATA_DIR")


def load_banking77(root: Path) -> Corpus:
    def read(name: str) -> tuple[list[str], list[str]]:
        with open(root / "banking77" / name, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        return [r["text"] for r in rows], [r["category"] for r in rows]

    train_x, train_c = read("train.csv")
    test_x, test_c = read("test.csv")
    names = sorted(set(train_c))
    ids = {c: i for i, c in enumerate(names)}
    return Corpus(
        "banking77",
        len(names),
        train_x,
        np.array([ids[c] for c in train_c], dtype=np.intp),
        None,
        None,
        test_x,
        np.array([ids[c] for c in test_c], dtype=np.intp),
    )


def load_clinc150(root: Path) -> Corpus:
    data = json.loads((root / "clinc150" / "data_full.json").read_text(encoding="utf-8"))
    names = sorted({label for _, label in data["train"]})
    ids = {c: i for i, c in enumerate(names)}

    def split(*keys: str) -> tuple[list[str], NDArray[np.intp]]:
        pairs = [pair for key in keys for pair in data[key]]
        return [t for t, _ in pairs], np.array([ids.get(c, -1) for _, c in pairs], dtype=np.intp)

    train_x, train_y = split("train")  # oos_train is never used: no open example in training
    val_x, val_y = split("val")  # nor oos_val: no open example in validation
    test_x, test_y = split("test", "oos_test")
    return Corpus("clinc150", len(names), train_x, train_y, val_x, val_y, test_x, test_y)


def load_hwu64(root: Path) -> Corpus:
    """HWU64 in its published train / valid / test split (one utterance per line in
    ``seq.in``, its ``scenario_intent`` label on the same line of ``label``)."""

    def read(split: str) -> tuple[list[str], list[str]]:
        folder = root / "hwu64" / split
        texts = (folder / "seq.in").read_text(encoding="utf-8").splitlines()
        labels = (folder / "label").read_text(encoding="utf-8").splitlines()
        if len(texts) != len(labels):
            raise SystemExit(
                f"{folder}: seq.in has {len(texts)} lines but label has {len(labels)}; "
                "expected one label per utterance"
            )
        return texts, labels

    (train_x, train_c), (val_x, val_c), (test_x, test_c) = map(read, ("train", "valid", "test"))
    names = sorted(set(train_c))
    ids = {c: i for i, c in enumerate(names)}

    def encode(labels: list[str]) -> NDArray[np.intp]:
        return np.array([ids[c] for c in labels], dtype=np.intp)

    return Corpus(
        "hwu64",
        len(names),
        train_x,
        encode(train_c),
        val_x,
        encode(val_c),
        test_x,
        encode(test_c),
    )


def synthetic_corpus(seed: int = 0) -> Corpus:
    """A small intent set for smoke runs: own words per intent, some borrowed from a neighbour."""
    rng = np.random.default_rng(seed)
    n_intents, words_per_intent = 20, 6
    filler = ["please", "i", "want", "to", "my", "the", "can", "you", "now", "help"]
    vocab = [[f"w{i}x{j}" for j in range(words_per_intent)] for i in range(n_intents)]

    def sentence(label: int) -> str:
        words = list(rng.choice(vocab[label], 2)) + list(rng.choice(filler, 3))
        neighbour = (label + 1) % n_intents
        words += list(rng.choice(vocab[neighbour if rng.uniform() < 0.35 else label], 2))
        return " ".join(rng.permutation(words))

    def sentences(n: int) -> tuple[list[str], NDArray[np.intp]]:
        y = rng.integers(0, n_intents, n)
        return [sentence(int(label)) for label in y], y.astype(np.intp)

    train_x, train_y = sentences(4000)
    test_x, test_y = sentences(1000)
    return Corpus("synthetic", n_intents, train_x, train_y, None, None, test_x, test_y)


LOADERS_BY_NAME = {"banking77": load_banking77, "clinc150": load_clinc150, "hwu64": load_hwu64}


@dataclass
class OpenSplit:
    known: NDArray[np.intp]  # original ids of the known intents, in label order
    train: NDArray[np.intp]  # row indices into the corpus's train texts
    val_rows: NDArray[np.intp]  # into val texts (or train texts when carved)
    val_from_train: bool
    y_train: NDArray[np.intp]
    y_val: NDArray[np.intp]
    y_test: NDArray[np.intp]  # -1 = open


def open_split(corpus: Corpus, ratio: float, seed: int) -> OpenSplit:
    rng = np.random.default_rng(seed)
    k = round(corpus.n_intents * ratio)
    known = np.sort(rng.choice(corpus.n_intents, k, replace=False))
    relabel = np.full(corpus.n_intents + 1, -1, dtype=np.intp)  # index -1 → open
    relabel[known] = np.arange(k)
    train_rows = np.flatnonzero(np.isin(corpus.train_y, known))
    if corpus.val_y is None:
        # Stratified 10 % of each known intent's training queries for validation.
        val_parts = []
        for intent in known:
            rows = train_rows[corpus.train_y[train_rows] == intent]
            val_parts.append(rng.choice(rows, max(1, round(0.1 * rows.size)), replace=False))
        val_rows = np.sort(np.concatenate(val_parts))
        train_rows = np.setdiff1d(train_rows, val_rows)
        y_val = relabel[corpus.train_y[val_rows]]
        from_train = True
    else:
        val_rows = np.flatnonzero(np.isin(corpus.val_y, known))
        y_val = relabel[corpus.val_y[val_rows]]
        from_train = False
    return OpenSplit(
        known=known,
        train=train_rows,
        val_rows=val_rows,
        val_from_train=from_train,
        y_train=relabel[corpus.train_y[train_rows]],
        y_val=y_val,
        y_test=relabel[corpus.test_y],
    )


# --------------------------------------------------------------------------- features


@dataclass
class Features:
    """One model's inputs for a corpus: dense embeddings or texts (TF-IDF fits per split)."""

    kind: str  # "minilm" or "tfidf"
    train: Any
    val: Any
    test: Any


def embed_corpus(corpus: Corpus, cache_dir: Path) -> Features:
    from failwise.models import SentenceEmbedder

    encoder = SentenceEmbedder(cache=True, cache_dir=cache_dir)
    started = time.perf_counter()
    train = encoder.encode(corpus.train_texts)
    val = encoder.encode(corpus.val_texts) if corpus.val_texts is not None else None
    test = encoder.encode(corpus.test_texts)
    print(f"  {corpus.name}: embeddings ready in {time.perf_counter() - started:.1f}s")
    return Features("minilm", train, val, test)


def _rows(data: Any, rows: NDArray[np.intp]) -> Any:
    if isinstance(data, list):
        return [data[i] for i in rows]
    return data[rows]


# --------------------------------------------------------------------------- one run


@dataclass(frozen=True)
class Candidate:
    """One out-of-scope set-up: the classifier's C (None: the model's default) and the
    score columns merged by :class:`failwise.policy.CombinedOODScore`."""

    C: float | None
    columns: tuple[str, ...]

    @property
    def name(self) -> str:
        score = "+".join(self.columns)
        return score if self.C is None else f"{score} C={self.C:g}"


#: The classifier's C for the logistic regression on sentence embeddings (10 is
#: ``embedding_linear_model``'s default).
EMBEDDING_C = (10.0, 100.0)
#: Score columns of the candidates: the model's uncertainty ("unc"), the cosine distance to
#: the k-th nearest training query ("knnK"), the Mahalanobis distance to the nearest
#: intent centre ("maha"; dense features only) and the free energy of the logits
#: ("energy"). The first is the score used before selection (uncertainty + 1-NN distance,
#: C = 10), and wins ties.
SCORE_COLUMNS = (
    ("unc", "knn1"),
    ("unc",),
    ("knn1",),
    ("unc", "maha"),
    ("unc", "knn1", "maha"),
    ("energy",),
    ("energy", "knn1"),
)
FIXED_CANDIDATE = Candidate(10.0, ("unc", "knn1"))
#: Pseudo-open cross-validation: folds, share of the known intents held out as unknown in
#: each fold, share of each intent's training queries held out for evaluation; the whole
#: four folds of a quarter each hold every known intent out once.
SELECTION = {"n_folds": 4, "unknown_share": 0.25, "evaluate_share": 0.2}
#: The rules that turn the folds' scores into a choice
#: (:func:`failwise.policy.choose_by_folds`), each on the first ``n`` folds: the best mean,
#: or the one-standard-error rule that keeps ``FIXED_CANDIDATE`` unless another beats it
#: by more than one standard error of its per-fold advantage. "best, 3 folds" is the
#: choice made before (the first three folds are those of a three-fold draw).
SELECTION_RULES = {
    "best, 3 folds": ("best", 3),
    "best, 4 folds": ("best", 4),
    "1-SE, 4 folds": ("one_standard_error", 4),
}
#: The rule the reported figures use (``--summarise`` re-reads earlier runs under it).
SELECTION_RULE = "1-SE, 4 folds"


def candidates(kind: str) -> list[Candidate]:
    """Every set-up pseudo-open cross-validation chooses from, for one kind of features."""
    if kind == "minilm":
        tried = [FIXED_CANDIDATE]
        tried += [
            Candidate(C, columns)
            for columns in SCORE_COLUMNS
            for C in EMBEDDING_C
            if Candidate(C, columns) != FIXED_CANDIDATE
        ]
        return tried
    return [Candidate(None, columns) for columns in SCORE_COLUMNS if "maha" not in columns]


@dataclass
class Scored:
    """Logits and score columns of one fitted set-up on the rows it was asked about."""

    logits: dict[str, NDArray[np.float64]]  # per part ("policy", "evaluate")
    columns: dict[str, dict[str, NDArray[np.float64]]]  # column → part → score
    reference: dict[str, NDArray[np.float64]]  # column → in-scope training reference
    space_fit: Any  # the fit rows in the distances' feature space
    space: dict[str, Any]  # the parts in that space


def _fit_and_score(
    kind: str,
    C: float | None,
    columns: set[str],
    fit: tuple[Any, NDArray[np.intp]],
    parts: dict[str, Any],
    shared: dict[str, tuple[NDArray[np.float64], dict[str, NDArray[np.float64]]]],
) -> Scored:
    """Fit the classifier (and the distances not in ``shared``) on ``fit`` and score ``parts``.

    ``shared`` caches the distance columns, which do not depend on C, across calls.
    """
    from failwise.models import embedding_linear_model, tfidf_linear_model
    from failwise.policy import KNNDistance, MahalanobisDistance, energy_score

    X_fit, y_fit = fit
    if kind == "minilm":
        model = embedding_linear_model(C=10.0 if C is None else C).fit(X_fit, y_fit)
        space = dict(parts)
        space_fit = X_fit

        def uncertainty(X: Any) -> NDArray[np.float64]:
            return np.asarray(1.0 - model.predict_proba(X).max(axis=1), dtype=np.float64)

    else:
        model = tfidf_linear_model().fit(X_fit, y_fit)
        vectoriser = model[:-1]
        space = {part: vectoriser.transform(X) for part, X in parts.items()}
        space_fit = vectoriser.transform(X_fit)

        def uncertainty(X: Any) -> NDArray[np.float64]:
            return np.asarray(-model.decision_function(X).max(axis=1), dtype=np.float64)

    logits = model.decision_function
    own = {"unc", "energy"}  # from the classifier itself, not cached across C
    for column in sorted(columns - own - set(shared)):
        if column == "maha":
            distance: Any = MahalanobisDistance().fit(space_fit, y_fit)
            reference = distance.score(space_fit)
        else:
            distance = KNNDistance(n_neighbors=int(column[3:])).fit(space_fit)
            reference = distance.score_training()
        shared[column] = (reference, {part: distance.score(X) for part, X in space.items()})
    scored = Scored(
        logits={part: np.asarray(logits(X), dtype=np.float64) for part, X in parts.items()},
        columns={column: shared[column][1] for column in columns - own},
        reference={column: shared[column][0] for column in columns - own},
        space_fit=space_fit,
        space=space,
    )
    if "unc" in columns:
        scored.columns["unc"] = {part: uncertainty(X) for part, X in parts.items()}
        scored.reference["unc"] = uncertainty(X_fit)
    if "energy" in columns:
        scored.columns["energy"] = {part: energy_score(z) for part, z in scored.logits.items()}
        scored.reference["energy"] = energy_score(logits(X_fit))
    return scored


def _ood_scores(scored: Scored, candidate: Candidate) -> dict[str, NDArray[np.float64]]:
    """The candidate's out-of-scope score on every scored part: a single column as it is
    (its in-scope ranks would tie at 1 beyond the training range and blunt the screen), or
    several merged by their in-scope ranks."""
    from failwise.policy import CombinedOODScore

    names = candidate.columns
    if len(names) == 1:
        return dict(scored.columns[names[0]])
    combiner = CombinedOODScore().fit(np.column_stack([scored.reference[c] for c in names]))
    return {
        part: combiner.score(np.column_stack([scored.columns[c][part] for c in names]))
        for part in scored.logits
    }


def _stated_f1(
    logits_policy: NDArray[np.float64],
    y_policy: NDArray[np.intp],
    ood_policy: NDArray[np.float64],
    logits_eval: NDArray[np.float64],
    ood_eval: NDArray[np.float64],
    y_eval: NDArray[np.intp],
) -> float:
    """Macro-F1 with "open" of the stated-target policy, calibrated and fitted on every
    policy row (the benchmark's ``calibration="all"`` design)."""
    from failwise import Policy
    from failwise.calibration import TemperatureScaling
    from failwise.policy import Action

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calibrator = TemperatureScaling().fit(logits_policy, y_policy)
        policy = Policy(**STATED, answer_score="log_odds").fit(
            calibrator.predict_proba(logits_policy), y_policy, ood_score=ood_policy
        )
    decisions = policy.decide(calibrator.predict_proba(logits_eval), ood_score=ood_eval)
    predicted = np.where(decisions.mask(Action.ANSWER), decisions.label, -1).astype(np.intp)
    return _macro_f1(y_eval, predicted, policy.n_classes_)["f1_all"]


def select_candidate(
    kind: str,
    train: tuple[Any, NDArray[np.intp]],
    validation: tuple[Any, NDArray[np.intp]],
    seed: int,
) -> tuple[dict[str, Candidate], dict[str, list[float]]]:
    """Choose the out-of-scope set-up by pseudo-open cross-validation, with no test data
    and no open example.

    :func:`failwise.policy.pseudo_open_folds` draws ``SELECTION["n_folds"]`` folds of the
    split's *training* queries; each fold holds out a quarter of the known intents as
    unknown (disjoint across folds) and a fifth of every intent's queries for evaluation.
    In each fold every candidate is fitted on the remaining known intents' other queries,
    its temperature and stated-target policy (``STATED``) on the split's validation
    queries of those intents, and it is scored by the macro-F1 with "open" of that policy
    on the fold's evaluation queries (held-out intents = open). Each rule of
    ``SELECTION_RULES`` then turns the first folds' scores into a choice
    (:func:`failwise.policy.choose_by_folds`, default ``FIXED_CANDIDATE``). Returns the
    choice of every rule and every candidate's fold scores.

    Only the split's training and validation queries (features and known-intent labels)
    are passed in, so neither the test split nor any open example can enter the choice.
    """
    from failwise.policy import choose_by_folds, pseudo_open_folds

    (X_train, y_train), (X_val, y_val) = train, validation
    tried = candidates(kind)
    scores: dict[str, list[float]] = {c.name: [] for c in tried}
    folds = pseudo_open_folds(y_train, random_state=seed, **SELECTION)
    for fold in folds:
        y_fold = fold.encode(y_train)
        val_known = np.flatnonzero(fold.encode(y_val) >= 0)
        fit = (_rows(X_train, fold.fit_rows), y_fold[fold.fit_rows])
        parts = {"policy": _rows(X_val, val_known), "evaluate": _rows(X_train, fold.evaluate_rows)}
        y_policy, y_eval = fold.encode(y_val)[val_known], y_fold[fold.evaluate_rows]
        shared: dict[str, Any] = {}
        for C in dict.fromkeys(c.C for c in tried):
            group = [c for c in tried if c.C == C]
            needed = {column for c in group for column in c.columns}
            scored = _fit_and_score(kind, C, needed, fit, parts, shared)
            for candidate in group:
                ood = _ood_scores(scored, candidate)
                scores[candidate.name].append(
                    _stated_f1(
                        scored.logits["policy"],
                        y_policy,
                        ood["policy"],
                        scored.logits["evaluate"],
                        ood["evaluate"],
                        y_eval,
                    )
                )
    by_name = {c.name: c for c in tried}
    choices = {
        rule: by_name[
            choose_by_folds(
                {name: values[:n] for name, values in scores.items()},
                default=tried[0].name,
                rule=how,
            )
        ]
        for rule, (how, n) in SELECTION_RULES.items()
    }
    return choices, scores


def _scores(
    features: Features, split: OpenSplit, chosen: list[Candidate]
) -> dict[str, dict[str, Any]]:
    """Logits and out-of-scope scores on validation and test for each chosen set-up,
    fitted on every training query of the known intents."""
    X_train = _rows(features.train, split.train)
    parts = {
        "val": _rows(features.train if split.val_from_train else features.val, split.val_rows),
        "test": features.test,
    }
    shared: dict[str, Any] = {}
    out: dict[str, dict[str, Any]] = {}
    for candidate in chosen:
        scored = _fit_and_score(
            features.kind,
            candidate.C,
            set(candidate.columns),
            (X_train, split.y_train),
            parts,
            shared,
        )
        ood = _ood_scores(scored, candidate)
        out[candidate.name] = {
            "val_logits": scored.logits["val"],
            "test_logits": scored.logits["test"],
            "val_ood": ood["val"],
            "test_ood": ood["test"],
        }
    k = split.known.size
    test_open = adb_rule(scored.space_fit, split.y_train, scored.space["test"], k)
    out["adb_rule"] = _macro_f1(split.y_test, test_open, k)
    return out


def _squared_distances(X: Any, centroids: NDArray[np.float64]) -> NDArray[np.float64]:
    """Squared Euclidean distances of the rows of X (dense or sparse) to each centroid."""
    import scipy.sparse as sparse

    norms = (
        np.asarray(X.multiply(X).sum(axis=1)).ravel()
        if sparse.issparse(X)
        else (np.einsum("ij,ij->i", X, X))
    )
    cross = np.asarray(X @ centroids.T)
    squared = norms[:, None] - 2.0 * cross + np.einsum("ij,ij->i", centroids, centroids)[None, :]
    return np.asarray(np.maximum(squared, 0.0), dtype=np.float64)


def adb_rule(train: Any, y_train: NDArray[np.intp], test: Any, k: int) -> NDArray[np.intp]:
    """ADB's decision rule (Zhang, Xu & Lin, 2021) on fixed features: each known intent's
    centroid ``c_k`` and radius ``Δ_k``; a query goes to its nearest centroid, or to "open"
    (``-1``) when it lies outside that centroid's radius.

    ADB learns ``Δ_k`` by minimising its boundary loss ``Σ_i |d_i − Δ_{y_i}|`` over the
    training queries (``d_i`` = Euclidean distance to the own centroid; the loss is
    ``d − Δ`` outside the boundary and ``Δ − d`` inside). Its minimiser, which ADB's
    gradient descent on a softplus-parametrised ``Δ`` approaches, is the median of each
    intent's training distances, so that is what is used here: no open example, no
    tuning on validation or test. What differs from the paper is only the features: the
    same fixed features the policy's model uses (sentence embeddings or TF-IDF), not BERT
    fine-tuned on the known intents. Dense arrays and sparse matrices both work.
    """
    centroids = np.stack(
        [np.asarray(train[np.flatnonzero(y_train == c)].mean(axis=0)).ravel() for c in range(k)]
    ).astype(np.float64)
    own = np.sqrt(_squared_distances(train, centroids)[np.arange(y_train.size), y_train])
    radius = np.array([np.median(own[y_train == c]) for c in range(k)])
    squared = _squared_distances(test, centroids)
    nearest = squared.argmin(axis=1)
    distance = np.sqrt(squared[np.arange(squared.shape[0]), nearest])
    return np.where(distance <= radius[nearest], nearest, -1).astype(np.intp)


def _macro_f1(truth: NDArray[np.intp], predicted: NDArray[np.intp], k: int) -> dict[str, float]:
    from sklearn.metrics import f1_score

    labels = [*range(k), -1]
    per_class = f1_score(truth, predicted, labels=labels, average=None, zero_division=0)
    return {
        "f1_all": float(np.mean(per_class)),
        "f1_known": float(np.mean(per_class[:-1])),
        "f1_open": float(per_class[-1]),
        "accuracy": float(np.mean(truth == predicted)),
    }


def _hindsight_coverage(
    proba: NDArray[np.float64],
    y: NDArray[np.intp],
    kept: NDArray[np.bool_],
    params: dict[str, Any],
) -> float:
    """Largest top-confidence share of the unscreened policy rows whose one-sided
    Clopper–Pearson upper bound on the error rate is below the target (no multiplicity
    correction): what a certificate could at best reach on these rows."""
    from failwise._stats import clopper_pearson_upper
    from failwise.policy import top_two_log_odds

    target = params.get("target_risk", 0.02)
    level = params.get("confidence_level", 0.95)
    by_log_odds = params.get("answer_score") == "log_odds"
    confidence = (top_two_log_odds(proba) if by_log_odds else proba.max(axis=1))[kept]
    wrong = (proba.argmax(axis=1) != y)[kept]
    if confidence.size == 0:
        return 0.0
    order = np.argsort(-confidence, kind="stable")
    errors = np.cumsum(wrong[order])
    n = np.arange(1, order.size + 1)
    ok = np.flatnonzero(clopper_pearson_upper(errors, n, level) < target)
    return float((ok[-1] + 1) / y.size) if ok.size else 0.0


def _policy_run(
    params: dict[str, Any],
    proba_policy: NDArray[np.float64],
    y_policy: NDArray[np.intp],
    ood_policy: NDArray[np.float64],
    proba_test: NDArray[np.float64],
    ood_test: NDArray[np.float64],
    y_test: NDArray[np.intp],
) -> dict[str, Any]:
    from failwise import Policy
    from failwise.policy import Action

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        policy = Policy(**params).fit(proba_policy, y_policy, ood_score=ood_policy)
    decisions = policy.decide(proba_test, ood_score=ood_test)
    answered = decisions.mask(Action.ANSWER)
    hindsight = _hindsight_coverage(
        proba_policy, y_policy, ood_policy <= policy.ood_threshold_, params
    )
    known, open_ = y_test >= 0, y_test < 0
    screened = ood_test > policy.ood_threshold_
    screen = policy.describe()["ood_screen"]
    predicted = np.where(answered, decisions.label, -1).astype(np.intp)
    k = policy.n_classes_
    right = answered & (decisions.label == y_test)
    return {
        "params": params,
        "answer_threshold": policy.answer_threshold_,
        "certified": bool(policy.certified_),
        "coverage_known": float(answered[known].mean()),
        "answered_correct_known": float(right[known].mean()),
        "risk_among_known_answers": (
            float(1 - right[known & answered].sum() / max(1, (known & answered).sum()))
        ),
        "silent_failures_open": float(answered[open_].mean()) if open_.any() else None,
        "hindsight_coverage_validation": hindsight,
        "screen_on": bool(np.isfinite(policy.ood_threshold_)),
        "screen_met": bool(screen["met"]),
        "screen_unmet": screen["unmet"],
        "screen_limited_by": screen["limited_by"],
        "screened_known": float(screened[known].mean()),
        "screened_open": float(screened[open_].mean()) if open_.any() else None,
        "warnings": [str(w.message) for w in caught],
        **_macro_f1(y_test, predicted, k),
    }


def adopt(rules: dict[str, dict[str, Any]], rule: str) -> dict[str, Any]:
    """The top-level figures of one run under ``rule``: its chosen score and the default,
    demo-budget and stated-target policies with that score."""
    return {"selection_rule": rule, **rules[rule]}


def run_one(
    corpus: Corpus, features: Features, ratio: float, seed: int, calibration: str = "all"
) -> dict[str, Any]:
    from failwise.calibration import TemperatureScaling

    split = open_split(corpus, ratio, seed)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    started = time.perf_counter()
    val_source = features.train if split.val_from_train else features.val
    choices, selection = select_candidate(
        features.kind,
        (_rows(features.train, split.train), split.y_train),
        (_rows(val_source, split.val_rows), split.y_val),
        seed,
    )
    selection_seconds = time.perf_counter() - started
    chosen = choices[SELECTION_RULE]
    fixed = candidates(features.kind)[0]
    scores = _scores(features, split, list(dict.fromkeys([chosen, fixed, *choices.values()])))
    used = {choice.name for choice in choices.values()}
    rng = np.random.default_rng(seed + 1000)
    n_val = split.y_val.size
    order = rng.permutation(n_val)
    n_cal = round(CALIBRATION_SHARE * n_val)
    cal, pol = order[:n_cal], order[n_cal:]
    design: dict[str, Any] = {}
    if calibration == "all":
        cal = pol = np.arange(n_val)
        design = {"answer_score": "log_odds"}

    def policy_inputs(s: dict[str, Any]) -> tuple[NDArray[np.float64], ...]:
        calibrator = TemperatureScaling().fit(s["val_logits"][cal], split.y_val[cal])
        proba_policy = calibrator.predict_proba(s["val_logits"][pol])
        proba_test = calibrator.predict_proba(s["test_logits"])
        return (proba_policy, split.y_val[pol], s["val_ood"][pol], proba_test, s["test_ood"])

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        inputs = {name: policy_inputs(scores[name]) for name in {fixed.name, *used}}
    stated = {
        name: _policy_run({**STATED, **design}, *values, split.y_test)
        for name, values in inputs.items()
    }
    policies = {
        name: {
            "default": _policy_run(dict(design), *inputs[name], split.y_test),
            "default_demo_budget": _policy_run(
                {"ood_max_accuracy_loss": 0.02, **design}, *inputs[name], split.y_test
            ),
            "stated_targets": stated[name],
        }
        for name in used
    }
    rules = {
        rule: {"ood_score": choice.name, **policies[choice.name]}
        for rule, choice in choices.items()
    }
    test_logits = scores[chosen.name]["test_logits"]
    known = split.y_test >= 0
    return {
        "dataset": corpus.name,
        "model": features.kind,
        "known_ratio": ratio,
        "seed": seed,
        "n_known_intents": int(split.known.size),
        "n_train": int(split.train.size),
        "n_validation": int(n_val),
        "n_policy_rows": int(pol.size),
        "n_test_known": int(known.sum()),
        "n_test_open": int((~known).sum()),
        "closed_set_accuracy": float(
            np.mean(test_logits.argmax(axis=1)[known] == split.y_test[known])
        ),
        "calibration": calibration,
        "selection_f1_folds": selection,
        "selection_f1_all": {name: float(np.mean(values)) for name, values in selection.items()},
        "rules": rules,
        **adopt(rules, SELECTION_RULE),
        "selection_seconds": selection_seconds,
        "fixed_score": fixed.name,
        "stated_targets_fixed_score": stated[fixed.name],
        "calibration_warnings": [str(w.message) for w in caught],
        "adb_f1_all": ADB_F1.get(corpus.name, {}).get(ratio),
        "adb_rule_same_features": scores["adb_rule"],
        "seconds": time.perf_counter() - started,
        "load_average_1min": load,
    }


# --------------------------------------------------------------------------- output


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def _adb_rule_stat(group: list[dict[str, Any]]) -> dict[str, float]:
    """Mean and sd over seeds of the same-features ADB rule's macro-F1."""
    values = [g["adb_rule_same_features"]["f1_all"] for g in group]
    return {"mean": float(np.mean(values)), "std": float(np.std(values))}


def _load_range(rows: list[dict[str, Any]]) -> list[float] | None:
    """Lowest and highest 1-minute load average seen at the start of these runs."""
    loads = [r["load_average_1min"] for r in rows if r.get("load_average_1min") is not None]
    return [min(loads), max(loads)] if loads else None


def _counts(names: Iterable[str]) -> dict[str, int]:
    """How often each name occurs, most frequent first."""
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def _stat(values: list[float]) -> dict[str, float]:
    """Mean, sd, lowest and highest of one figure over seeds."""
    v = np.array(values, dtype=float)
    return {
        "mean": float(v.mean()),
        "std": float(v.std()),
        "min": float(v.min()),
        "max": float(v.max()),
    }


def _summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, float], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["model"], row["known_ratio"]), []).append(row)
    out = []
    for (dataset, model, ratio), group in groups.items():

        def stat(policy: str, key: str, group: list[dict[str, Any]] = group) -> dict[str, float]:
            return _stat([g[policy][key] for g in group])

        out.append(
            {
                "dataset": dataset,
                "model": model,
                "known_ratio": ratio,
                "seeds": [g["seed"] for g in group],
                "default_coverage_known": stat("default", "coverage_known"),
                "default_silent_failures_open": stat("default", "silent_failures_open"),
                "default_screen_on_every_seed": all(g["default"]["screen_on"] for g in group),
                "default_screen_met_every_seed": all(g["default"]["screen_met"] for g in group),
                "demo_budget_coverage_known": stat("default_demo_budget", "coverage_known"),
                "demo_budget_silent": stat("default_demo_budget", "silent_failures_open"),
                "stated_f1_all": stat("stated_targets", "f1_all"),
                "fixed_score_f1_all": stat("stated_targets_fixed_score", "f1_all"),
                "ood_scores_chosen": _counts(g["ood_score"] for g in group),
                "rules_f1_all": {
                    rule: _stat([g["rules"][rule]["stated_targets"]["f1_all"] for g in group])
                    for rule in SELECTION_RULES
                },
                "rules_chosen": {
                    rule: _counts(g["rules"][rule]["ood_score"] for g in group)
                    for rule in SELECTION_RULES
                },
                "stated_coverage_known": stat("stated_targets", "coverage_known"),
                "stated_silent_failures_open": stat("stated_targets", "silent_failures_open"),
                "adb_f1_all": ADB_F1.get(dataset, {}).get(ratio),
                "adb_rule_f1_all": _adb_rule_stat(group),
                "load_average_1min": _load_range(group),
            }
        )
    return out


def print_tables(rows: list[dict[str, Any]], summary: list[dict[str, Any]]) -> None:
    per_seed = [
        [
            f"{r['dataset']} {r['model']} {int(100 * r['known_ratio'])}% s{r['seed']}",
            str(r["n_policy_rows"]),
            _pct(r["default"]["coverage_known"]),
            _pct(r["default"]["hindsight_coverage_validation"]),
            _pct(r["default"]["silent_failures_open"]),
            "on" if r["default"]["screen_on"] else "OFF",
            _pct(r["default_demo_budget"]["coverage_known"]),
            _pct(r["default_demo_budget"]["silent_failures_open"]),
            _pct(r["stated_targets"]["f1_all"]),
            _pct(r["stated_targets_fixed_score"]["f1_all"]),
            "—" if r["adb_f1_all"] is None else f"{r['adb_f1_all']:.1f}",
            r["ood_score"],
        ]
        for r in rows
    ]
    h.print_table(
        "Open-intent splits, per seed (%, test split; thresholds from validation only)",
        [
            "split",
            "policy rows",
            "default cov",
            "hindsight",
            "default silent",
            "screen",
            "budget cov",
            "budget silent",
            "F1 stated",
            "F1 fixed",
            "ADB F1",
            "chosen score",
        ],
        per_seed,
        caption="cov = known-intent test queries answered automatically; hindsight = the "
        "largest top-confidence share of the unscreened policy rows whose Clopper–Pearson "
        "bound is below 2 % (what the default's certificate could at best reach); "
        "silent = open test "
        "queries answered automatically; budget = default + ood_max_accuracy_loss=0.02; "
        "F1 stated = macro-F1 (known + open, non-answers = open) with target_risk=0.1, "
        "ood_false_alarm_rate=0.1 and the chosen score; F1 fixed = the same with the "
        "score used before selection (unc+knn1, C=10); chosen score = the pseudo-open "
        "cross-validation's choice",
    )
    h.print_table(
        "Mean ± sd over seeds (%)",
        [
            "split",
            "default cov",
            "min–max",
            "default silent",
            "F1 stated",
            "F1 fixed",
            "ADB F1",
            "Δ",
            "ADB rule",
            "Δ rule",
        ],
        [
            [
                f"{s['dataset']} {s['model']} {int(100 * s['known_ratio'])}%",
                f"{_pct(s['default_coverage_known']['mean'])} ± "
                f"{_pct(s['default_coverage_known']['std'])}",
                f"{_pct(s['default_coverage_known']['min'])}–"
                f"{_pct(s['default_coverage_known']['max'])}",
                _pct(s["default_silent_failures_open"]["mean"]),
                f"{_pct(s['stated_f1_all']['mean'])} ± {_pct(s['stated_f1_all']['std'])}",
                _pct(s["fixed_score_f1_all"]["mean"]),
                "—" if s["adb_f1_all"] is None else f"{s['adb_f1_all']:.1f}",
                "—"
                if s["adb_f1_all"] is None
                else f"{100 * s['stated_f1_all']['mean'] - s['adb_f1_all']:+.1f}",
                _pct(s["adb_rule_f1_all"]["mean"]),
                f"{100 * (s['stated_f1_all']['mean'] - s['adb_rule_f1_all']['mean']):+.1f}",
            ]
            for s in summary
        ],
        caption="ADB F1 = the published BERT rows (none for HWU64); ADB rule = ADB's "
        "centroid-and-radius rule run here on the same features and splits",
    )
    h.print_table(
        "Selection rules: stated-target macro-F1, mean ± sd over seeds (%)",
        ["split", "fixed", *SELECTION_RULES],
        [
            [
                f"{s['dataset']} {s['model']} {int(100 * s['known_ratio'])}%",
                _pct(s["fixed_score_f1_all"]["mean"]),
                *(
                    f"{_pct(s['rules_f1_all'][rule]['mean'])} ± "
                    f"{_pct(s['rules_f1_all'][rule]['std'])}"
                    for rule in SELECTION_RULES
                ),
            ]
            for s in summary
        ],
        caption="fixed = the score used before selection on every split; each rule chooses from "
        "the pseudo-open folds' scores (1-SE keeps the fixed score unless another beats it "
        f"by more than one standard error); the figures above use {SELECTION_RULE!r}",
    )
    load = _load_range(rows)
    if load is not None:
        print(f"1-minute load average at the start of the runs: {load[0]:.1f}–{load[1]:.1f}")


def _payload(
    args: argparse.Namespace,
    seeds: list[int],
    rows: list[dict[str, Any]],
    seconds: float,
    *,
    complete: bool,
) -> dict[str, Any]:
    return {
        "benchmark": NAME,
        "quick": bool(args.quick),
        "complete": complete,
        "protocol": {
            "known_ratios": [float(r) for r in args.ratios.split(",")],
            "seeds": seeds,
            "validation": "known intents only; no open example before test",
            "calibration": args.calibration,
            "calibration_share_of_validation": CALIBRATION_SHARE,
            "default_policy": "Policy() with the out-of-scope score",
            "demo_budget_policy": "Policy(ood_max_accuracy_loss=0.02)",
            "stated_targets": STATED,
            "f1": "macro over known intents + open; every non-answer counts as open",
            "ood_score": "chosen per split by pseudo-open cross-validation on the training "
            "queries of the known intents (macro-F1 with open of the stated-target policy)",
            "ood_selection": SELECTION,
            "selection_rules": SELECTION_RULES,
            "selection_rule": SELECTION_RULE,
            "ood_candidates": {
                kind: [c.name for c in candidates(kind)] for kind in ("minilm", "tfidf")
            },
        },
        "adb_reference": {"f1_all": ADB_F1, "source": ADB_SOURCE},
        "runs": rows,
        "summary": _summary(rows),
        "seconds": seconds,
        "environment": h.environment(),
    }


def _parse_ratios(parser: argparse.ArgumentParser, text: str) -> list[float]:
    try:
        ratios = [float(part) for part in text.split(",")]
    except ValueError:
        ratios = []
    if not ratios or not all(0.0 < r < 1.0 for r in ratios):
        parser.error(f"--ratios: expected shares in (0, 1) such as 0.25,0.5; got {text!r}")
    return ratios


def _summarise(args: argparse.Namespace) -> int:
    """Tables of earlier runs (e.g. one file per dataset), re-read under ``SELECTION_RULE``."""
    rows: list[dict[str, Any]] = []
    for path in args.summarise:
        try:
            runs = json.loads(path.read_text(encoding="utf-8"))["runs"]
        except (OSError, ValueError, KeyError) as error:
            raise SystemExit(f"--summarise: cannot read the runs of {path}: {error}") from None
        rows += [{**run, **adopt(run["rules"], SELECTION_RULE)} for run in runs]
    print_tables(rows, _summary(rows))
    seeds = sorted({run["seed"] for run in rows})
    h.write_json(args.out, _payload(args, seeds, rows, 0.0, complete=True))
    print(f"wrote {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = h.build_parser(NAME, __doc__.split("\n\n")[0], default_repeats=1)
    parser.add_argument("--seeds", type=int, default=5, help="seeds per known ratio")
    parser.add_argument("--datasets", default="banking77,clinc150,hwu64")
    parser.add_argument(
        "--ratios",
        default=",".join(f"{r:g}" for r in RATIOS),
        help="shares of the intents known, comma-separated (each in (0, 1))",
    )
    parser.add_argument("--models", default="minilm,tfidf", help="minilm and/or tfidf")
    parser.add_argument("--skip-embeddings", action="store_true", help="same as --models tfidf")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=h.RESULTS_DIR / "cache",
        help="where the sentence embeddings of each dataset are kept between runs",
    )
    parser.add_argument(
        "--calibration",
        choices=("all", "split"),
        default="all",
        help="all: temperature and policy on every validation row (the default); split: 30/70",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS / OpenMP threads (1: fastest on a shared two-core machine)",
    )
    parser.add_argument(
        "--summarise",
        nargs="+",
        type=Path,
        metavar="JSON",
        help="run nothing: merge the runs of these earlier result files, print their tables "
        "under the adopted selection rule and write them to --out",
    )
    args: argparse.Namespace = parser.parse_args(argv)
    if args.summarise:
        return _summarise(args)
    if args.threads < 1:
        parser.error(f"--threads: expected a whole number ≥ 1; got {args.threads}")
    ratios = _parse_ratios(parser, args.ratios)
    h.ensure_failwise_importable()
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    if args.quick:
        corpora = [synthetic_corpus(args.seed)]
        seeds = list(range(args.seed, args.seed + min(args.seeds, 3)))
        use_embeddings = False
    else:
        root = _data_dir()
        names = args.datasets.split(",")
        unknown = sorted(set(names) - set(LOADERS_BY_NAME))
        if unknown:
            parser.error(
                f"--datasets: unknown {unknown}; expected some of {sorted(LOADERS_BY_NAME)}"
            )
        corpora = [LOADERS_BY_NAME[name](root) for name in names]
        seeds = list(range(args.seed, args.seed + args.seeds))
        use_embeddings = not args.skip_embeddings
    for corpus in corpora:
        models = args.models.split(",")
        kinds = []
        if use_embeddings and "minilm" in models:
            kinds.append(embed_corpus(corpus, args.cache_dir))
        if "tfidf" in models or args.quick:
            kinds.append(Features("tfidf", corpus.train_texts, corpus.val_texts, corpus.test_texts))
        for features in kinds:
            for ratio in ratios:
                for seed in seeds:
                    row = run_one(corpus, features, ratio, seed, args.calibration)
                    rows.append(row)
                    d, st = row["default"], row["stated_targets"]
                    print(
                        f"  {corpus.name} {features.kind} {ratio:.0%} seed {seed}: default "
                        f"coverage {_pct(d['coverage_known'])}%, silent "
                        f"{_pct(d['silent_failures_open'])}%, screen "
                        f"{'on' if d['screen_on'] else 'OFF'}; stated F1 "
                        f"{_pct(st['f1_all'])} with {row['ood_score']} "
                        f"({row['seconds']:.0f}s)",
                        flush=True,
                    )
                    # Runs take minutes each on shared machines: keep what is done on disk.
                    elapsed = time.perf_counter() - started
                    h.write_json(args.out, _payload(args, seeds, rows, elapsed, complete=False))
    summary = _summary(rows)
    print_tables(rows, summary)
    payload = _payload(args, seeds, rows, time.perf_counter() - started, complete=True)
    h.write_json(args.out, payload)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
