"""What the e2e tests share: running the example script in real processes (optionally in a pseudo-terminal),
reading what trials recorded, and the search spaces and strategies of the in-process searches."""

import glob
import json
import os
import pty
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml
from ray import tune

from lightning_bohb import (
    ASHAStrategy,
    BOHBStrategy,
    HyperOptStrategy,
    OptunaStrategy,
    RandomStrategy,
    SearchSpace,
    TuneReflowCLI,
)
from lightning_bohb.exceptions import EXIT_PAUSED

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "optimize.py"
RESUME_HEADER = "To resume this EXACT session with all settings, run:"

# A tiny random search: 2 trials side by side, 4 epochs each, seeded.
SEARCH_ARGS = ["--strategy", "random", "--num-samples", "2", "--max-epochs", "4", "--max-concurrent-trials", "2", "--seed", "0"]

STRATEGIES = {
    "bohb": lambda seed=None: BOHBStrategy(reduction_factor=2, seed=seed),
    "asha": lambda seed=None: ASHAStrategy(grace_period=1, reduction_factor=2, seed=seed),
    "optuna": lambda seed=None: OptunaStrategy(n_startup_trials=2, seed=seed),
    "hyperopt": lambda seed=None: HyperOptStrategy(n_initial_points=2, seed=seed),
    "random": lambda seed=None: RandomStrategy(seed=seed),
}
"""Every strategy, configured for tiny searches; call with a seed or none."""


class LrSpace(SearchSpace):
    """The learning rate of the example model, and optionally its hidden size, judged by ``metric``."""

    def __init__(self, lr=(1e-3, 3e-2), hidden_sizes=(), metric="val_loss"):
        self.lr, self.hidden_sizes, self.metric = tuple(lr), tuple(hidden_sizes), metric

    def get_search_space(self):
        space = {"lr": tune.loguniform(*self.lr)}
        if self.hidden_sizes:
            space["hidden_size"] = tune.choice(list(self.hidden_sizes))
        return space

    def get_metric_config(self):
        return {"metric": self.metric, "mode": "min"}


class PauseAfter(TuneReflowCLI):
    """Pauses itself when this run has seen ``pause_at`` results (an arbitrary moment)."""

    pause_at = None

    def should_auto_pause(self, metrics):
        self.seen = getattr(self, "seen", 0) + 1
        return self.seen == self.pause_at


def script_env():
    env = dict(os.environ)
    paths = [str(REPO / "tests" / "e2e"), str(REPO / "examples"), env.get("PYTHONPATH", "")]
    env.update(PYTHONPATH=os.pathsep.join(p for p in paths if p), PYTHONUNBUFFERED="1", RAY_DEDUP_LOGS="0")
    return env


def write_config(directory: Path, record_dir: Path, min_epoch_seconds: float = 0.5, **init_args) -> Path:
    config = yaml.safe_load((REPO / "examples" / "config.yaml").read_text())
    config["model"]["class_path"] = "e2e_models.RecordingClassifier"
    config["model"]["init_args"].update(record_dir=str(record_dir), min_epoch_seconds=min_epoch_seconds, **init_args)
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def wait_until(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class ScriptRun:
    """A running script whose combined output is collected as it arrives."""

    def __init__(self, argv, cwd: Path, use_pty: bool = False):
        self.chunks = []
        self.master = None
        if use_pty:
            self.master, slave = pty.openpty()
            self.proc = subprocess.Popen(argv, cwd=cwd, env=script_env(), stdin=slave, stdout=slave, stderr=slave, close_fds=True)
            os.close(slave)
            self._reader = threading.Thread(target=self._read_pty, daemon=True)
        else:
            self.proc = subprocess.Popen(
                argv, cwd=cwd, env=script_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
            self._reader = threading.Thread(target=self._read_pipe, daemon=True)
        self._reader.start()

    def _read_pipe(self):
        for line in iter(self.proc.stdout.readline, b""):
            self.chunks.append(line.decode(errors="replace"))

    def _read_pty(self):
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            if not data:
                return
            self.chunks.append(data.decode(errors="replace"))

    @property
    def output(self) -> str:
        return "".join(self.chunks).replace("\r\n", "\n")

    def press(self, key: str):
        os.write(self.master, key.encode())

    def wait_for_text(self, text: str, timeout: float = 120):
        return wait_until(lambda: text in self.output, timeout, f"{text!r} in output:\n{self.output[-3000:]}")

    def wait(self, timeout: float = 300) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code


def start_search(tmp_path: Path, extra_args=(), use_pty=False, experiment_dir=None, driver=(str(EXAMPLE),)) -> ScriptRun:
    """Run the example search; ``driver`` is the script and its own arguments before the example's."""
    experiment_dir = experiment_dir or tmp_path / "experiments"
    argv = [sys.executable, *driver, "--experiment-dir", str(experiment_dir), *SEARCH_ARGS, *extra_args]
    return ScriptRun(argv, cwd=tmp_path, use_pty=use_pty)


def resume_argv(output: str):
    lines = output.splitlines()
    index = next(i for i, line in enumerate(lines) if RESUME_HEADER in line)
    return shlex.split(lines[index + 1].strip())


def session_dir_of(experiment_dir: Path) -> Path:
    (found,) = glob.glob(str(experiment_dir / "*" / "session_*"))
    return Path(found)


def first_checkpoint_exists(experiment_dir: Path) -> bool:
    return bool(glob.glob(str(experiment_dir / "*" / "session_*" / "tune" / "*" / "checkpoint_000000")))


def trial_histories(tune_dir: Path):
    """``{config (json): [(epoch, val_loss, train_loss), ...]}`` from every trial's result.json."""
    histories = {}
    for path in glob.glob(str(tune_dir / "*" / "result.json")):
        rows = [json.loads(line) for line in open(path) if line.strip()]
        if rows:
            key = json.dumps(rows[0]["config"], sort_keys=True)
            histories[key] = [(r["epoch"], r["val_loss"], r.get("train_loss")) for r in rows]
    return histories


def epoch_end_counts(record_dir: Path):
    """``{(trial_id, epoch): number of on_train_epoch_end calls}`` from the recording model."""
    counts = {}
    for path in glob.glob(str(record_dir / "*.jsonl")):
        trial_id = Path(path).stem
        for line in open(path):
            event = json.loads(line)
            if event["hook"] == "train_epoch_end":
                key = (trial_id, event["epoch"])
                counts[key] = counts.get(key, 0) + 1
    return counts


def assert_resumed_exactly(session: Path, record_dir: Path, reference) -> None:
    """Every trial trained each epoch once, ran each epoch-end hook once, and matches the reference bitwise."""
    histories = trial_histories(session / "tune")
    assert histories == reference
    counts = epoch_end_counts(record_dir)
    assert counts and all(n == 1 for n in counts.values()), {k: n for k, n in counts.items() if n != 1}
    assert len(counts) == sum(len(h) for h in reference.values())


def paused_exit(run: ScriptRun) -> str:
    code = run.wait()
    output = run.output
    assert code == EXIT_PAUSED, output[-3000:]
    assert "OPTIMIZATION PAUSED" in output and RESUME_HEADER in output
    assert "Traceback" not in output.split("OPTIMIZATION PAUSED")[-1]
    return output


def resume(argv, cwd: Path) -> ScriptRun:
    return ScriptRun(argv, cwd=cwd)


def parse_session_id(output: str) -> str:
    return re.search(r"Session: (\S+)", output).group(1)


def kill_9_with_its_ray(run: ScriptRun) -> None:
    """SIGKILL the driver, then the local Ray it started (which would outlive it)."""
    import psutil

    ray_processes = psutil.Process(run.proc.pid).children(recursive=True)  # the Ray this driver started
    run.proc.send_signal(signal.SIGKILL)
    run.wait()
    for process in ray_processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass


def trials(session: Path):
    """``{trial id: row}`` of the session summary's trials table (empty while it is being replaced)."""
    try:
        summary = yaml.safe_load((session / "session_state.summary.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    return {row["id"]: row for row in summary.get("trials") or []}
