"""Fuzz: seeded random corruptions of every session file and of study files (issue 17, item 13).

Each session file (the state pickle, the summary, the lock, Ray Tune's experiment snapshot, the best
config) and each study file (the study and its base config) is damaged many ways: truncated, bytes
flipped, inserted, deleted or duplicated, replaced by random bytes, a field set to a value of the
wrong type, a huge number or string, deep nesting, escape sequences. Every console command then runs
on it: ``status``, ``status --json``, ``list``, ``clean --dry-run``, ``export-best``, ``resume`` (and
``run`` for study files). Each must end in bounded time with exit status 0 (it succeeded, or for
``resume``/``run`` it got past every check made before Ray starts) or 1/2 with exactly one ``error:``
line, and never print a traceback or the "unexpected" line of an unhandled error.

The commands run in this process (``lightning_bohb.cli.main.main``) for speed, with Ray replaced by a
stub at `TuneSession.run`; a few run as real ``python -m lightning_bohb`` processes.
"""

import json
import logging
import os
import pickle
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from lightning_bohb.cli.main import main
from lightning_bohb.session.state import TuneSessionState
from lightning_bohb.utils.layout import LEGACY_STATE_FILE, STATE_FILE, SUMMARY_FILE

SEED = 17
CASES = {"state": 35, "legacy": 35, "summary": 70, "lock": 35, "tune": 45, "best": 15, "study": 40, "base": 25}
PER_COMMAND_S = 10.0
DEAD_PID = 2**22 + 12345
SNAPSHOT = "experiment_state-2026-01-01_00-00-10.json"
EXIT_OK = (0, 1, 2)


class Hung(BaseException):
    """Raised by the alarm: a command took more than `PER_COMMAND_S` (never caught by the console)."""


# -- pristine files ----------------------------------------------------------------------------
def pristine_session(root: Path) -> Path:
    """A session folder as a paused run leaves it, built without Ray."""
    from lightning_bohb import OptimizationConfig, RandomStrategy
    from lightning_bohb.cli.study import YamlSearchSpace
    from lightning_bohb.session.fingerprint import code_fingerprint
    from lightning_bohb.session.state import write_summary
    from lightning_bohb.utils.files import make_private_dir

    base = {"model": {"class_path": "digits_model.DigitsClassifier", "init_args": {"lr": 0.1}}, "trainer": {"max_epochs": 2}}
    space = YamlSearchSpace({"lr": {"uniform": [0.01, 0.1]}}, {"metric": "val_loss", "mode": "min"})
    strategy = RandomStrategy()
    state = TuneSessionState(
        session_id="20260101_000000_f0220f",
        experiment_name="exp",
        search_space=space,
        strategy=strategy,
        optimization_config=OptimizationConfig(max_epochs=2, num_samples=3, experiment_name="exp", seed=1),
        base_config=base,
        status="PAUSED",
        paused_at=["2026-01-01T00:30:00"],
        fingerprint=code_fingerprint(space, strategy, base),
    )
    session = make_private_dir(root / "exp" / f"session_{state.session_id}")
    state.save(session)
    trials = [
        {"id": f"f0220_0000{i}", "status": status, "config": {"lr": 0.01 * (i + 1)}, "epochs": i + 1,
         "last": 0.5 - i / 10, "best": 0.4 - i / 10}
        for i, status in enumerate(["TERMINATED", "PAUSED", "PENDING"])
    ]
    write_summary(session, {
        "schema_version": 1, "session_id": state.session_id, "experiment_name": "exp", "status": "PAUSED",
        "started_at": "2026-01-01T00:00:00", "updated_at": "2026-01-01T00:30:00", "paused_at": "2026-01-01T00:30:00",
        "pause_count": 1, "resumed_at": ["2026-01-01T00:10:00"], "strategy": {"name": "random", "seed": 1},
        "search_space": {"lr": "uniform(0.01, 0.1)"}, "search_space_version": "yaml",
        "metric": {"metric": "val_loss", "mode": "min"}, "num_samples": 3, "pause": {"requested": True},
        "best": {"trial": trials[2]["id"], "val_loss": 0.2, "config": trials[2]["config"]}, "trials": trials,
        "versions": {"python": "3.11"}, "code": state.fingerprint, "script": None,
        "resume_command": f"lightning-bohb resume {session}",
    })
    (session / "session.lock").write_text(json.dumps({"pid": DEAD_PID, "host": socket.gethostname(), "since": 1.0}))
    (session / "best_config.yaml").write_text(yaml.safe_dump({**base, "seed_everything": 1}))
    tune = session / "tune"
    tune.mkdir(mode=0o755)
    fallback = {"_type": "CLOUDPICKLE_FALLBACK", "value": pickle.dumps({"lr": 0.01}).hex()}
    trial = json.dumps({"trial_id": trials[0]["id"], "config": fallback, "status": "TERMINATED"})
    runtime = json.dumps({"start_time": 1.0, "num_failures": 0, "last_result": {"val_loss": 0.5, "epoch": 1}})
    (tune / SNAPSHOT).write_text(json.dumps({"trial_data": [[trial, runtime]], "runner_data": {"_metric": "val_loss"}, "stats": {}}))
    return session


def pristine_study(folder: Path) -> Path:
    folder.mkdir()
    base = {"model": {"class_path": "digits_model.DigitsClassifier", "init_args": {"lr": 0.01}}, "trainer": {"max_epochs": 2}}
    (folder / "config.yaml").write_text(yaml.safe_dump(base))
    study = {
        "base_config": "config.yaml",
        "search_space": {"lr": {"loguniform": [1.0e-4, 1.0e-1]}, "hidden_size": {"choice": [16, 32]}},
        "metric": {"metric": "val_loss", "mode": "min"},
        "strategy": {"name": "random"},
        "optimization": {"max_epochs": 2, "num_samples": 2, "seed": 0, "experiment_name": "fuzz"},
    }
    (folder / "study.yaml").write_text(yaml.safe_dump(study, sort_keys=False))
    return folder / "study.yaml"


# -- corruptions -------------------------------------------------------------------------------
def nested(depth):
    value = 1
    for _ in range(depth):
        value = [value]
    return value


HOSTILE = [
    None, True, 0, -1, 7, 2**63, 1e308, float("inf"), float("nan"), "", "x", "\x1b[2J\x1b]0;t\x07\x9b31m",
    "a" * 100_000, [], [1, [2, [3]]], {}, {"k": {"k": {"k": 1}}}, nested(200), "../../etc", "/abs/path",
]


def corrupt_bytes(data: bytes, rng: random.Random) -> bytes:
    op = rng.choice(["truncate", "flip", "flip", "insert", "delete", "duplicate", "random", "empty", "zeros"])
    n = len(data)
    if op == "truncate":
        return data[: rng.randrange(n)] if n else b""
    if op == "flip":
        out = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            if out:
                out[rng.randrange(len(out))] = rng.randrange(256)
        return bytes(out)
    if op == "insert":
        at = rng.randrange(n + 1)
        return data[:at] + rng.randbytes(rng.randint(1, 64)) + data[at:]
    if op == "delete":
        at = rng.randrange(n + 1)
        return data[:at] + data[at + rng.randint(1, 64):]
    if op == "duplicate":
        at = rng.randrange(n + 1)
        return data[:at] + data[at: at + rng.randint(1, 256)] * rng.randint(2, 50) + data[at:]
    if op == "random":
        return rng.randbytes(rng.randint(1, 4096))
    if op == "empty":
        return b""
    at = rng.randrange(n + 1)
    return data[:at] + b"\x00" * rng.randint(1, 512) + data[at:]


def set_somewhere(tree, value, rng: random.Random):
    """``tree`` with one randomly chosen node (top level or deeper) replaced by ``value``."""
    if not isinstance(tree, (dict, list)) or not tree or rng.random() < 0.15:
        return value
    if isinstance(tree, dict):
        key = rng.choice(list(tree))
        tree[key] = set_somewhere(tree[key], value, rng) if rng.random() < 0.5 else value
    else:
        index = rng.randrange(len(tree))
        tree[index] = set_somewhere(tree[index], value, rng) if rng.random() < 0.5 else value
    return tree


def huge_number(text: str, rng: random.Random) -> str:
    """A number in ``text`` replaced by one of 5000 digits (Python refuses to convert such text)."""
    numbers = list(re.finditer(r"\d+", text))
    if not numbers:
        return text + "\nx: " + "9" * 5000
    found = rng.choice(numbers)
    return text[: found.start()] + rng.choice(["9" * 5000, "0x" + "f" * 5000, "1e99999", "-" + "7" * 5000]) + text[found.end():]


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(7)
)


def corrupt_structured(data: bytes, kind: str, rng: random.Random) -> bytes:
    """Damage a YAML or JSON file in ways that keep it parseable (or nearly so)."""
    text = data.decode()
    op = rng.choice(["wrong type", "wrong type", "huge number", "alias bomb", "tag", "not a mapping"])
    if op == "huge number":
        return huge_number(text, rng).encode()
    if op == "alias bomb" and kind == "yaml":
        return (ALIAS_BOMB + text).encode() if rng.random() < 0.5 else ALIAS_BOMB.encode()
    if op == "tag" and kind == "yaml":
        return ("evil: !!python/object/apply:os.system ['true']\n" + text).encode()
    if op == "not a mapping":
        return rng.choice([b"[1, 2, 3]", b"7", b'"text"', b"null", b"- a\n- b\n"])
    tree = yaml.safe_load(text) if kind == "yaml" else json.loads(text)
    tree = set_somewhere(tree, rng.choice(HOSTILE), rng)
    if kind == "yaml":
        return yaml.safe_dump(tree, allow_unicode=rng.random() < 0.5).encode()
    return json.dumps(tree).encode()


def as_format_0(session: Path) -> Path:
    """The session with its state as 0.1.0 left it: pickled (format 0) in place of the JSON."""
    import cloudpickle

    path = session / LEGACY_STATE_FILE
    path.write_bytes(cloudpickle.dumps(TuneSessionState.load(session)))
    (session / STATE_FILE).unlink()
    return path


def corrupt_pickle(data: bytes, rng: random.Random) -> bytes:
    """Damage the state pickle: its bytes, or a well-formed pickle of the wrong thing."""
    if rng.random() < 0.7:
        return corrupt_bytes(data, rng)
    import cloudpickle

    choice = rng.randrange(3)
    if choice == 0:
        return pickle.dumps(rng.choice([{"a": 1}, [1, 2], 7, "text", None]))
    state = cloudpickle.loads(data)
    field = rng.choice(["base_config", "sys_path", "search_space", "strategy", "fingerprint", "optimization_config",
                        "session_id", "paused_at", "schema_version", "experiment_name"])
    setattr(state, field, rng.choice(HOSTILE[:17]))
    if choice == 2:
        object.__delattr__(state, rng.choice(["sys_path", "fingerprint", "base_config"]))
    return cloudpickle.dumps(state)


FILES = {
    "state": lambda session: session / STATE_FILE,
    "legacy": lambda session: as_format_0(session),
    "summary": lambda session: session / SUMMARY_FILE,
    "lock": lambda session: session / "session.lock",
    "tune": lambda session: session / "tune" / SNAPSHOT,
    "best": lambda session: session / "best_config.yaml",
}
KIND = {"state": "json", "summary": "yaml", "best": "yaml", "lock": "json", "tune": "json", "study": "yaml", "base": "yaml"}


def damage(path: Path, name: str, rng: random.Random) -> None:
    data = path.read_bytes()
    if name == "legacy":
        new = corrupt_pickle(data, rng)
    elif rng.random() < 0.5:
        new = corrupt_bytes(data, rng)
    else:
        new = corrupt_structured(data, KIND[name], rng)
    path.write_bytes(new)


# -- running the console -----------------------------------------------------------------------
class Console:
    """Runs ``main(argv)`` in this process with a time bound; checks the one-error-line contract."""

    def __init__(self, capsys):
        self.capsys = capsys
        self.runs = self.errors = self.successes = 0
        self.slowest = 0.0

    def __call__(self, *argv, case=""):
        def hung(signum, frame):
            raise Hung(f"{argv} on {case} took more than {PER_COMMAND_S} s")

        previous = signal.signal(signal.SIGALRM, hung)
        signal.setitimer(signal.ITIMER_REAL, PER_COMMAND_S)
        start = time.monotonic()
        try:
            code = main([str(a) for a in argv])
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        self.slowest = max(self.slowest, time.monotonic() - start)
        out, err = self.capsys.readouterr()
        check(code, out, err, f"{' '.join(map(str, argv))} [{case}]")
        self.runs += 1
        self.errors += code != 0
        self.successes += code == 0


def check(code, out, err, what):
    assert code in EXIT_OK, (what, code, out[-2000:], err[-2000:])
    assert "Traceback" not in out + err, (what, err[-3000:])
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    if code == 0:
        assert not lines, (what, err[-2000:])
        return
    assert len(lines) == 1, (what, code, err[-2000:])
    assert not lines[0].startswith("error: unexpected "), (what, lines[0])


@pytest.fixture
def quiet_console(monkeypatch):
    """The console in this process, with Ray's part stubbed: `TuneSession.run` records and returns."""
    from lightning_bohb.session.runner import TuneSession

    reached = []
    monkeypatch.setattr(TuneSession, "run", lambda self, *args, **kwargs: reached.append(self.session_dir))
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # resume sets its quiet hook on errors
    monkeypatch.setattr(sys, "path", list(sys.path))  # resume puts the session's import path on it
    package_logger = logging.getLogger("lightning_bohb")
    monkeypatch.setattr(package_logger, "level", package_logger.level)
    return reached


def session_commands(session: Path, root: Path):
    return [
        ["status", session], ["status", session, "--json"], ["list", root],
        ["clean", root, "--older-than", "1s", "--dry-run"], ["export-best", session], ["resume", session],
    ]


# -- the fuzz ------------------------------------------------------------------------------------
def test_every_command_survives_seeded_corruptions_of_every_session_and_study_file(tmp_path, capsys, quiet_console):
    console = Console(capsys)
    start = time.monotonic()
    template = pristine_session(tmp_path / "template")
    study_template = pristine_study(tmp_path / "study_template")

    # The pristine files pass every command (a resume reaches the Ray stub).
    root = tmp_path / "pristine"
    shutil.copytree(template.parent.parent, root, symlinks=True)
    session = root / "exp" / template.name
    for argv in session_commands(session, root):
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        assert code == 0, (argv, err)
    assert quiet_console == [session.resolve()]
    assert main(["run", str(study_template)]) == 0, capsys.readouterr().err
    capsys.readouterr()

    files = 0
    for name in ("state", "legacy", "summary", "lock", "tune", "best"):
        for i in range(CASES[name]):
            rng = random.Random(f"{SEED}-{name}-{i}")
            root = tmp_path / f"{name}_{i}"
            shutil.copytree(template.parent.parent, root, symlinks=True)
            session = root / "exp" / template.name
            damage(FILES[name](session), name, rng)
            files += 1
            for argv in session_commands(session, root):
                console(*argv, case=f"{name} #{i}")
            shutil.rmtree(root)

    for name in ("study", "base"):
        for i in range(CASES[name]):
            rng = random.Random(f"{SEED}-{name}-{i}")
            folder = tmp_path / f"{name}_{i}"
            shutil.copytree(study_template.parent, folder)
            damage(folder / ("study.yaml" if name == "study" else "config.yaml"), name, rng)
            files += 1
            console("run", folder / "study.yaml", case=f"{name} #{i}")

    elapsed = time.monotonic() - start
    with capsys.disabled():
        print(
            f"\nfuzz: {files} corrupted files, {console.runs} console runs: {console.errors} ended with one error line, "
            f"{console.successes} succeeded; slowest {console.slowest:.2f} s, all {elapsed:.1f} s"
        )
    assert files == sum(CASES.values()) and console.errors > console.runs / 4


def console_process(*argv, cwd):
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "lightning_bohb", *map(str, argv)], capture_output=True, text=True, timeout=60, cwd=cwd,
    )
    return result.returncode, result.stdout, result.stderr, time.monotonic() - start


def test_corrupted_files_in_real_console_processes(tmp_path):
    """A few corruptions through ``python -m lightning_bohb``: nothing here replaces Ray, so a resume
    must fail at its checks (load, trust), before Ray starts."""
    template = pristine_session(tmp_path / "template")
    study = pristine_study(tmp_path / "study")
    runs = []
    for name, how in [("state", "truncate"), ("summary", "binary"), ("lock", "list"), ("tune", "truncate"), ("state", "mode")]:
        root = tmp_path / f"{name}_{how}"
        shutil.copytree(template.parent.parent, root, symlinks=True)
        session = root / "exp" / template.name
        path = FILES[name](session)
        if how == "truncate":
            path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
        elif how == "binary":
            path.write_bytes(bytes(range(256)) * 3)
        elif how == "list":
            path.write_text("[1, 2]")
        else:
            os.chmod(session, 0o777)
        for argv in (["status", session], ["list", root], ["export-best", session]):
            runs.append((argv, *console_process(*argv, cwd=tmp_path)))
        if name != "lock":
            runs.append((["resume", session], *console_process("resume", session, cwd=tmp_path)))
    (study.parent / "config.yaml").write_bytes(b"model: " + b"9" * 5000)
    runs.append((["run", study], *console_process("run", study, cwd=tmp_path)))
    for argv, code, out, err, seconds in runs:
        check(code, out, err, " ".join(map(str, argv)))
        if argv[0] in ("resume", "run"):
            assert code in (1, 2) and seconds < 30, (argv, code, seconds, err)


# -- planted files in the readers of session and request files (issue 25, items 4 and 5) ---------
DEEP = b"[" * 1000
"""Nested deeper than Python's JSON parser goes (a `RecursionError` there), and under every size limit."""


def plant(path: Path, kind: str) -> None:
    """Put a planted ``kind`` of file at ``path``: deep JSON, a FIFO, or a link to a file outside."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(path):
        path.unlink()
    if kind == "deep":
        path.write_bytes(DEEP)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        outside = path.parent.parent / f"outside-{path.name}"
        outside.write_text('{"deadline": 1, "action": "pause", "trial": "t1", "namespace": "lightning_bohb"}')
        path.symlink_to(outside)


class bounded:
    """Fails a block that takes more than ``seconds`` (a reader blocked on a FIFO)."""

    def __init__(self, what: str, seconds: int = 5) -> None:
        self.what, self.seconds = what, seconds

    def _expired(self, signum, frame):
        raise Hung(f"{self.what} took more than {self.seconds} s")

    def __enter__(self):
        self._previous = signal.signal(signal.SIGALRM, self._expired)
        signal.alarm(self.seconds)

    def __exit__(self, *exc):
        signal.alarm(0)
        signal.signal(signal.SIGALRM, self._previous)


@pytest.mark.parametrize("kind", ["deep", "fifo", "link"])
def test_no_planted_file_hangs_or_crashes_a_reader(tmp_path, kind):
    from lightning_bohb._ray.snapshot_journal import SNAPSHOT_DELTA_FILE, apply_snapshot_delta
    from lightning_bohb.exceptions import SessionError
    from lightning_bohb.pause.remote import read_control
    from lightning_bohb.pause.state import take_pause_within
    from lightning_bohb.pause.trial_requests import take_requests
    from lightning_bohb.session.history import SessionHistory
    from lightning_bohb.session.owner_record import read_lock
    from lightning_bohb.utils.layout import CONTROL_FILE, LOCK_FILE, PAUSE_WITHIN_FILE

    session = tmp_path / "session"
    session.mkdir()
    request = session / "requests" / "1700000000000000000_0123abcd.json"
    plant(request, kind)
    with bounded(f"take_requests on a {kind}"):
        assert take_requests(session) == []
    assert not os.path.lexists(request)  # removed as invalid (the link itself, never its target)

    plant(session / PAUSE_WITHIN_FILE, kind)
    with bounded(f"take_pause_within on a {kind}"):
        assert take_pause_within(session) is None

    experiment = session / "tune"
    plant(experiment / SNAPSHOT_DELTA_FILE, kind)
    with bounded(f"apply_snapshot_delta on a {kind}"):
        assert apply_snapshot_delta(experiment) is False
    assert not os.path.lexists(experiment / SNAPSHOT_DELTA_FILE)

    plant(experiment / "trial_1" / "result.json", kind)
    with bounded(f"SessionHistory on a {kind}"):
        assert [trial.rows for trial in SessionHistory(session).trials()] in ([], [[]])

    plant(session / CONTROL_FILE, kind)
    why = {"deep": "nested too deeply", "fifo": "not a regular file", "link": "symbolic link"}[kind]
    with bounded(f"read_control on a {kind}"), pytest.raises(SessionError, match=f"The control file .*{why}.*nothing was sent"):
        read_control(session)

    plant(session / LOCK_FILE, kind)
    with bounded(f"read_lock on a {kind}"):
        assert read_lock(session)["invalid"]


def test_a_trial_request_swapped_for_a_fifo_after_its_check_does_not_hang(tmp_path, monkeypatch):
    from lightning_bohb.pause import trial_requests

    session = tmp_path / "session"
    path = trial_requests.write_request(session, "pause", "t1")
    real_lstat = os.lstat

    def lstat_then_swap(name, *args, **kwargs):
        info = real_lstat(name, *args, **kwargs)
        if str(name) == str(path):
            os.unlink(path)
            os.mkfifo(path)  # between the check and the open
        return info

    monkeypatch.setattr(trial_requests.os, "lstat", lstat_then_swap)
    with bounded("take_requests on a request swapped for a FIFO"):
        assert trial_requests.take_requests(session) == []


def _snapshot_with_delta(experiment: Path, files) -> None:
    import base64

    from lightning_bohb._ray.snapshot_journal import SNAPSHOT_DELTA_FILE

    experiment.mkdir(parents=True)
    index = "experiment_state-2026-01-01_00-00-00.json"
    (experiment / index).write_text(json.dumps({"trial_data": [], "runner_data": {"_iteration": 1}}))
    delta = {
        "version": 1, "index": index, "iteration": 2, "runner_data": {"_iteration": 2}, "trials": {},
        "files": {name: base64.b64encode(content).decode() for name, content in files.items()},
    }
    (experiment / SNAPSHOT_DELTA_FILE).write_text(json.dumps(delta))


@pytest.mark.parametrize("name", ["..", ".", "../escaped.pkl", "sub/x.pkl", "experiment_state-2026-01-01_00-00-00.json"])
def test_a_snapshot_delta_naming_a_file_outside_its_state_files_changes_nothing(tmp_path, name):
    from lightning_bohb._ray.snapshot_journal import SNAPSHOT_DELTA_FILE, apply_snapshot_delta

    experiment = tmp_path / "session" / "tune"
    _snapshot_with_delta(experiment, {name: b"planted", "searcher-state.pkl": b"state"})
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert apply_snapshot_delta(experiment) is False  # refused whole: a corrupt delta changes nothing
    assert sorted(p.name for p in tmp_path.rglob("*")) == [p for p in before if p != SNAPSHOT_DELTA_FILE]


def test_a_snapshot_delta_is_applied_within_its_size_limit_only(tmp_path, monkeypatch):
    from lightning_bohb._ray import snapshot_journal

    experiment = tmp_path / "tune"
    _snapshot_with_delta(experiment, {"searcher-state.pkl": b"state"})
    monkeypatch.setattr(snapshot_journal, "_MAX_SNAPSHOT_BYTES", 100)
    assert snapshot_journal.apply_snapshot_delta(experiment) is False and not (experiment / "searcher-state.pkl").exists()
    shutil.rmtree(experiment)
    _snapshot_with_delta(experiment, {"searcher-state.pkl": b"state"})
    monkeypatch.setattr(snapshot_journal, "_MAX_SNAPSHOT_BYTES", 10_000)
    assert snapshot_journal.apply_snapshot_delta(experiment) is True and (experiment / "searcher-state.pkl").read_bytes() == b"state"
