"""The runtime in a minute: guard a scikit-learn model, record what happens, measure it.

Run ``python examples/runtime_tour.py``. It trains a logistic regression on scikit-learn's
digits, calibrates it, fits the decision ladder, wraps it in a ``Guard`` with a SQLite
event store, serves 300 requests, records what users and a reviewer did, and prints the
product metrics measured from the event log.
"""

import tempfile

from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from failwise import Guard, Policy, TemperatureScaling, store
from failwise.outcomes import measure

X, y = load_digits(return_X_y=True)
X_train, X_rest, y_train, y_rest = train_test_split(X / 16, y, train_size=0.5, random_state=0)
X_val, X_live, y_val, y_live = train_test_split(X_rest, y_rest, test_size=300, random_state=0)

model = LogisticRegression(max_iter=2000).fit(X_train, y_train)
calibrator = TemperatureScaling().fit(model.decision_function(X_val), y_val)
proba_val = calibrator.predict_proba(model.decision_function(X_val))
policy = Policy(target_risk=0.02).fit(proba_val, y_val)

events = store.open(f"sqlite:///{tempfile.mkdtemp()}/events.db")
guard = Guard(model.decision_function, calibrator, policy, store=events, audit_rate=0.2)

for x, truth in zip(X_live, y_live, strict=True):
    decision = guard.decide(x)  # recorded durably before it returns
    if decision.action.value == "answer":
        events.feedback(decision.task_id, "accepted" if decision.label == truth else "abandoned")
    elif decision.action.value == "clarify":
        picked = int(truth) if truth in decision.prediction_set else None
        events.record_event(decision.task_id, "clarification_choice", label=picked)
        if picked is None:
            events.queue.enqueue(decision.task_id, "escalation", "none of the options")
    # A reviewer works the queue (escalations, and audit samples of confident answers).
    while (item := events.queue.claim("alice")) is not None:
        events.queue.resolve(item.id, label=int(truth))  # only this task's items are waiting

metrics = measure(events)
print(f"tasks:               {metrics.n_tasks}")
print(f"task completion:     {metrics.task_completion_rate.value:.1%}")
print(f"escalation rate:     {metrics.escalation_rate.value:.1%}")
print(f"automation rate:     {metrics.automation_rate.value:.1%}")
silent = metrics.silent_failure_rate
print(f"silent failures:     {silent.value:.1%} (95% CI {silent.low:.1%}–{silent.high:.1%})")
print(f"median time to a correct output: {metrics.time_to_correct_output_median_s.value:.1f} s")
events.close()
