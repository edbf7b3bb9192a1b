"""Build the plain-data session summary (``session_state.summary.yaml``) from live state."""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional

from lightning_bohb.core.best_trial import best_of
from lightning_bohb.core.search_space import describe_domain
from lightning_bohb.session.state import SCHEMA_VERSION, TuneSessionState, now_iso
from lightning_bohb.utils.plain import to_plain


def build_summary(
    state: TuneSessionState,
    resume_command: str,
    trials: List[Any],
    status_of: Callable[[Any], str],
    trial_best: Dict[str, float],
    metric_config: Optional[Dict[str, str]],
    pause_info: Dict[str, Any],
) -> Dict[str, Any]:
    metric = (metric_config or {}).get("metric")
    mode = (metric_config or {}).get("mode", "min")
    rows = []
    for trial in trials:
        last = trial.last_result or {}
        rows.append(
            {
                "id": trial.trial_id,
                "status": status_of(trial),
                "config": to_plain(dict(trial.config or {})),
                "epochs": int(last.get("training_iteration", 0) or 0),
                "last": to_plain(last.get(metric)) if metric else None,
                "best": trial_best.get(trial.trial_id),
                "time_s": _seconds(last.get("time_total_s")),
            }
        )
    best = None
    top = best_of(((row, row["best"]) for row in rows), mode)  # rows in Tune's order of the trials
    if top is not None:
        best = {"trial": top[0]["id"], metric: top[1], "config": top[0]["config"]}
    try:
        space = {name: describe_domain(domain) for name, domain in state.search_space.get_search_space().items()}
    except Exception as err:  # the summary must never fail the session
        space = {"error": repr(err)}
    return {
        "schema_version": SCHEMA_VERSION,
        "session_id": state.session_id,
        "experiment_name": state.experiment_name,
        "status": getattr(state.status, "value", state.status),
        "started_at": state.started_at,
        "updated_at": now_iso(),
        "paused_at": state.paused_at[-1] if state.paused_at else None,
        "pause_count": state.pause_count,
        "resumed_at": list(state.resumed_at),
        "strategy": to_plain(state.strategy.describe()),
        "search_space": space,
        "search_space_version": str(getattr(state.search_space, "VERSION", "0")),
        "metric": metric_config,
        "num_samples": state.optimization_config.num_samples,
        "max_epochs": state.optimization_config.max_epochs,
        "pause": pause_info,
        "best": best,
        "trials": rows,
        "versions": state.versions,
        "code": state.fingerprint,
        "script": state.script,
        "resume_command": resume_command,
    }


def _seconds(value: Any) -> Optional[float]:
    """A trial's training time so far (Tune's ``time_total_s``), rounded to 0.1 s; None if unknown."""
    return round(float(value), 1) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None
