"""What a session recorded, read from its files only: the trials and every validated epoch's result.

`export`, `plot` and the dashboard read ``session_state.summary.yaml`` (trial status, config, best)
and each trial's ``tune/<trial>/result.json`` (Tune's log: one JSON object per reported epoch). No
Ray, no unpickling, so a session whose driver runs elsewhere can be watched through shared storage.

The folder may be hostile (copied, planted, half-written): no symbolic link is followed, a result
file larger than `MAX_RESULT_BYTES` is read only up to that size, a line that is not a JSON object is
skipped, and only plain values come out. An epoch logged twice (trained again after a crash) keeps
its later row, as the README says of ``result.json``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from lightning_bohb.core.best_trial import best_of, best_value
from lightning_bohb.pause.trial_status import TrialStatus
from lightning_bohb.session.state import SessionStatus, read_summary
from lightning_bohb.utils.files import parse_json
from lightning_bohb.utils.layout import TUNE_FOLDER

RESULT_FILE = "result.json"
MAX_RESULT_BYTES = 64 * 1024 * 1024
MAX_TRIALS = 10_000
# Tune's bookkeeping in every row: left out of the charts' metric choices, kept in the CSV.
TUNE_FIELDS = {
    "trial_id", "training_iteration", "time_this_iter_s", "time_total_s", "time_since_restore", "timesteps_since_restore",
    "iterations_since_restore", "timestamp", "date", "done", "pid", "hostname", "node_ip", "checkpoint_dir_name",
    "should_checkpoint", "epoch", "global_step", "experiment_tag", "timesteps_total", "episodes_total",
}


@dataclass
class TrialHistory:
    """One trial's results, one row per training iteration (= validated epoch), in order."""

    trial_id: str
    folder: str
    config: Dict[str, Any] = field(default_factory=dict)
    rows: List[Dict[str, Any]] = field(default_factory=list)


class SessionHistory:
    """Reads a session's result files, re-reading only those that changed since the last call."""

    def __init__(self, session_dir: Union[str, Path]) -> None:
        self.session_dir = Path(session_dir)
        self._cache: Dict[str, Tuple[Tuple[int, int, int], TrialHistory]] = {}

    def trials(self) -> List[TrialHistory]:
        """Every trial with a result file, ordered by trial id."""
        tune_dir = self.session_dir / TUNE_FOLDER
        found: Dict[str, TrialHistory] = {}
        seen = set()
        for folder in _trial_folders(tune_dir):
            path = os.path.join(tune_dir, folder, RESULT_FILE)
            key = _file_key(path)
            if key is None:
                continue
            seen.add(folder)
            cached = self._cache.get(folder)
            if cached is None or cached[0] != key:
                cached = (key, _read_history(path, folder))
                self._cache[folder] = cached
            history = cached[1]
            if history.rows:
                found[history.trial_id] = history
        for folder in set(self._cache) - seen:
            del self._cache[folder]
        return [found[trial_id] for trial_id in sorted(found)]


def _trial_folders(tune_dir: Path) -> List[str]:
    if tune_dir.is_symlink() or not tune_dir.is_dir():
        return []
    try:
        entries = [entry.name for entry in os.scandir(tune_dir) if entry.is_dir(follow_symlinks=False)]
    except OSError:
        return []
    return sorted(entries)[:MAX_TRIALS]


def _file_key(path: str) -> Optional[Tuple[int, int, int]]:
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None  # a link or anything else: never followed
    return info.st_ino, info.st_size, info.st_mtime_ns


def _read_history(path: str, folder: str) -> TrialHistory:
    history = TrialHistory(trial_id=folder, folder=folder)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)  # swapped for a FIFO: no hang
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(MAX_RESULT_BYTES) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
    except OSError:
        return history
    by_iteration: Dict[int, Dict[str, Any]] = {}
    for line in data.splitlines():
        try:
            row = parse_json(line)
        except ValueError:
            continue  # a cut-off last line, or garbage
        if not isinstance(row, dict):
            continue
        iteration = row.get("training_iteration")
        if not isinstance(iteration, int) or isinstance(iteration, bool):
            continue
        by_iteration[iteration] = row  # a later row for the same epoch wins
        if isinstance(row.get("trial_id"), str):
            history.trial_id = row["trial_id"]
        if isinstance(row.get("config"), dict):
            history.config = _plain(row["config"])
    history.rows = [_plain({k: v for k, v in by_iteration[i].items() if k != "config"}) for i in sorted(by_iteration)]
    return history


def _plain(value: Any) -> Any:
    """JSON values only, with non-finite floats as None (JSON for browsers has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def flatten(mapping: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    """Nested keys joined with ``/``, as Ray's ``ResultGrid.get_dataframe()`` names columns (``config/lr``)."""
    flat: Dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "/"))
        else:
            flat[name] = value
    return flat


# -- summary ------------------------------------------------------------------------------------
def summary_trials(summary: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """The summary's trial rows by id (only well-formed ones)."""
    rows = summary.get("trials")
    if not isinstance(rows, list):
        return {}
    return {row["id"]: row for row in rows if isinstance(row, dict) and isinstance(row.get("id"), str)}


def metric_of(summary: Dict[str, Any]) -> Tuple[Optional[str], str]:
    config = summary.get("metric")
    if not isinstance(config, dict) or not isinstance(config.get("metric"), str):
        return None, "min"
    return config["metric"], "max" if config.get("mode") == "max" else "min"


# -- export: one row per trial-epoch ---------------------------------------------------------------
def epoch_table(session_dir: Union[str, Path], summary: Optional[Dict[str, Any]] = None) -> Tuple[List[str], List[Dict[str, Any]]]:
    """``(columns, rows)``: one row per trial and epoch, config values as ``config/<name>`` columns."""
    summary = read_summary(session_dir) if summary is None else summary
    statuses = {trial_id: row.get("status") for trial_id, row in summary_trials(summary).items()}
    rows = []
    for trial in SessionHistory(session_dir).trials():
        config = flatten(trial.config, "config/")
        for row in trial.rows:
            flat = flatten(row)
            rows.append({"trial_id": trial.trial_id, "trial_status": statuses.get(trial.trial_id), **flat, **config})
    first = ["trial_id", "trial_status", "training_iteration", "epoch"]
    names = {name for row in rows for name in row}
    config_names = sorted(name for name in names if name.startswith("config/"))
    rest = names - set(first) - set(config_names)
    metrics = sorted(name for name in rest if name not in TUNE_FIELDS)
    columns = [c for c in first if c in names] + metrics + sorted(rest - set(metrics)) + config_names
    return columns, rows


def write_csv(columns: List[str], rows: Iterable[Dict[str, Any]], out: io.TextIOBase) -> None:
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()})


# -- charts: what the report and the dashboard draw -------------------------------------------------
BRACKET_STRATEGIES = ("bohb", "hyperband")  # their scheduler pauses a trial until its bracket fills


def chart_data(session_dir: Union[str, Path], summary: Dict[str, Any], history: Optional[SessionHistory] = None) -> Dict[str, Any]:
    """Plain data for the charts and tables: per trial its status, outcome, config, time and per-epoch
    metrics (``epoch_numbers``: Lightning's epoch of each row, from 0); the best trial; the rungs.

    A trial's ``best`` and the session's ``best`` come from the same rows by `lightning_bohb.core.best_trial`'s
    rule (non-finite values never win), so a page's header and its table always agree.
    """
    metric, mode = metric_of(summary)
    listed = summary_trials(summary)
    histories = {trial.trial_id: trial for trial in (history or SessionHistory(session_dir)).trials()}
    max_epochs = summary.get("max_epochs") if isinstance(summary.get("max_epochs"), int) else None
    pause = summary.get("pause")
    pause = pause if isinstance(pause, dict) else {}
    held, pausing = (set(pause[key]) if isinstance(pause.get(key), list) else set() for key in ("held_trials", "pausing_trials"))
    strategy = summary.get("strategy")
    brackets = isinstance(strategy, dict) and strategy.get("name") in BRACKET_STRATEGIES
    running = summary.get("status") == SessionStatus.RUNNING
    trials = []
    metrics: set = set()
    for trial_id in sorted(set(listed) | set(histories)):
        row, trial = listed.get(trial_id, {}), histories.get(trial_id)
        rows = trial.rows if trial else []
        series: Dict[str, List[Any]] = {}
        for result in rows:
            for name, value in result.items():
                if name not in TUNE_FIELDS and _finite(value):
                    series.setdefault(name, [])
        for name in series:
            series[name] = [r.get(name) if _finite(r.get(name)) else None for r in rows]
        metrics.update(series)
        iterations = [result["training_iteration"] for result in rows]
        epochs = iterations[-1] if iterations else _count(row.get("epochs"))
        status = row.get("status") if isinstance(row.get("status"), str) else (TrialStatus.RUNNING if trial else TrialStatus.PENDING)
        values = [v for v in series.get(metric or "", []) if _finite(v)]
        best = best_value(values or [row.get("best")], mode)
        last = values[-1] if values else (row.get("last") if _finite(row.get("last")) else None)
        seconds = rows[-1].get("time_total_s") if rows else row.get("time_s")
        is_held = trial_id in held and status == TrialStatus.PAUSED
        trials.append(
            {
                "id": trial_id,
                "status": status,
                "outcome": trial_outcome(status, epochs, max_epochs, is_held, running, brackets),
                "config": _plain(row.get("config") if isinstance(row.get("config"), dict) else (trial.config if trial else {})),
                "epochs": epochs,
                "iterations": iterations,
                "epoch_numbers": [_epoch_number(result) for result in rows],
                "metrics": series,
                "last": last,
                "best": best,
                "time_s": seconds if _finite(seconds) else None,
                "stopped_early": status == TrialStatus.TERMINATED and max_epochs is not None and epochs < max_epochs,
                "held": is_held,
                "pausing": trial_id in pausing,
            }
        )
    by_id = {entry["id"]: entry for entry in trials}
    order = [*listed, *sorted(set(by_id) - set(listed))]  # Tune's order of the trials (the summary's), then newer ones
    top = best_of(((by_id[trial_id], by_id[trial_id]["best"]) for trial_id in order), mode)
    return {
        "metric": metric,
        "mode": mode,
        "metrics": sorted(metrics),
        "max_epochs": max_epochs,
        "milestones": milestones(summary.get("strategy"), max_epochs),
        "searched": _searched(summary),
        "best": {"trial": top[0]["id"], "value": top[1], "config": top[0]["config"]} if top else None,
        "trials": trials,
    }


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _epoch_number(result: Dict[str, Any]) -> int:
    """Lightning's epoch of a result row (``epoch``, from 0); Tune's count minus one when it is missing."""
    epoch = result.get("epoch")
    if isinstance(epoch, int) and not isinstance(epoch, bool):
        return epoch
    return int(result["training_iteration"]) - 1


def trial_outcome(
    status: Any, epochs: int, max_epochs: Optional[int], held: bool = False, running: bool = True, brackets: bool = False
) -> str:
    """What became of a trial, in the words every output uses (and colours alike: `lightning_bohb.cli.format`).

    A TERMINATED trial *finished* when it trained ``max_epochs`` epochs, else the scheduler (or a
    ``trial stop``) *stopped* it *early*. A PAUSED trial is *paused on request* when held
    (``lightning-bohb trial pause``); while the session runs, a HyperBand/BOHB trial is otherwise
    *waiting for its bracket* (its scheduler paused it); otherwise it is *paused* with the session.
    """
    if status == TrialStatus.TERMINATED:
        return "stopped early" if max_epochs is not None and epochs < max_epochs else "finished"
    if status == TrialStatus.PAUSED:
        return "paused on request" if held else ("waiting for its bracket" if running and brackets else "paused")
    return {TrialStatus.RUNNING.value: "running", TrialStatus.ERROR.value: "failed"}.get(str(status), "pending")


def _searched(summary: Dict[str, Any]) -> List[str]:
    """The names of the searched hyperparameters, in the search space's order."""
    space = summary.get("search_space")
    return [str(name) for name in space if name != "error"] if isinstance(space, dict) else []


def milestones(strategy: Any, max_epochs: Optional[int]) -> List[int]:
    """The epochs at which ASHA compares trials (its rungs), from the strategy in the summary; else []."""
    if not isinstance(strategy, dict) or strategy.get("name") != "asha":
        return []
    values = (strategy.get("grace_period"), strategy.get("reduction_factor"), strategy.get("max_t") or max_epochs)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in values):
        return []
    grace, factor, max_t = (float(v) for v in values)  # type: ignore[arg-type]
    if factor <= 1 or max_t < grace:
        return []
    count = min(64, int(math.log(max_t / grace) / math.log(factor) + 1))  # as Ray's ASHA bracket counts its rungs
    return [int(grace * factor**k) for k in range(max(0, count))]
