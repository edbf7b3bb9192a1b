"""The Ray Tune internals LightningTune touches still look the way it expects (fails loudly on upgrade)."""

import os
import signal
import threading
from types import SimpleNamespace

import pytest
import ray
from ray.train._internal.storage import StorageContext, _FilesystemSyncer
from ray.tune.execution.tune_controller import TrialRunnerWrapper, TuneController
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler

from lightning_bohb._ray import incremental_copy, ray_start, scheduler_hooks, scheduler_state, snapshot_journal, tune_controller, tune_run
from lightning_bohb._ray.atomic_fs import atomic_storage_filesystem
from lightning_bohb._ray.bohb_scheduler import ResumableHyperBandForBOHB


def test_ray_version_is_the_one_these_internals_were_checked_against():
    assert ray.__version__ == "2.60.0", "re-check the modules of lightning_bohb/_ray against this Ray, then update the pin"


def test_tune_interrupt_event_is_found_in_tunes_sigusr1_handler():
    from ray.tune.tune import _setup_signal_catching

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGUSR1)}
    try:
        expected = _setup_signal_catching()
        event = tune_run.tune_interrupt_event()
        assert isinstance(event, threading.Event) and event is expected
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def test_controller_methods_used_exist():
    for name in ("_set_trial_status", "_mark_trial_to_checkpoint", "checkpoint"):
        assert callable(getattr(TuneController, name))
    assert "_tune_controller" in TrialRunnerWrapper.__init__.__code__.co_names
    assert "_storage" in TuneController.__init__.__code__.co_names  # publish_snapshots_last wraps its syncer
    # What a snapshot delta reads and the set it tracks (snapshot_experiment, apply_snapshot_delta).
    assert {"_trials_to_cache", "_iteration", "_session_str"} <= set(TuneController.__init__.__code__.co_names)
    assert "_trials_to_cache" in TuneController._get_trial_checkpoints.__code__.co_names
    assert isinstance(TuneController.experiment_state_file_name, property) and TuneController.CKPT_FILE_TMPL.startswith("experiment_state-")
    assert {"trial_driver_staging_path", "trial_fs_path"} <= set(dir(StorageContext))
    assert "trial_dir_name" in StorageContext.__init__.__code__.co_names
    assert callable(Trial.get_json_state) and "_iteration" not in TuneController.__getstate__.__code__.co_consts


def test_what_per_trial_holds_rely_on_is_still_there():
    from ray.tune.schedulers import FIFOScheduler, TrialScheduler
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter

    assert callable(TuneController.stop_trial) and callable(TuneController._schedule_trial_pause)  # PAUSE: save, then stop
    # FIFO (and ASHA, its subclass) pick a PAUSED trial to run again from the controller's trials: hold_trials hides them there.
    assert "get_trials" in FIFOScheduler.choose_trial_to_run.__code__.co_names
    assert (TrialScheduler.CONTINUE, TrialScheduler.PAUSE, TrialScheduler.STOP) == ("CONTINUE", "PAUSE", "STOP")
    assert BasicVariantGenerator(max_concurrent=2).max_concurrent == 2 and callable(ConcurrencyLimiter.set_max_concurrency)


def test_trial_actor_handles_and_local_ray_processes_are_where_expected():
    from ray._private import ray_constants, worker

    assert _trial("a").temporary_state.ray_actor is None  # end_trial_actors reads it
    tune_controller.end_trial_actors([_trial("a")])  # no actor: nothing to end
    assert hasattr(worker, "_global_node") and ray_constants.PROCESS_TYPE_MONITOR == "monitor"
    assert ray_start.end_local_autoscaler_monitor() is False  # no local Ray started here


def test_callback_usage_is_tagged_as_tune_tags_it_without_importing_the_integrations():
    import subprocess
    import sys

    # A fresh interpreter: what a session's driver has imported when Tune tags the callbacks.
    code = """
import json, sys
from unittest import mock
from ray.air._internal import usage
from ray.tune import Callback
from ray.tune.logger import CSVLoggerCallback, LoggerCallback
from lightning_bohb._ray import tune_run
callbacks = [Callback(), CSVLoggerCallback(), LoggerCallback()]
with mock.patch.object(usage, "record_extra_usage_tag") as record:
    usage.tag_callbacks(callbacks)
tune_tag = record.call_args.args
tune_run.tag_callbacks_without_imports()
from ray.tune import tune
assert tune.air_usage.tag_callbacks is usage.tag_callbacks  # what tune.run calls
for name in [n for n in sys.modules if n.startswith(("ray.air.integrations", "ray.tune.logger.aim"))]:
    del sys.modules[name]
with mock.patch.object(usage, "record_extra_usage_tag") as record:
    usage.tag_callbacks(callbacks)
ours = record.call_args.args
assert ours[0] == tune_tag[0] and json.loads(ours[1]) == json.loads(tune_tag[1]), (ours, tune_tag)
assert not [n for n in sys.modules if n.startswith(("ray.air.integrations", "ray.tune.logger.aim"))]
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip().endswith("ok"), done.stderr[-3000:]


def _trial(trial_id):
    return Trial("fn", config={}, trial_id=trial_id, stub=True)


@pytest.mark.parametrize(
    "make", [lambda: ASHAScheduler(metric="m", mode="min", max_t=9), lambda: ResumableHyperBandForBOHB(metric="m", mode="min", max_t=9)]
)
def test_scheduler_state_round_trips_with_trials_mapped_by_id(make):
    original, live = make(), [_trial("a"), _trial("b")]
    for trial in live:
        original.on_trial_add(None, trial)
    blob = scheduler_state.dump_scheduler(original)

    fresh_trials = [_trial("a"), _trial("b")]  # what Tune rebuilds on resume: new objects, same ids
    restored = make()
    scheduler_state.load_scheduler(restored, blob, fresh_trials)
    if isinstance(restored, ResumableHyperBandForBOHB):
        members = {t.trial_id: t for t in restored._trial_info}
        assert set(members) == {"a", "b"} and all(members[t.trial_id] is t for t in fresh_trials)
    else:
        assert set(restored._trial_info) == {"a", "b"}


def test_scheduler_state_naming_an_unknown_trial_is_refused():
    import pickle

    original = ResumableHyperBandForBOHB(metric="m", mode="min", max_t=9)
    original.on_trial_add(None, _trial("a"))
    with pytest.raises(pickle.UnpicklingError, match="does not have"):
        blob = scheduler_state.dump_scheduler(original)
        scheduler_state.load_scheduler(ResumableHyperBandForBOHB(metric="m", mode="min", max_t=9), blob, [])


class _Controller:
    """What `publish_snapshots_last` touches of a TuneController: its storage's (real) syncer."""

    def __init__(self):
        self._storage = SimpleNamespace(syncer=_FilesystemSyncer(storage_filesystem=atomic_storage_filesystem()))
        self._trials_to_cache = set()


def test_capture_controller_keeps_the_controller_out_of_the_saved_state():
    scheduler = ASHAScheduler(metric="m", mode="min", max_t=9)
    scheduler_hooks.capture_controller(scheduler)
    controller = _Controller()
    scheduler.on_trial_add(controller, _trial("a"))
    assert scheduler._lightning_bohb_controller is controller
    assert b"_lightning_bohb_" not in scheduler_state.dump_scheduler(scheduler)


def test_experiment_snapshot_index_is_published_after_everything_it_indexes(tmp_path, monkeypatch):
    staging, session = tmp_path / "staging", tmp_path / "session"
    (staging / "trial_a").mkdir(parents=True)
    (staging / "trial_a" / "result.json").write_text('{"epoch": 1}\n')
    (staging / "experiment_state-2026-01-01_00-00-00.json").write_text("{}")
    (staging / "searcher-state-2026-01-01_00-00-00.pkl").write_bytes(b"s")
    (staging / "callback-states-2026-01-01_00-00-00.pkl").write_bytes(b"c")
    published = []
    replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (published.append(os.path.relpath(dst, session)), replace(src, dst)))
    controller = _Controller()
    snapshot_journal.publish_snapshots_last(controller)

    controller._storage.syncer.sync_up(str(staging), str(session))
    controller._storage.syncer.wait()

    assert sorted(published) == sorted(str(path.relative_to(staging)) for path in staging.rglob("*") if path.is_file())
    assert published[0] == os.path.join("trial_a", "result.json")
    assert published[-1] == "experiment_state-2026-01-01_00-00-00.json"
    assert (session / "trial_a" / "result.json").read_text() == '{"epoch": 1}\n'


def test_a_driver_that_lost_its_session_writes_no_snapshot(tmp_path):
    """A driver suspended past its lease resumes inside a step of Tune's loop, whose timed snapshot comes
    before the step's ownership check: the write itself asks first, and nothing reaches the session."""
    from lightning_bohb.exceptions import SessionLockLost

    staging, session = tmp_path / "staging", tmp_path / "session"
    (staging / "trial_a").mkdir(parents=True)
    (staging / "trial_a" / "result.json").write_text('{"epoch": 1}\n')
    (staging / "experiment_state-x.json").write_text("{}")
    asked = []

    def check_owned():
        asked.append(True)
        raise SessionLockLost("taken over by another driver")

    controller = _Controller()
    snapshot_journal.publish_snapshots_last(controller, before_write=check_owned)
    controller._storage.syncer.sync_up(str(staging), str(session))
    with pytest.raises(Exception, match="taken over"):
        controller._storage.syncer.wait()
    with pytest.raises(SessionLockLost):
        snapshot_journal._journals[controller].snapshot()  # the snapshot per trial checkpoint
    assert len(asked) == 2 and not session.exists()


def test_a_lease_lost_while_the_store_makes_a_folder_writes_no_file_into_it(tmp_path, monkeypatch):
    """Making a folder in a store out of reach spends the store's retries (seconds): a driver whose lease ran
    out meanwhile starts no write there (an e2e partition showed one started after the loss)."""
    import pyarrow.fs
    from ray.train._internal import storage

    from lightning_bohb.exceptions import SessionLockLost

    staging, session = tmp_path / "staging", tmp_path / "session"
    (staging / "trial_a").mkdir(parents=True)
    (staging / "trial_a" / "result.json").write_text('{"epoch": 1}\n')
    lost = []
    make_folder = storage._create_directory

    def retried_past_the_loss(fs, fs_path):
        make_folder(fs, fs_path)
        lost.append(True)

    def check_owned():
        if lost:
            raise SessionLockLost("its heartbeat could not be renewed for 20 s")

    monkeypatch.setattr(storage, "_create_directory", retried_past_the_loss)
    with pytest.raises(SessionLockLost):
        incremental_copy.copy_changed(str(staging), pyarrow.fs.LocalFileSystem(), str(session), copied={}, before_write=check_owned)
    assert lost and not (session / "trial_a" / "result.json").exists()


def test_snapshot_copy_still_leaves_out_what_it_is_told_to(tmp_path):
    staging, session = tmp_path / "staging", tmp_path / "session"
    (staging / "trial_a").mkdir(parents=True)
    for name in ("trial_a/result.json", "trial_a/scratch.pkl", "experiment_state-x.json", "searcher-state-x.pkl"):
        (staging / name).write_text(name)
    controller = _Controller()
    snapshot_journal.publish_snapshots_last(controller)

    controller._storage.syncer.sync_up(str(staging), str(session), exclude=["*.pkl"])
    controller._storage.syncer.wait()

    assert sorted(str(path.relative_to(session)) for path in session.rglob("*") if path.is_file()) == [
        "experiment_state-x.json",
        os.path.join("trial_a", "result.json"),
    ]


def test_snapshot_copy_copies_again_only_the_files_that_changed(tmp_path, monkeypatch):
    staging, session = tmp_path / "staging", tmp_path / "session"
    for name in ("trial_a/result.json", "trial_b/result.json", "trial_c/result.json"):
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        (staging / name).write_text('{"epoch": 0}\n')
    (staging / "experiment_state-x.json").write_text("{}")
    settled = os.stat(staging / "trial_a" / "result.json").st_mtime_ns - 60 * 10**9
    for name in ("trial_a/result.json", "trial_b/result.json"):  # written a minute ago; trial_c just now
        os.utime(staging / name, ns=(settled, settled))
    controller = _Controller()
    snapshot_journal.publish_snapshots_last(controller)
    controller._storage.syncer.sync_up(str(staging), str(session))
    controller._storage.syncer.wait()
    published = []
    replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (published.append(os.path.relpath(dst, session)), replace(src, dst)))

    with open(staging / "trial_b" / "result.json", "a") as log:  # Tune's logger appends a result
        log.write('{"epoch": 1}\n')
    same_size = '{"epoch": 9}\n'  # trial_c rewritten within the file system's clock tick: same size, same mtime
    stat = os.stat(staging / "trial_c" / "result.json")
    (staging / "trial_c" / "result.json").write_text(same_size)
    os.utime(staging / "trial_c" / "result.json", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    (session / snapshot_journal.SNAPSHOT_DELTA_FILE).write_text("{}")  # a delta this snapshot supersedes
    controller._storage.syncer.sync_up(str(staging), str(session))
    controller._storage.syncer.wait()

    assert sorted(published[:-1]) == [os.path.join("trial_b", "result.json"), os.path.join("trial_c", "result.json")]
    assert published[-1] == "experiment_state-x.json"  # the index is always copied, last
    assert (session / "trial_b" / "result.json").read_text() == '{"epoch": 0}\n{"epoch": 1}\n'
    assert (session / "trial_c" / "result.json").read_text() == same_size
    assert not (session / snapshot_journal.SNAPSHOT_DELTA_FILE).exists()


def _snapshot_folder(tmp_path, iteration, trials):
    import json

    folder = tmp_path / "tune"
    folder.mkdir()
    index = {
        "trial_data": [[json.dumps({"trial_id": trial_id, "status": status}), "{}"] for trial_id, status in trials.items()],
        "runner_data": {"_iteration": iteration, "_session_str": "s1"},
        "stats": {"start_time": 1.0},
    }
    (folder / "experiment_state-s1.json").write_text(json.dumps(index))
    (folder / "searcher-state-s1.pkl").write_bytes(b"old searcher")
    return folder


def _delta(folder, iteration, trials, index="experiment_state-s1.json"):
    import base64
    import json

    delta = {
        "version": 1,
        "index": index,
        "iteration": iteration,
        "runner_data": {"_iteration": iteration, "_session_str": "s1"},
        "trials": {trial_id: [json.dumps({"trial_id": trial_id, "status": status}), '{"n": 1}'] for trial_id, status in trials.items()},
        "files": {"searcher-state-s1.pkl": base64.b64encode(b"new searcher").decode()},
    }
    (folder / snapshot_journal.SNAPSHOT_DELTA_FILE).write_text(json.dumps(delta))


def test_a_snapshot_delta_newer_than_the_snapshot_is_folded_into_it(tmp_path):
    import json

    folder = _snapshot_folder(tmp_path, 10, {"a": "RUNNING", "b": "RUNNING"})
    _delta(folder, 12, {"b": "TERMINATED", "c": "RUNNING"})  # b ended, c was created since the snapshot

    assert snapshot_journal.apply_snapshot_delta(folder) is True

    index = json.loads((folder / "experiment_state-s1.json").read_text())
    assert [json.loads(state) for state, _ in index["trial_data"]] == [
        {"trial_id": "a", "status": "RUNNING"},
        {"trial_id": "b", "status": "TERMINATED"},
        {"trial_id": "c", "status": "RUNNING"},
    ]
    assert index["runner_data"]["_iteration"] == 12 and index["stats"] == {"start_time": 1.0}
    assert (folder / "searcher-state-s1.pkl").read_bytes() == b"new searcher"
    assert not (folder / snapshot_journal.SNAPSHOT_DELTA_FILE).exists()
    assert snapshot_journal.apply_snapshot_delta(folder) is False  # nothing left to fold


@pytest.mark.parametrize("iteration, index", [(10, "experiment_state-s1.json"), (9, "experiment_state-s1.json"), (12, "other-s0.json")])
def test_a_snapshot_delta_older_than_the_snapshot_or_from_another_run_is_dropped(tmp_path, iteration, index):
    folder = _snapshot_folder(tmp_path, 10, {"a": "TERMINATED"})
    before = (folder / "experiment_state-s1.json").read_bytes()
    _delta(folder, iteration, {"a": "RUNNING"}, index=index)

    assert snapshot_journal.apply_snapshot_delta(folder) is False

    assert (folder / "experiment_state-s1.json").read_bytes() == before
    assert (folder / "searcher-state-s1.pkl").read_bytes() == b"old searcher"
    assert not (folder / snapshot_journal.SNAPSHOT_DELTA_FILE).exists()


def test_the_snapshot_syncer_pickles_without_its_controller():
    import cloudpickle

    controller = _Controller()
    snapshot_journal.publish_snapshots_last(controller)
    # Every trial's storage context holds this syncer and is pickled into the trial's actor: a
    # controller in it would not unpickle there ("'TuneController' object has no attribute '_storage'").
    data = cloudpickle.dumps(controller._storage.syncer)
    assert b"_Controller" not in data and b"_SnapshotJournal" not in data
    assert callable(cloudpickle.loads(data)._sync_up_command)


@pytest.mark.parametrize(
    "delta",
    [
        [1, 2],  # JSON, but no mapping
        {"version": 1, "index": "experiment_state-s1.json", "iteration": 12, "trials": 5, "runner_data": {}, "files": {}},
        {"version": 1, "index": "experiment_state-s1.json", "iteration": "late", "trials": {}, "runner_data": {}, "files": {}},
        {"version": 1, "index": "experiment_state-s1.json", "iteration": 12, "trials": {}, "runner_data": {}, "files": {"x": "%%"}},
    ],
)
def test_a_corrupt_snapshot_delta_is_dropped_and_the_snapshot_kept(tmp_path, delta):
    import json

    folder = _snapshot_folder(tmp_path, 10, {"a": "RUNNING"})
    before = (folder / "experiment_state-s1.json").read_bytes()
    (folder / snapshot_journal.SNAPSHOT_DELTA_FILE).write_text(json.dumps(delta))

    assert snapshot_journal.apply_snapshot_delta(folder) is False

    assert (folder / "experiment_state-s1.json").read_bytes() == before
    assert not (folder / "x").exists() and not (folder / snapshot_journal.SNAPSHOT_DELTA_FILE).exists()
