"""Trust before code: nothing named in the YAML summary is imported, nothing is unpickled from a
folder another user could write, and the code check sees the code the trials will run (issue 17, items 6, 6b, 7)."""

import contextlib
import os
import pickle
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from lightning_bohb.exceptions import SessionError
from lightning_bohb.session.state import TuneSessionState, state_file
from lightning_bohb.utils.layout import LEGACY_STATE_FILE, SUMMARY_FILE

REPO = Path(__file__).resolve().parents[2]
TRUST_ENV = "LIGHTNING_BOHB_TRUST"

MODEL_SOURCE = """
import lightning.pytorch as pl


class Model(pl.LightningModule):
    def __init__(self, lr=0.1):
        super().__init__()
        self.lr = lr

    def forward(self, x):
        return x * {factor}
"""


def console(*argv, cwd, timeout=60, env=None):
    """``python -m lightning_bohb ARGV`` in a fresh process; (exit code, stdout, stderr, seconds)."""
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "lightning_bohb", *map(str, argv)],
        capture_output=True, text=True, timeout=timeout, cwd=cwd, env={**os.environ, **(env or {})},
    )
    return result.returncode, result.stdout, result.stderr, time.monotonic() - start


def one_error_line(err):
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def isolated_imports(monkeypatch):
    """sys.path and sys.modules as they were before the test, whatever the test adds."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("lbohb_drift_"):
            del sys.modules[name]


def real_session(tmp_path, monkeypatch, factor=2):
    """A session whose state is pickled as a run writes it: model class in a module of its own folder.

    The module's folder is only in the session's recorded ``sys_path``, as for a script run from
    there; afterwards it is off the import path and out of ``sys.modules``, as in a new process.
    """
    from lightning_bohb import OptimizationConfig, RandomStrategy
    from lightning_bohb.cli.study import YamlSearchSpace
    from lightning_bohb.session.fingerprint import code_fingerprint
    from lightning_bohb.utils.files import make_private_dir

    code = tmp_path / "code"
    code.mkdir()
    module = f"lbohb_drift_{uuid.uuid4().hex[:8]}"
    (code / f"{module}.py").write_text(MODEL_SOURCE.format(factor=factor))
    base = {"model": {"class_path": f"{module}.Model", "init_args": {"lr": 0.1}}, "trainer": {"max_epochs": 2}}
    space = YamlSearchSpace({"lr": {"uniform": [0.01, 0.1]}}, {"metric": "val_loss", "mode": "min"})
    strategy = RandomStrategy()
    sys.path.insert(0, str(code))
    try:
        fingerprint = code_fingerprint(space, strategy, base)
    finally:
        sys.path.remove(str(code))
        sys.modules.pop(module, None)
    state = TuneSessionState(
        session_id="20260101_000000_abcdef",
        experiment_name="exp",
        search_space=space,
        strategy=strategy,
        optimization_config=OptimizationConfig(max_epochs=2, num_samples=2, experiment_name="exp"),
        base_config=base,
        sys_path=[str(code)],
        status="PAUSED",
        fingerprint=fingerprint,
    )
    session = make_private_dir(tmp_path / "experiments" / "exp" / "session_20260101_000000_abcdef")
    state.save(session)
    (session / SUMMARY_FILE).write_text(yaml.safe_dump({"schema_version": 1, "status": "PAUSED", "session_id": state.session_id}))
    return session, code / f"{module}.py", f"{module}.Model"


def planted_pickle(marker: Path) -> bytes:
    """A pickle that, when loaded, creates ``marker``: proof that it was unpickled."""

    class Planted:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    return pickle.dumps(Planted())


# -- 6: the summary names nothing that is imported ------------------------------------------------
@pytest.mark.parametrize("state", ["missing", "planted"])
def test_resume_imports_nothing_the_summary_names(tmp_path, state):
    work = tmp_path / "work"
    work.mkdir()
    marker = tmp_path / "evil_ran"
    (work / "evilmod.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass Evil:\n    VERSION = 'x'\n")
    session = tmp_path / "exp" / "session_x"
    session.mkdir(parents=True)
    summary = {
        "schema_version": 1,
        "status": "PAUSED",
        "code": {"classes": {"evilmod.Evil": "0" * 16}, "search_space_class": "evilmod.Evil", "search_space_version": "1"},
    }
    (session / SUMMARY_FILE).write_text(yaml.safe_dump(summary))
    if state == "planted":  # not ours to trust: group-writable
        (session / LEGACY_STATE_FILE).write_bytes(planted_pickle(marker))
        os.chmod(session, 0o775)
    code, out, err, _ = console("resume", session, cwd=work)
    assert code == 1, (out, err)
    one_error_line(err)
    assert not marker.exists(), "a module named in the summary was imported"


# -- 6b: the check sees the code the trials will run -----------------------------------------------
def test_model_changed_after_a_pause_is_refused_with_the_recorded_import_path(tmp_path, monkeypatch, isolated_imports):
    from lightning_bohb.session.runner import TuneSession

    session, model_file, class_key = real_session(tmp_path, monkeypatch)
    TuneSession.resume(session).close()  # unchanged: resumes (the module is found through the recorded sys_path)
    sys.modules.pop(class_key.rpartition(".")[0], None)

    model_file.write_text(MODEL_SOURCE.format(factor=3))
    with pytest.raises(SessionError) as info:
        TuneSession.resume(session)
    assert f"class {class_key}: source changed" in str(info.value)
    assert "--allow-code-changes" in str(info.value)
    allowed = TuneSession.resume(session, allow_code_changes=True)
    allowed.close()
    assert allowed.code_changes == [f"class {class_key}: source changed"]


def test_a_model_class_that_cannot_be_found_is_refused_with_the_folder_to_add_not_as_a_change(tmp_path, monkeypatch, isolated_imports):
    from lightning_bohb.session.runner import TuneSession

    session, model_file, class_key = real_session(tmp_path, monkeypatch)
    moved = tmp_path / "moved"
    moved.mkdir()
    model_file.rename(moved / model_file.name)
    with pytest.raises(SessionError) as info:
        TuneSession.resume(session)
    message = str(info.value)
    assert f"class {class_key} cannot be imported: no module named {class_key.split('.')[0]!r}" in message
    assert f"PYTHONPATH={moved}" in message and "changed" not in message


def test_console_resume_refuses_a_changed_model_before_ray_starts(tmp_path, monkeypatch, isolated_imports):
    session, model_file, class_key = real_session(tmp_path, monkeypatch)
    model_file.write_text(MODEL_SOURCE.format(factor=5))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code, out, err, seconds = console("resume", session, cwd=elsewhere, timeout=120)
    assert code == 1, (out, err)
    line = one_error_line(err)
    assert "code changed since session" in line
    assert f"class {class_key}: source changed" in err
    assert "Ray" not in out + err and seconds < 60


# -- 7: nothing is unpickled from a folder someone else could write -------------------------------
def untrusted(session: Path, how: str) -> None:
    if how == "group-writable folder":
        os.chmod(session, 0o770)
    elif how == "other-writable state file":  # in a folder others may enter (in a 0700 one, nobody else reaches it)
        os.chmod(session, 0o711)
        os.chmod(state_file(session), 0o606)
    elif how == "writable tune state":
        os.chmod(session, 0o755)
        tune = session / "tune"
        tune.mkdir()
        (tune / "experiment_state-2026-01-01_00-00-00.json").write_text("{}")
        os.chmod(tune / "experiment_state-2026-01-01_00-00-00.json", 0o666)
    elif how == "state file is a link":
        path = state_file(session)
        real = session.parent / "elsewhere"
        path.rename(real)
        path.symlink_to(real)
    elif how == "owned by another user":
        if os.geteuid() != 0:
            pytest.skip("needs root to give a file to another user")
        os.chown(state_file(session), 54321, 54321)
    else:
        raise AssertionError(how)


HOW = ["group-writable folder", "other-writable state file", "writable tune state", "state file is a link", "owned by another user"]


@pytest.mark.parametrize("how", HOW)
def test_state_in_a_folder_others_can_write_is_not_unpickled(tmp_path, how):
    from lightning_bohb.session.runner import TuneSession

    marker = tmp_path / "unpickled"
    session = tmp_path / "exp" / "session_x"
    session.mkdir(parents=True, mode=0o700)
    os.chmod(session, 0o700)
    (session / LEGACY_STATE_FILE).write_bytes(planted_pickle(marker))
    os.chmod(session / LEGACY_STATE_FILE, 0o600)
    untrusted(session, how)

    with pytest.raises(SessionError) as info:
        TuneSession.resume(session)
    message = str(info.value)
    assert "--trust" in message and f"{TRUST_ENV}=1" in message
    assert not marker.exists()

    with pytest.raises(SessionError, match="does not hold a TuneSessionState"):
        TuneSession.resume(session, trust=True)  # trusted: unpickled (and found not to be a session)
    assert marker.exists()


def test_trust_env_var_and_console_flag_override(tmp_path, monkeypatch):
    marker = tmp_path / "unpickled"
    session = tmp_path / "exp" / "session_x"
    session.mkdir(parents=True)
    (session / LEGACY_STATE_FILE).write_bytes(planted_pickle(marker))
    (session / SUMMARY_FILE).write_text("schema_version: 1\nstatus: PAUSED\n")
    os.chmod(session, 0o777)

    code, _, err, _ = console("resume", session, cwd=tmp_path)
    assert code == 1 and "writable by group or others" in one_error_line(err) and not marker.exists()
    code, _, err, _ = console("resume", "--trust", session, cwd=tmp_path)
    assert code == 1 and "does not hold a TuneSessionState" in one_error_line(err) and marker.exists()
    marker.unlink()
    code, _, err, _ = console("resume", session, cwd=tmp_path, env={TRUST_ENV: "1"})
    assert code == 1 and "does not hold a TuneSessionState" in one_error_line(err) and marker.exists()


def test_own_private_session_is_trusted(tmp_path, monkeypatch, isolated_imports):
    from lightning_bohb.session.runner import TuneSession

    session, _, _ = real_session(tmp_path, monkeypatch)
    tune = session / "tune"
    tune.mkdir(mode=0o775)  # what Ray makes under umask 002: fine inside an owner-only session folder
    os.chmod(tune, 0o775)
    (tune / "experiment_state-2026-01-01_00-00-00.json").write_text('{"trial_data": [], "runner_data": {}}')
    assert TuneSession.resume(session).state.session_id == "20260101_000000_abcdef"


def test_scheduler_state_is_restored_only_after_the_trust_check():
    from ray.tune.schedulers import FIFOScheduler

    from lightning_bohb._ray.scheduler_state import SchedulerStateCallback

    checked = []

    def refuse():
        checked.append(True)
        raise SessionError("not trusted")

    good = SchedulerStateCallback(FIFOScheduler()).get_state()
    callback = SchedulerStateCallback(FIFOScheduler(), trust_check=refuse)
    with pytest.raises(SessionError, match="not trusted"):
        callback.set_state(good)
    assert checked and callback._pending is None

    trusting = SchedulerStateCallback(FIFOScheduler(), trust_check=lambda: None)
    for bad in ("x", {"version": "abc"}, {**good, "blob": "not bytes"}, {**good, "paused": 7}):
        with pytest.raises(SessionError, match="scheduler state"):
            trusting.set_state(bad)
    trusting.set_state(good)
    assert trusting._pending is not None


def test_a_trial_loads_its_checkpoint_with_weights_only(tmp_path, monkeypatch):
    """Lightning's ``fit`` passes ``weights_only=None`` on to torch unless told: the trial says True itself."""
    import types
    import warnings

    from ray import tune

    from lightning_bohb.core import trainable, trial_logs
    from lightning_bohb.core.lightning_cli import CLISpec

    fits = []

    class FakeTrainer:
        def fit(self, model, datamodule=None, **kwargs):
            fits.append(kwargs)

    class FakeCheckpoint:
        @contextlib.contextmanager
        def as_directory(self):
            yield str(tmp_path)

    fake_cli = types.SimpleNamespace(trainer=FakeTrainer(), model=None, datamodule=None)
    monkeypatch.setattr(CLISpec, "build", lambda self, *args, **kwargs: fake_cli)
    no_logs = types.SimpleNamespace(configure=lambda config: config, apply=lambda trainer: None)
    monkeypatch.setattr(trial_logs, "continued_logs", lambda trial_dir, path=None, weights_only=True: no_logs)
    monkeypatch.setattr(tune, "get_checkpoint", lambda: FakeCheckpoint())
    monkeypatch.setattr(trainable, "trial_folder", lambda: str(tmp_path))
    monkeypatch.setenv("RAY_CHDIR_TO_TRIAL_DIR", "0")
    for name in trainable.SEED_ENVIRONMENT:  # the trial resets them: put back whatever this process had
        monkeypatch.setenv(name, os.environ.get(name, ""))
    spec = trainable.TrialSpec(
        base_config={"model": {"class_path": "lbohb_test_helpers.KwargsModel", "init_args": {}}},
        parameter_paths={}, max_epochs=1, metric="val_loss",
    )
    with warnings.catch_warnings():
        trainable.train_trial({}, spec)
    assert len(fits) == 1 and fits[0].get("weights_only") is True and fits[0]["ckpt_path"].startswith(str(tmp_path))


def test_resume_with_trust_is_in_the_help(capsys):
    from lightning_bohb.cli.main import main

    assert main(["resume", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--trust" in out and TRUST_ENV in out



def test_deeper_in_the_experiment_links_stay_inside_and_nothing_is_writable_by_others(tmp_path):
    from lightning_bohb.session.trust import untrusted_reason

    session = tmp_path / "session_x"
    checkpoint = session / "tune" / "trial_0" / "checkpoint_000001"
    checkpoint.mkdir(parents=True)
    os.chmod(session, 0o755)
    (checkpoint / "checkpoint.ckpt").write_bytes(b"weights")
    (session / "tune" / "trial_0" / "last.ckpt").symlink_to(checkpoint / "checkpoint.ckpt")  # Lightning's save_last="link"
    assert untrusted_reason(session) is None
    outside = tmp_path / "elsewhere.ckpt"
    outside.write_bytes(b"x")
    (session / "tune" / "trial_0" / "other.ckpt").symlink_to(outside)
    assert "out of the session" in untrusted_reason(session)
    (session / "tune" / "trial_0" / "other.ckpt").unlink()
    os.chmod(checkpoint / "checkpoint.ckpt", 0o666)
    assert "checkpoint.ckpt is writable by group or others" in untrusted_reason(session)
    os.chmod(session, 0o700)  # nobody else can enter: what it holds is out of their reach
    assert untrusted_reason(session) is None
    link = tmp_path / "link_to_session"
    link.symlink_to(session)
    assert untrusted_reason(link) is None  # the folder given may be a link; its target is what is checked
