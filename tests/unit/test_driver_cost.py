"""What the driver does per trial result when it writes a snapshot delta: only what changed, read once."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

from lightning_bohb._ray import incremental_copy, snapshot_journal
from lightning_bohb._ray.atomic_fs import atomic_storage_filesystem


def _written(monkeypatch, session):
    """The files written into ``session`` from now on (each `AtomicFile` ends in an `os.replace`)."""
    written = []
    replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (written.append(os.path.relpath(dst, session)), replace(src, dst)))
    return written


def _racy_for_an_hour(monkeypatch):
    """Files modified within the last hour count as racy: no test step is that slow, even on loaded cores."""
    monkeypatch.setattr(incremental_copy, "_RACY_NS", 3600 * 10**9)


def _age(path, seconds):
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - seconds * 10**9))


def test_a_racy_file_is_copied_again_only_when_its_content_changed(tmp_path, monkeypatch):
    staging, session = tmp_path / "staging", tmp_path / "session"
    staging.mkdir()
    log = staging / "result.json"
    log.write_text('{"epoch": 0}\n')
    fs, copied = atomic_storage_filesystem(), {}
    written = _written(monkeypatch, session)
    _racy_for_an_hour(monkeypatch)

    assert incremental_copy.copy_changed(str(staging), fs, str(session), copied=copied) is True  # just written: racy
    assert incremental_copy.copy_changed(str(staging), fs, str(session), copied=copied) is True
    assert written == ["result.json"]  # read again, the same content: not written again

    stat = os.stat(log)
    log.write_text('{"epoch": 9}\n')  # rewritten within the clock tick: same size, same mtime
    os.utime(log, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    incremental_copy.copy_changed(str(staging), fs, str(session), copied=copied)
    assert written == ["result.json", "result.json"]
    assert (session / "result.json").read_text() == '{"epoch": 9}\n'

    _age(log, 7200)  # settled since: remembered by size and time, never read again
    assert incremental_copy.copy_changed(str(staging), fs, str(session), copied=copied) is False
    assert written == ["result.json", "result.json"]  # its mtime changed: read once more, the same content: not written
    assert len(copied["result.json"]) == 2
    monkeypatch.setattr("builtins.open", None)  # a settled file that did not change is not even opened
    assert incremental_copy.copy_changed(str(staging), fs, str(session), copied=copied) is False


def test_a_file_bigger_than_the_digest_limit_is_copied_by_ray(tmp_path, monkeypatch):
    staging, session = tmp_path / "staging", tmp_path / "session"
    (staging / "sub").mkdir(parents=True)
    (staging / "sub" / "big.bin").write_bytes(b"x" * 100)
    monkeypatch.setattr(incremental_copy, "_DIGEST_MAX_BYTES", 10)
    _racy_for_an_hour(monkeypatch)
    copied = {}

    incremental_copy.copy_changed(str(staging), atomic_storage_filesystem(), str(session), copied=copied)

    assert (session / "sub" / "big.bin").read_bytes() == b"x" * 100
    assert "sub/big.bin" not in copied  # racy, and no digest of it: copied again next time


class _Trial:
    def __init__(self, trial_id, staging, session):
        self.trial_id = trial_id
        self.storage = SimpleNamespace(
            trial_driver_staging_path=str(staging / trial_id), trial_dir_name=trial_id, trial_fs_path=str(session / trial_id)
        )
        (staging / trial_id).mkdir(parents=True)
        (staging / trial_id / "result.json").write_text('{"epoch": 0}\n')

    def get_json_state(self):
        return json.dumps({"trial_id": self.trial_id}), "{}"


class _NoState:
    def save_to_dir(self, folder, session_str):
        pass


def _controller(session):
    storage = SimpleNamespace(
        syncer=SimpleNamespace(wait=lambda: None), storage_filesystem=atomic_storage_filesystem(), experiment_fs_path=str(session)
    )
    controller = SimpleNamespace(
        _storage=storage,
        _trials_to_cache=set(),
        _search_alg=_NoState(),
        _callbacks=_NoState(),
        _session_str="s1",
        experiment_state_file_name="experiment_state-s1.json",
        _iteration=1,
    )
    controller.__getstate__ = lambda: {"_iteration": controller._iteration}
    return controller


def test_a_delta_looks_at_the_files_of_the_trials_marked_since_the_last_one_and_of_those_still_racy(tmp_path, monkeypatch):
    staging, session = tmp_path / "staging", tmp_path / "session"
    session.mkdir()
    _racy_for_an_hour(monkeypatch)
    a, b = _Trial("a", staging, session), _Trial("b", staging, session)
    controller = _controller(session)
    journal = snapshot_journal._SnapshotJournal(controller)
    controller._trials_to_cache.add(a)
    controller._trials_to_cache.add(b)
    journal.write_delta()
    assert (session / "a" / "result.json").exists() and (session / "b" / "result.json").exists()
    assert journal.unsettled == {a, b} and not journal.to_scan

    for trial in (a, b):  # both settle
        _age(staging / trial.trial_id / "result.json", 7200)
    journal.write_delta()  # still racy at the last look: looked at again, now settled
    assert not journal.unsettled
    scanned = []
    upload = incremental_copy.copy_changed

    def recording_upload(folder, *args):
        scanned.append(os.path.basename(folder))
        return upload(folder, *args)

    monkeypatch.setattr(snapshot_journal, "copy_changed", recording_upload)

    with open(staging / "a" / "result.json", "a") as log:  # a reports a result: Tune's logger appends, Tune marks a
        log.write('{"epoch": 1}\n')
    _age(staging / "a" / "result.json", 7200)
    _age(staging / "b" / "result.json", 3 * 7200)  # b's log changes too, unmarked (no logger of Tune does that)
    (staging / "b" / "result.json").write_text('{"epoch": 7}\n')
    _age(staging / "b" / "result.json", 7200)
    controller._trials_to_cache.add(a)
    controller._iteration = 2
    journal.write_delta()

    assert scanned == ["a"]  # b neither marked nor racy: its folder is not looked at
    assert (session / "b" / "result.json").read_text() == '{"epoch": 0}\n'  # until Tune marks it or snapshots in full
    assert (session / "a" / "result.json").read_text() == '{"epoch": 0}\n{"epoch": 1}\n'
    delta = json.loads((session / snapshot_journal.SNAPSHOT_DELTA_FILE).read_text())
    assert sorted(delta["trials"]) == ["a", "b"]  # the delta still holds every trial changed since the last full snapshot
    assert delta["iteration"] == 2


class _Saving:
    def __init__(self, names):
        self.names = iter(names)

    def save_to_dir(self, folder, session_str):
        name = next(self.names)
        with open(os.path.join(folder, name), "wb") as handle:
            handle.write(name.encode())


def test_each_delta_holds_only_the_state_files_saved_for_it(tmp_path):
    import base64

    session = tmp_path / "session"
    session.mkdir()
    controller = _controller(session)
    controller._search_alg = _Saving(["searcher-state-s1.pkl", "searcher-other-s1.pkl"])
    journal = snapshot_journal._SnapshotJournal(controller)
    deltas = []
    for _ in range(2):
        journal.write_delta()
        deltas.append(json.loads((session / snapshot_journal.SNAPSHOT_DELTA_FILE).read_text())["files"])
        folder = journal.state_folder

    assert deltas[0] == {"searcher-state-s1.pkl": base64.b64encode(b"searcher-state-s1.pkl").decode()}
    assert list(deltas[1]) == ["searcher-other-s1.pkl"]  # the folder is reused, emptied first
    assert folder == journal.state_folder and os.listdir(folder) == ["searcher-other-s1.pkl"]


def test_a_summary_slow_to_write_is_rewritten_less_often():
    import time

    from lightning_bohb.session.runner import TuneSession

    session = TuneSession("exp", experiment_dir="/nonexistent", session_id="s1")
    written = []
    session._write_summary = lambda required=True: written.append(required)
    session._summary_stale, session._last_summary = True, time.time() - 5.0
    session._summary_took = 1.0  # 19 s between rewrites: not yet
    session._on_step()
    assert not written
    session._summary_took = 0.01  # 0.5 s between rewrites, 5 s ago: now
    session._on_step()
    assert written


def test_a_store_out_of_reach_does_not_stop_a_search_over_its_summary(caplog):
    import logging

    import pytest

    from lightning_bohb.session.backend import StoredSession
    from lightning_bohb.session.runner import TuneSession

    class Unreachable(StoredSession):
        def __init__(self, uri):
            self.location = uri  # no store opened: every put fails

        def push(self, *names):
            raise OSError("Cannot write s3://bucket/exp/session_s1/session_state.summary.yaml: connection refused")

    session = TuneSession("exp", experiment_dir="/nonexistent", session_id="s1")
    session._backend = Unreachable("s3://bucket/exp/session_s1")
    with caplog.at_level(logging.WARNING):
        session._push("session_state.summary.yaml", required=False)  # the periodic rewrite: logged
    assert "the next change tries again" in caplog.text
    with pytest.raises(OSError):
        session._push("session_state.json")  # the state itself: the caller says it could not be saved


def test_the_driver_exit_skips_the_final_collection_of_what_is_still_alive():
    import subprocess
    import sys

    # Garbage in a reference cycle, left for the interpreter's final collection (about 1 s with torch,
    # Lightning and Ray loaded): after `TuneReflowCLI.run`'s exit hook it is frozen, never collected.
    code = """
import gc, os, sys
gc.disable()
if sys.argv[1] == "frozen":
    from lightning_bohb.cli.tune_reflow import _freeze_objects_at_exit
    _freeze_objects_at_exit()
class Cycle:
    def __del__(self):
        os.write(1, b"collected")
cycle = Cycle(); cycle.me = cycle; del cycle
"""
    outputs = {
        how: subprocess.run([sys.executable, "-c", code, how], capture_output=True, text=True, timeout=120) for how in ("plain", "frozen")
    }
    assert outputs["plain"].stdout == "collected"  # what the final collection does without the hook
    assert outputs["frozen"].returncode == 0 and outputs["frozen"].stdout == "", outputs["frozen"].stderr
