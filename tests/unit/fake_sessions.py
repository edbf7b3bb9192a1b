"""A session folder as a finished or running search leaves it (summary + Tune's result.json per trial), no Ray."""

import json
from pathlib import Path

import yaml

from lightning_bohb.utils.layout import SUMMARY_FILE

METRIC_ROWS = {
    "t_00000": [(1, 1.0, 0.5), (2, 0.6, 0.7), (3, 0.4, 0.8), (4, 0.3, 0.9)],
    "t_00001": [(1, 2.0, 0.2)],
}
CONFIGS = {"t_00000": {"lr": 0.01, "hidden_size": 32}, "t_00001": {"lr": 0.0001, "hidden_size": 16}}


def make_session(root: Path, name: str = "session_20260101_000000_abcdef", status: str = "COMPLETED", trial_status=None) -> Path:
    session = root / "exp" / name
    (session / "tune").mkdir(parents=True)
    trial_status = trial_status or {"t_00000": "TERMINATED", "t_00001": "TERMINATED"}
    rows = []
    for trial_id, epochs in METRIC_ROWS.items():
        folder = session / "tune" / f"train_trial_{trial_id}_0_lr=x"
        folder.mkdir()
        with open(folder / "result.json", "w") as handle:
            for iteration, loss, acc in epochs:
                row = {"val_loss": loss, "val_acc": acc, "epoch": iteration - 1, "training_iteration": iteration,
                       "trial_id": trial_id, "time_total_s": float(iteration), "config": CONFIGS[trial_id]}
                handle.write(json.dumps(row) + "\n")
        rows.append({"id": trial_id, "status": trial_status[trial_id], "config": dict(CONFIGS[trial_id]), "epochs": len(epochs),
                     "last": epochs[-1][1], "best": min(e[1] for e in epochs)})
    summary = {
        "schema_version": 1, "session_id": name[len("session_"):], "experiment_name": "exp", "status": status,
        "started_at": "2026-01-01T00:00:00", "updated_at": "2026-01-01T00:01:00", "paused_at": None, "pause_count": 0,
        "resumed_at": [], "strategy": {"name": "asha", "grace_period": 1, "reduction_factor": 2, "max_t": None, "seed": 0},
        "metric": {"metric": "val_loss", "mode": "min"}, "num_samples": 2, "max_epochs": 4, "pause": {},
        "best": {"trial": "t_00000", "val_loss": 0.3, "config": dict(CONFIGS["t_00000"])}, "trials": rows,
        "resume_command": f"lightning-bohb resume {session}",
    }
    (session / SUMMARY_FILE).write_text(yaml.safe_dump(summary, sort_keys=False))
    return session
