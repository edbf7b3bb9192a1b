"""Which hyperparameters mattered: Optuna's fANOVA importance evaluator fed with a session's trials.

`param_importance` takes the trials of `lightning_bohb.session.history.chart_data` (their sampled
values and their best metric value), builds an in-memory Optuna study of them (one completed trial
each, the distributions read from the values seen: numbers as ranges, log-scaled when all positive
and spanning more than a factor of 20, anything else as categories) and asks
`optuna.importance.FanovaImportanceEvaluator` (a random forest of scikit-learn, then functional
ANOVA; seeded, so the same trials give the same answer) for each hyperparameter's share of the
variance of the metric. A trial stopped early counts with the best value it reached.

Optuna and scikit-learn come with the ``dashboard`` extra; they are imported only here, when a page
or a report asks.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional

MIN_TRIALS = 3  # fewer trials say nothing about importance
METHOD = "fANOVA (Optuna's FanovaImportanceEvaluator) on each trial's best value"


def param_importance(trials: List[Dict[str, Any]], mode: str, names: Optional[List[str]] = None) -> Dict[str, Any]:
    """``{"method", "importances": [{"name", "importance"}] (largest first), "note"}`` for ``trials``.

    ``names``: the searched hyperparameters (default: every config key the trials share). ``note``
    says why there are no importances yet (too few trials, nothing varied, Optuna not installed).
    """
    usable = [t for t in trials if _finite(t.get("best")) and isinstance(t.get("config"), dict)]
    result: Dict[str, Any] = {"method": METHOD, "importances": [], "note": None}
    if len(usable) < MIN_TRIALS:
        result["note"] = f"Needs {MIN_TRIALS} trials with a value of the metric; {len(usable)} so far."
        return result
    shared = set.intersection(*(set(t["config"]) for t in usable))
    candidates = [n for n in (names or sorted(shared)) if n in shared]
    distributions = {}
    for name in candidates:
        distribution = _distribution([t["config"][name] for t in usable])
        if distribution is not None:
            distributions[name] = distribution
    if not distributions:
        result["note"] = "No searched hyperparameter took more than one value yet."
        return result
    try:
        import optuna
        from optuna.importance import FanovaImportanceEvaluator, get_param_importances
    except ImportError as err:
        result["note"] = f"Hyperparameter importance needs Optuna and scikit-learn: pip install 'lightning-bohb[dashboard]' ({err})."
        return result
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    study.add_trials(
        [
            optuna.trial.create_trial(
                params={name: _value(t["config"][name], distributions[name]) for name in distributions},
                distributions=distributions,
                value=float(t["best"]),
            )
            for t in usable
        ]
    )
    try:
        scores = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0))
    except (ValueError, RuntimeError) as err:  # e.g. every value equal: no variance to share out
        result["note"] = f"No importance yet: {err}"
        return result
    result["importances"] = [{"name": name, "importance": float(value)} for name, value in scores.items()]
    return result


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _distribution(values: List[Any]) -> Any:
    """The Optuna distribution of the values seen; None when they are all the same."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if all(_finite(v) for v in values):
        low, high = min(values), max(values)
        if low == high:
            return None
        if all(isinstance(v, int) for v in values):
            return IntDistribution(int(low), int(high))
        return FloatDistribution(float(low), float(high), log=low > 0 and high / low > 20)
    choices = sorted({_choice(v) for v in values}, key=repr)
    return CategoricalDistribution(choices) if len(choices) > 1 else None


def _choice(value: Any) -> Any:
    return value if value is None or isinstance(value, (bool, int, float, str)) else repr(value)


def _value(value: Any, distribution: Any) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    if isinstance(distribution, CategoricalDistribution):
        return _choice(value)
    return float(value) if isinstance(distribution, FloatDistribution) else int(value)
