"""Session files: atomic writes survive a failing disk, bad sessions give clear errors, code changes."""

import errno
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lightning_bohb.exceptions import SessionError
from lightning_bohb.session import fingerprint, lock
from lightning_bohb.session.state import SCHEMA_VERSION, STATE_FILE, SUMMARY_FILE, TuneSessionState
from lightning_bohb.utils import files

REPO = Path(__file__).resolve().parents[2]


def test_atomic_write_keeps_previous_file_when_disk_fills(tmp_path, monkeypatch):
    target = tmp_path / "state.bin"
    files.atomic_write(target, b"previous")

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        files.atomic_write(target, b"new" * 1000)
    assert target.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["state.bin"]  # no temporary file left behind


def test_private_dirs_and_files_are_owner_only(tmp_path):
    session = files.make_private_dir(tmp_path / "exp" / "session_x")
    files.atomic_write(session / "f", "x")
    assert (session.stat().st_mode & 0o777) == 0o700
    assert ((session / "f").stat().st_mode & 0o777) == 0o600


def test_lock_refuses_live_owner_and_takes_over_dead_one(tmp_path):
    first = lock.SessionLock(tmp_path)
    first.acquire()
    with pytest.raises(SessionError, match="already running"):
        lock.SessionLock(tmp_path).acquire()
    first.release()
    (tmp_path / lock.LOCK_FILE).write_text('{"pid": 999999999, "host": "%s", "since": 0}' % os.uname().nodename)
    taken = lock.SessionLock(tmp_path)
    taken.acquire()
    assert taken.held


def test_taking_over_a_dead_owners_lock_removes_its_half_written_files(tmp_path):
    (tmp_path / "trial").mkdir()
    abandoned = files.AtomicFile(tmp_path / "trial" / "result.json")  # its writer was killed before close
    abandoned.write(b'{"epoch"')
    (tmp_path / ".notes.tmp").write_text("the user's")
    (tmp_path / lock.LOCK_FILE).write_text('{"pid": 999999999, "host": "%s", "since": 0}' % os.uname().nodename)

    lock.SessionLock(tmp_path).acquire()

    assert os.listdir(tmp_path / "trial") == []
    assert (tmp_path / ".notes.tmp").exists()


def _session(tmp_path, pkl: bytes = None, summary=None):
    session = tmp_path / "exp" / "session_20260101_000000_abcdef"
    session.mkdir(parents=True)
    if pkl is not None:
        (session / STATE_FILE).write_bytes(pkl)
    if summary is not None:
        (session / SUMMARY_FILE).write_text(yaml.safe_dump(summary))
    return session


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing", "Session state not found"),
        ("not_a_session", "is not a LightningTune session"),
        ("truncated", "corrupt or truncated"),
        ("newer_schema", "newer than this lightning_bohb"),
    ],
)
def test_bad_sessions_give_one_clear_message_from_script_and_console(tmp_path, case, expected):
    if case == "missing":
        session = tmp_path / "nowhere" / "session_x"
    elif case == "not_a_session":
        session = _session(tmp_path)
    elif case == "truncated":
        session = _session(tmp_path, pickle.dumps({"x": list(range(100))})[:20], {"schema_version": SCHEMA_VERSION})
    else:
        session = _session(tmp_path, b"whatever", {"schema_version": SCHEMA_VERSION + 1})
    commands = [
        [sys.executable, str(REPO / "examples" / "optimize.py"), "--resume-session", str(session)],
        [sys.executable, "-m", "lightning_bohb", "resume", str(session)],
    ]
    for argv in commands:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert result.returncode == 1, (argv, result.stdout, result.stderr)
        assert expected in result.stderr and "Traceback" not in result.stderr + result.stdout, result.stderr


def test_code_change_is_detected_and_refused_unless_allowed(tmp_path, monkeypatch):
    sys.path.insert(0, str(REPO / "examples"))
    from lightning_bohb import RandomStrategy, SearchSpace

    class Space(SearchSpace):
        VERSION = "1"

        def get_search_space(self):
            return {"lr": 0.1}

        def get_metric_config(self):
            return {"metric": "val_loss"}

    base = {"model": {"class_path": "digits_model.DigitsClassifier", "init_args": {}}}
    recorded = fingerprint.code_fingerprint(Space(), RandomStrategy(), base)
    assert fingerprint.changes_since(recorded) == []

    recorded["classes"]["digits_model.DigitsClassifier"] = "0" * 16
    changes = fingerprint.changes_since(recorded)
    assert "class digits_model.DigitsClassifier: source changed" in changes
    with pytest.raises(SessionError, match="code changed since session"):
        fingerprint.check_unchanged(recorded, "s", allow=False)
    assert fingerprint.check_unchanged(recorded, "s", allow=True) == changes
    monkeypatch.setenv(fingerprint.ALLOW_ENV, "1")
    assert fingerprint.check_unchanged(recorded, "s", allow=False) == changes


def test_search_space_version_change_is_reported():
    recorded = {"search_space_class": "digits_model.DigitsClassifier", "search_space_version": "0.9"}
    sys.path.insert(0, str(REPO / "examples"))
    assert fingerprint.changes_since(recorded) == ["search space VERSION: 0.9 -> 0"]


def test_state_round_trip_keeps_search_space_defined_in_a_script(tmp_path):
    from lightning_bohb import OptimizationConfig, RandomStrategy

    script = tmp_path / "user_script.py"
    script.write_text(
        "from lightning_bohb import SearchSpace\n"
        "class ScriptSpace(SearchSpace):\n"
        "    def get_search_space(self): return {'lr': 0.5}\n"
        "    def get_metric_config(self): return {'metric': 'val_loss'}\n"
    )
    code = (
        "import runpy, sys; ns = runpy.run_path(sys.argv[1], run_name='__main__');"
        "from lightning_bohb.session.state import TuneSessionState;"
        "from lightning_bohb import OptimizationConfig, RandomStrategy;"
        "TuneSessionState('id', 'e', ns['ScriptSpace'](), RandomStrategy(), OptimizationConfig(), {}).save(sys.argv[2])"
    )
    subprocess.run([sys.executable, "-c", code, str(script), str(tmp_path)], check=True, timeout=60)
    state = TuneSessionState.load(tmp_path)  # another process, where the script's class does not exist
    assert state.search_space.get_search_space() == {"lr": 0.5}
    assert isinstance(state.optimization_config, OptimizationConfig) and isinstance(state.strategy, RandomStrategy)
