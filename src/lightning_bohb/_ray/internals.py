"""The few Ray Tune internals LightningTune relies on, in one place.

Each function fails loudly, naming the Ray version, if a Ray upgrade changes what it touches;
`tests/unit/test_ray_internals.py` runs them against the installed Ray.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import threading
import weakref
from typing import Any, Callable, Dict, List, Optional, Set, Tuple, Union


def _ray_version() -> str:
    import ray

    return ray.__version__


def tune_interrupt_event() -> threading.Event:
    """The event `ray.tune.run` checks to end its loop gracefully (what its SIGUSR1 handler sets).

    Setting it ends the run the way Tune's own Ctrl+C does: the loop stops, the experiment is
    snapshotted with unfinished trials still RUNNING, and they resume on restore. Call on the main
    thread while `tune.run` is set up (e.g. from a Tune callback's ``setup``).
    """
    handler = signal.getsignal(signal.SIGUSR1)
    for cell in getattr(handler, "__closure__", None) or ():
        if isinstance(cell.cell_contents, threading.Event):
            return cell.cell_contents
    raise RuntimeError(
        f"Ray Tune {_ray_version()} no longer installs its interrupt handler the way lightning_bohb "
        "expects (an Event in the SIGUSR1 handler's closure). Pin ray[tune]==2.60.0 or upgrade lightning_bohb."
    )


def end_local_autoscaler_monitor() -> bool:
    """Kill the autoscaler monitor of the local Ray this process started; True if there was one.

    It does not exit within the second `ray.shutdown` gives it after SIGTERM, so shutdown waits
    that full second before killing it anyway: most of the time between a saved pause and the
    end of the process. The monitor keeps no state a session needs.
    """
    from ray._private import ray_constants, worker

    node = getattr(worker, "_global_node", None)
    if node is None:
        return False
    infos = node.all_processes.get(ray_constants.PROCESS_TYPE_MONITOR, [])
    for info in infos:
        info.process.kill()
        info.process.wait(timeout=5)
    return bool(infos)


_INTEGRATION_CALLBACKS = ("WandbLoggerCallback", "MLflowLoggerCallback", "CometLoggerCallback", "AimLoggerCallback")


def tag_callbacks_without_imports() -> None:
    """Tune's usage tag of a run's callbacks (`ray.air._internal.usage.tag_callbacks`, telemetry) imports
    Ray's W&B, MLflow, Comet and Aim integrations only to compare class names: 0.8 s of the driver's CPU
    before the first trial starts. This tags the same counts by class name, without those imports."""
    from ray.air._internal import usage

    if getattr(usage.tag_callbacks, "_lightning_bohb", False):
        return

    def tag_callbacks(callbacks) -> bool:
        from ray.tune import Callback
        from ray.tune.logger import LoggerCallback
        from ray.tune.utils.callback import DEFAULT_CALLBACK_CLASSES

        if not callbacks:
            return False
        known = {*_INTEGRATION_CALLBACKS, *(cls.__name__ for cls in DEFAULT_CALLBACK_CLASSES)}
        counts: Dict[str, int] = {}
        for callback in callbacks:
            if isinstance(callback, Callback):
                name = type(callback).__name__
                key = name if name in known else "CustomLoggerCallback" if isinstance(callback, LoggerCallback) else "CustomCallback"
                counts[key] = counts.get(key, 0) + 1
        if counts:
            usage.record_extra_usage_tag(usage.TagKey.AIR_CALLBACKS, json.dumps(counts))
        return bool(counts)

    tag_callbacks._lightning_bohb = True  # type: ignore[attr-defined]
    usage.tag_callbacks = tag_callbacks


_OWN_PREFIX = "_lightning_bohb_"


def capture_controller(scheduler, on_capture=None) -> None:
    """Make ``scheduler`` remember the TuneController that drives it (``on_trial_add`` comes first).

    ``on_capture(controller)`` runs once, when the controller is first seen (before any trial runs).
    The scheduler's class is replaced by a subclass that records the controller: Tune hands a
    scheduler its controller in every call but keeps no reference a callback could read.
    """
    cls = type(scheduler)
    if getattr(cls, _OWN_PREFIX + "captures", False):
        return

    def on_trial_add(self, tune_controller, trial):
        controller = getattr(tune_controller, "_tune_controller", tune_controller)
        if getattr(self, _OWN_PREFIX + "controller", None) is not controller:
            setattr(self, _OWN_PREFIX + "controller", controller)
            if on_capture is not None:
                on_capture(controller)
        return cls.on_trial_add(self, tune_controller, trial)

    scheduler.__class__ = type(cls.__name__, (cls,), {"on_trial_add": on_trial_add, _OWN_PREFIX + "captures": True})


_SNAPSHOT_INDEX_PREFIX = "experiment_state-"


def publish_snapshots_last(controller, before_write: Callable[[], None] = lambda: None) -> None:
    """Have Tune copy each experiment snapshot into the session with its index written last, and
    only the files that changed since its previous copy; ``before_write()`` runs first and raises to
    write nothing (a driver that lost its session: Tune's loop writes a snapshot on a timer, also in
    the step a driver suspended past its lease resumes in, before that step's ownership check).

    Tune copies its staging directory into the session file by file, ``experiment_state-*.json``
    (which checkpoint each trial resumes from) before the trials' ``result.json``. A ``kill -9``
    between the two resumed a trial from its newest checkpoint with that epoch missing from its
    history. Copied in this order instead (trial directories, then the searcher's and the
    callbacks' state, then the experiment state), a crash mid-copy leaves the previous snapshot
    in force: the trials resume from their previous checkpoints and log those epochs again.

    Tune copies the whole staging directory, every trial's files, at every snapshot: with a
    snapshot per trial checkpoint, a session's cost per result grew with its number of trials.
    A trial file whose size and modification time are those it had when this controller last
    copied it is the same file (Tune's loggers append to them) and is not copied again; one modified
    too recently for that to tell (racy) is read again and copied only if its content changed.
    """
    syncer = controller._storage.syncer
    journal = _journals.get(controller) or _SnapshotJournal(controller)
    _journals[controller] = journal
    journal.before_write = before_write
    key = journal.key  # not the journal: every trial's storage context (pickled to its actor) holds this syncer

    def sync_up_command(local_path, uri, exclude=None):
        options = {"local_path": local_path, "fs": syncer.storage_filesystem, "fs_path": uri, "exclude": exclude, "journal_key": key}
        return _upload_snapshot_last, options

    syncer._sync_up_command = sync_up_command


# A file modified this recently may change again within the same tick of the file system's clock
# without changing size (git's "racily clean" index entries): its size and modification time do not
# tell whether it changed since it was copied, its content does.
_RACY_NS = 1_000_000_000
# A trial file up to this size is read once, written into the session from what was read, and remembered
# by a digest of that content while it is racy; a bigger one is copied by Ray, and again while racy.
_DIGEST_MAX_BYTES = 8 << 20


def _upload_snapshot_last(local_path: str, fs, fs_path: str, exclude=None, journal_key: Optional[int] = None) -> None:
    import posixpath

    journal = _journals_by_key.get(journal_key) if journal_key is not None else None
    if journal is not None:
        journal.published = False
    before_write = journal.before_write if journal is not None else None
    _upload_changed(local_path, fs, fs_path, exclude, {} if journal is None else journal.copied, before_write=before_write)
    if journal is not None:
        journal.published = True  # what the copy raised reached Tune's syncer instead
        try:  # older than this snapshot: no delta is written while a copy is under way
            fs.delete_file(posixpath.join(fs_path, SNAPSHOT_DELTA_FILE))
        except OSError:  # FileNotFoundError: there was none
            pass


_Copied = Dict[str, Tuple[Any, ...]]  # (size, mtime ns) of a settled file; (size, mtime ns, digest) of a racy one


def _upload_changed(
    local_path: str,
    fs,
    fs_path: str,
    exclude=None,
    copied: Optional[_Copied] = None,
    prefix: str = "",
    before_write: Optional[Callable[[], None]] = None,
) -> bool:
    """Copy the files under ``local_path`` that changed since they were last copied (``copied``, keyed by
    ``prefix`` + their path below ``local_path``): subfolders first, top-level files after them, the
    experiment state index last. True if a file there is racy (modified within `_RACY_NS`): only its
    content tells whether it changes again before it settles.

    A file whose size and modification time are those it had when copied, and that was modified long
    enough before that copy, is the same file. A racy one is read again and copied only if its content
    differs from what was copied (a digest of it); a small file is written from the bytes read, so the
    session holds exactly the content the digest is of. ``before_write()`` runs before each file is written
    and raises to write no more (a copy that was under way when its driver was suspended past its lease).
    """
    import fnmatch
    import hashlib
    import os
    import posixpath
    import time

    from ray.train._internal.storage import _create_directory, _upload_to_fs_path

    patterns = list(exclude or [])
    copied = {} if copied is None else copied
    settled_before = time.time_ns() - _RACY_NS
    nested: List[Tuple[str, str, Any]] = []
    top: List[Tuple[str, str, Any]] = []
    folders = [("", local_path)]
    while folders:
        relative_folder, folder = folders.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                relative = posixpath.join(relative_folder, entry.name) if relative_folder else entry.name
                if entry.is_dir():
                    folders.append((relative, entry.path))
                elif entry.is_file() and not any(fnmatch.fnmatch(relative, pattern) for pattern in patterns):
                    (nested if relative_folder else top).append((relative, entry.path, entry.stat()))
    top.sort(key=lambda item: item[0].startswith(_SNAPSHOT_INDEX_PREFIX))
    made: Set[str] = set()  # destination folders made by this call
    any_racy = False
    for relative, path, stat in nested + top:
        name = prefix + relative
        key = (stat.st_size, stat.st_mtime_ns)
        last = copied.get(name)
        if last == key:
            continue
        racy = stat.st_mtime_ns >= settled_before
        any_racy = any_racy or racy
        target = posixpath.join(fs_path, relative)
        if before_write is not None:
            before_write()
        if stat.st_size > _DIGEST_MAX_BYTES:
            _upload_to_fs_path(path, fs, target)
            if racy:
                copied.pop(name, None)
            else:
                copied[name] = key
            continue
        with open(path, "rb") as handle:
            data = handle.read()
        digest = hashlib.blake2b(data, digest_size=16).digest()
        index = not prefix and relative.startswith(_SNAPSHOT_INDEX_PREFIX)  # rewritten by Tune: published again, last
        if index or last is None or len(last) != 3 or last[2] != digest:  # else: racy when copied, the same content since
            parent = posixpath.dirname(target)
            if parent and parent not in made:
                _create_directory(fs, parent)  # what Ray's copy does first
                made.add(parent)
                if before_write is not None:  # again: a store out of reach spends its retries there (seconds), past a loss
                    before_write()
            with fs.open_output_stream(target, compression=None) as out:
                out.write(data)
        copied[name] = (*key, digest) if racy else key
    return any_racy


def snapshot_experiment(scheduler) -> None:
    """Put what Tune knows of the experiment into the session now, and wait until it is there.

    Called when a trial has registered a checkpoint, before Tune lets that trial train on. Tune
    throttles snapshots (10 s and more) and copies them into storage in the background; after a
    ``kill -9`` the trials would then restart from older checkpoints and train the epochs since again.

    A full snapshot (every trial's state: about 13 kB a trial) is written at most every few seconds
    (`_SnapshotJournal`); in between, a delta file holds the trials changed since the last full one
    and the searcher's and callbacks' state, and `apply_snapshot_delta` folds it into the snapshot
    before a resume reads it. Each write costs what changed, not the size of the session.
    """
    controller = getattr(scheduler, _OWN_PREFIX + "controller", None)
    if controller is None:
        return
    journal = _journals.get(controller)
    if journal is None:
        controller.checkpoint(force=True, wait=True)
    else:
        journal.snapshot()


SNAPSHOT_DELTA_FILE = "lightning_bohb-snapshot-delta.json"  # beside Tune's experiment_state-*.json
_DELTA_VERSION = 1
_DELTA_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,200}")
_MAX_SNAPSHOT_BYTES = 512 * 2**20  # a delta or a snapshot larger than this is not one the session wrote
_FULL_SNAPSHOT_EVERY_S = 5.0  # and at least 19 times what the last one took, as Tune spaces its own
_journals: "weakref.WeakKeyDictionary[Any, _SnapshotJournal]" = weakref.WeakKeyDictionary()
_journals_by_key: "weakref.WeakValueDictionary[int, _SnapshotJournal]" = weakref.WeakValueDictionary()
_journal_keys = itertools.count()


class _TrackingSet(set):
    """Tune's set of trials to re-serialize at its next snapshot, also recording them in each of ``sinks``
    (Tune empties its own set at every snapshot, also the ones it takes by itself)."""

    def __init__(self, items: Any, *sinks: Set[Any]) -> None:
        super().__init__(items)
        self.sinks = sinks
        for sink in sinks:
            sink.update(items)

    def add(self, item: Any) -> None:
        for sink in self.sinks:
            sink.add(item)
        super().add(item)


class _SnapshotJournal:
    """One TuneController's snapshots into the session: full ones now and then, deltas in between.

    A delta holds every trial changed since the last full snapshot, but copies the files only of the
    trials Tune marked since the previous delta (its loggers write when it marks a trial: a start,
    a result, a checkpoint, a stop) and of those with a file still racy then; a file a logger writes
    later on its own (tensorboardX's writer thread) reaches the session with the trial's next mark or
    the next full snapshot, which copies every changed file.
    """

    def __init__(self, controller: Any) -> None:
        self.controller = controller
        self.key = next(_journal_keys)
        _journals_by_key[self.key] = self
        self.copied: _Copied = {}  # trial files as last copied into the session
        self.state_folder: Optional[str] = None  # where each delta has the searcher and the callbacks save their state
        self.trial_paths: Dict[str, Tuple[Any, str, Tuple[str, str, str]]] = {}  # by trial id: its storage, its folder's name, paths
        self.changed: Set[Any] = set()  # trials whose state changed since the last full snapshot published
        # Trials whose files a delta looks at: those Tune marked since the last delta looked (a result, a
        # checkpoint, a start or a stop: when its loggers write), and those with a file still racy then.
        self.to_scan: Set[Any] = set()
        self.unsettled: Set[Any] = set()
        self.published = False
        self.before_write: Callable[[], None] = lambda: None  # raises to write nothing (`publish_snapshots_last`)
        self.last_full = float("-inf")
        self.full_took = 0.0
        controller._trials_to_cache = _TrackingSet(controller._trials_to_cache, self.changed, self.to_scan)

    def snapshot(self) -> None:
        import time

        self.before_write()
        since = time.monotonic() - self.last_full
        if since >= max(_FULL_SNAPSHOT_EVERY_S, 19 * self.full_took):
            started = time.monotonic()
            changed = set(self.changed)
            self.published = False
            self.controller.checkpoint(force=True, wait=True)  # Tune logs a copy that failed; it is retried
            if self.published:
                self.changed -= changed
                self.to_scan -= changed  # their files as they are now are in the session
                self.last_full = time.monotonic()
                self.full_took = self.last_full - started
            return
        try:
            self.write_delta()
        except OSError as err:  # as Tune treats a snapshot it could not copy: logged, and the next one is full
            from lightning_bohb.log import logger

            logger.warning("Could not save the experiment's snapshot delta into the session: %s", err)
            self.last_full = float("-inf")

    def _trial_paths(self, trial: Any) -> Tuple[str, str, str]:
        """``(staging folder, prefix in copied, folder in the session)`` of ``trial`` (Ray builds each path anew)."""
        storage = trial.storage
        cached = self.trial_paths.get(trial.trial_id)
        if cached is None or cached[0] is not storage or cached[1] != storage.trial_dir_name:
            paths = (storage.trial_driver_staging_path, storage.trial_dir_name + "/", storage.trial_fs_path)
            cached = self.trial_paths[trial.trial_id] = (storage, storage.trial_dir_name, paths)
        return cached[2]

    def _state_folder(self) -> str:
        """An empty private folder for the searcher's and the callbacks' state: made once per journal
        (a temporary folder made and removed per delta cost more than the state written into it),
        beside Tune's staging folder (in the Ray temporary folder the session removes), else in /tmp."""
        import shutil
        import tempfile

        folder = self.state_folder
        if folder is None or not os.path.isdir(folder):
            staging = getattr(self.controller._storage, "experiment_driver_staging_path", None)
            try:  # not in the staging folder itself: Tune copies all of that into the session
                folder = tempfile.mkdtemp(prefix="lightning_bohb-delta-", dir=os.path.dirname(staging) if staging else None)
            except OSError:
                folder = tempfile.mkdtemp(prefix="lightning_bohb-delta-")
            self.state_folder = folder
            weakref.finalize(self, shutil.rmtree, folder, True)
        for entry in os.scandir(folder):  # what the previous delta read, or left when it failed
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        return folder

    def write_delta(self) -> None:
        import base64
        import json
        import os
        import posixpath

        from ray.tune.utils.serialization import TuneFunctionEncoder

        controller = self.controller
        storage = controller._storage
        try:
            storage.syncer.wait()  # never beside a background copy of Tune's own snapshot
        except Exception:  # that copy failed: Tune has logged it; this delta does not depend on it
            pass
        trials = sorted(self.changed, key=lambda trial: trial.trial_id)
        scan = sorted(self.to_scan | self.unsettled, key=lambda trial: trial.trial_id)
        for trial in scan:  # their result logs first, as for a full snapshot
            folder, prefix, fs_path = self._trial_paths(trial)
            racy = os.path.isdir(folder) and _upload_changed(
                folder, storage.storage_filesystem, fs_path, None, self.copied, prefix, self.before_write
            )
            if racy:
                self.unsettled.add(trial)
            else:
                self.unsettled.discard(trial)
        self.to_scan.difference_update(scan)
        files = {}
        folder = self._state_folder()
        controller._search_alg.save_to_dir(folder, session_str=controller._session_str)
        controller._callbacks.save_to_dir(folder, session_str=controller._session_str)
        for name in sorted(os.listdir(folder)):
            with open(os.path.join(folder, name), "rb") as handle:
                files[name] = base64.b64encode(handle.read()).decode("ascii")
        delta = {
            "version": _DELTA_VERSION,
            "index": controller.experiment_state_file_name,
            "iteration": controller._iteration,
            "runner_data": controller.__getstate__(),
            "trials": {trial.trial_id: list(trial.get_json_state()) for trial in trials},
            "files": files,
        }
        data = json.dumps(delta, cls=TuneFunctionEncoder).encode()
        self.before_write()
        with storage.storage_filesystem.open_output_stream(posixpath.join(storage.experiment_fs_path, SNAPSHOT_DELTA_FILE)) as out:
            out.write(data)


def apply_snapshot_delta(experiment_dir: Union[str, "os.PathLike[str]"]) -> bool:
    """Fold the delta `snapshot_experiment` left in a local experiment folder into its snapshot; True if one was.

    Call before Tune resumes the experiment. A delta older than the snapshot (written before the
    snapshot that followed it) or from an earlier run is removed unused. Each step is atomic and the
    delta goes last, so a crash here leaves a folder this function finishes next time.
    """
    from pathlib import Path

    from lightning_bohb.log import logger
    from lightning_bohb.utils.files import atomic_write, read_json

    folder = Path(experiment_dir)
    delta_path = folder / SNAPSHOT_DELTA_FILE
    if not os.path.lexists(delta_path):
        return False
    try:  # everything is read and checked before anything is written: a corrupt delta changes nothing
        # Read as data: a link, a FIFO, a delta over the size limit or nested too deeply is refused.
        index, files = _merged_snapshot(folder, read_json(delta_path, _MAX_SNAPSHOT_BYTES))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        logger.warning("Ignoring the unreadable snapshot delta %s: %s", delta_path, err)
        index, files = None, {}
    for name, content in files.items():
        atomic_write(folder / name, content)
    if index is not None:
        atomic_write(folder / index[0], json.dumps(index[1]))
    applied = index is not None
    delta_path.unlink()
    return applied


def _merged_snapshot(folder, delta):
    """``((index name, merged index), {file name: bytes})`` of a usable delta, else ``(None, {})``."""
    import base64
    import binascii

    from lightning_bohb.utils.files import parse_json, read_json

    indexes = sorted(path.name for path in folder.glob(_SNAPSHOT_INDEX_PREFIX + "*.json"))
    if not (indexes and delta.get("version") == _DELTA_VERSION and delta.get("index") == indexes[-1]):
        return None, {}
    index = read_json(folder / indexes[-1], _MAX_SNAPSHOT_BYTES)
    iteration = delta["iteration"]
    if isinstance(iteration, bool) or not isinstance(iteration, int) or index["runner_data"].get("_iteration", -1) >= iteration:
        return None, {}
    position = {parse_json(state)["trial_id"]: number for number, (state, _) in enumerate(index["trial_data"])}
    for trial_id, entry in dict(delta["trials"]).items():
        if trial_id in position:
            index["trial_data"][position[trial_id]] = entry
        else:
            index["trial_data"].append(entry)
    index["runner_data"] = dict(delta["runner_data"])
    try:
        files = {name: base64.b64decode(content, validate=True) for name, content in dict(delta["files"]).items()}
    except binascii.Error as err:
        raise ValueError(f"a file in it is not base64: {err}") from None
    for name in files:  # the searcher's and callbacks' state files, beside the snapshot: nothing else
        own = name == SNAPSHOT_DELTA_FILE or name.startswith(_SNAPSHOT_INDEX_PREFIX)
        if own or not _DELTA_FILE_NAME.fullmatch(name):
            raise ValueError(f"it names the file {name!r}, not a state file of the experiment folder")
    return (indexes[-1], index), files


def dump_scheduler(scheduler) -> bytes:
    """Pickle a trial scheduler's state, with each `Trial` it holds replaced by its id."""
    import io

    import cloudpickle
    from ray.tune.execution.tune_controller import TrialRunnerWrapper, TuneController
    from ray.tune.experiment import Trial

    class _TrialIdPickler(cloudpickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Trial):
                return ("trial", obj.trial_id)
            if obj is scheduler:  # bound methods inside the state point back at it
                return ("scheduler", None)
            if isinstance(obj, (TuneController, TrialRunnerWrapper)):
                return ("controller", None)
            return None

    state = {k: v for k, v in scheduler.__dict__.items() if not k.startswith(_OWN_PREFIX)}
    buffer = io.BytesIO()
    _TrialIdPickler(buffer).dump(state)
    return buffer.getvalue()


def load_scheduler(scheduler, blob: bytes, trials) -> None:
    """Restore state from `dump_scheduler` into ``scheduler``, mapping trial ids to the live trials."""
    import io
    import pickle

    by_id = {trial.trial_id: trial for trial in trials}

    class _TrialIdUnpickler(pickle.Unpickler):
        def persistent_load(self, pid):
            kind, trial_id = pid
            if kind == "scheduler":
                return scheduler
            if kind == "controller":
                return getattr(scheduler, _OWN_PREFIX + "controller", None)
            if kind != "trial" or trial_id not in by_id:
                raise pickle.UnpicklingError(f"scheduler state names trial {trial_id!r}, which this run does not have")
            return by_id[trial_id]

    scheduler.__dict__.update(_TrialIdUnpickler(io.BytesIO(blob)).load())


def end_trial_actors(trials) -> None:
    """Kill the Ray actor of every trial that has one, at once.

    For when the run is over and its snapshot is decided: a trial held at a pause never returns
    from its step, and Tune's cleanup waits 5 s for each such actor before killing it anyway.
    """
    import ray

    for trial in trials:
        actor = trial.temporary_state.ray_actor
        if actor is not None:
            ray.kill(actor, no_restart=True)  # an intended exit: Ray reports no crash


def set_trial_status(tune_controller, trial, status: str) -> None:
    """Change a trial's status through the controller (whitelisted for schedulers, but private)."""
    tune_controller._set_trial_status(trial, status)


def mark_trial_for_snapshot(tune_controller, trial) -> None:
    """Make Tune's next experiment snapshot re-serialize ``trial``.

    Ray 2.60 re-caches a trial's saved state only when it stops a trial that has a live actor, so a
    PAUSED trial that a scheduler stops is saved as still PAUSED and comes back on resume
    (the ``KeyError`` in ``TuneBOHB.to_wrapper`` of ray#39900's restores).
    """
    controller = getattr(tune_controller, "_tune_controller", tune_controller)
    controller._mark_trial_to_checkpoint(trial)


def hold_trials(scheduler, hooks) -> None:
    """Let ``hooks`` (the coordinator) amend ``scheduler``'s decisions, for per-trial pause and stop.

    ``hooks.decide(trial, decision)`` may turn the decision on a result into PAUSE or STOP: Tune then
    saves a paused trial's checkpoint and frees its slot, as when HyperBand pauses one. Before each
    choice of a trial to run, ``hooks.before_choose(controller)`` applies holds and returns the ids of
    held trials, which the scheduler does not see among the controller's trials (FIFO and ASHA take a
    PAUSED trial from there to run it again), or None: no trial is to start now (a pause is pending).
    Like `capture_controller`, this replaces the class.
    """
    cls = type(scheduler)
    if getattr(cls, _OWN_PREFIX + "holds", False):
        return

    def on_trial_result(self, tune_controller, trial, result):
        return hooks.decide(trial, cls.on_trial_result(self, tune_controller, trial, result))

    def choose_trial_to_run(self, tune_controller, *args, **kwargs):
        controller = getattr(tune_controller, "_tune_controller", tune_controller)
        held = hooks.before_choose(controller)
        if held is None:
            return None
        view = _WithoutHeld(tune_controller, set(held)) if held else tune_controller
        return cls.choose_trial_to_run(self, view, *args, **kwargs)

    scheduler.__class__ = type(
        cls.__name__, (cls,), {"on_trial_result": on_trial_result, "choose_trial_to_run": choose_trial_to_run, _OWN_PREFIX + "holds": True}
    )


class _WithoutHeld:
    """The controller as a scheduler sees it, less the trials held on request."""

    def __init__(self, inner, held) -> None:
        self._inner, self._held = inner, held

    def get_trials(self):
        return [trial for trial in self._inner.get_trials() if trial.trial_id not in self._held]

    def __getattr__(self, name):
        return getattr(self._inner, name)


def set_searcher_limit(search_alg, limit: int) -> None:
    """Set how many unfinished trials ``search_alg`` allows at once (its ``max_concurrent``).

    A held trial is unfinished to the searcher, so it would keep its slot; the coordinator raises the
    limit by the number of held trials. `BasicVariantGenerator` keeps the limit in ``max_concurrent``,
    a `ConcurrencyLimiter` has ``set_max_concurrency``; other searchers are left as they are.
    """
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter

    if isinstance(search_alg, ConcurrencyLimiter):
        if search_alg.max_concurrent != limit:
            search_alg.set_max_concurrency(limit)
    elif isinstance(search_alg, BasicVariantGenerator) and search_alg.max_concurrent > 0:
        search_alg.max_concurrent = limit


def stop_trial(tune_controller, trial) -> None:
    """End a PENDING or PAUSED trial now, as Tune ends one a scheduler stops (scheduler, searcher and
    callbacks are told; it is TERMINATED)."""
    controller = getattr(tune_controller, "_tune_controller", tune_controller)
    controller.stop_trial(trial)


def reshape_on_restore(search_alg, num_samples: int, max_concurrent: int):
    """The search algorithm to give ``tune.run`` so that a resumed search gets a new budget and limit.

    Ray restores a searcher with the ``num_samples`` and ``max_concurrent`` it was saved with (its
    state pickle overwrites what the new run passed). Wrapped here (a `Searcher` in the
    `SearchGenerator` Tune would put around it anyway), it is restored as saved, then given
    ``num_samples`` (trials in all; never fewer than it created) and ``max_concurrent`` (0:
    unlimited), with its random state and everything it learned kept: the trials it creates next
    are the ones it would have created had the budget been larger from the start.
    Like `capture_controller`, this replaces the class.
    """
    from ray.tune.search import BasicVariantGenerator, Searcher, SearchGenerator

    if isinstance(search_alg, Searcher):
        search_alg = SearchGenerator(search_alg)
    if not isinstance(search_alg, (SearchGenerator, BasicVariantGenerator)):
        raise TypeError(f"cannot reshape a {type(search_alg).__name__} on restore")
    cls = type(search_alg)

    def restore_from_dir(self, dirpath):
        cls.restore_from_dir(self, dirpath)
        set_search_budget(self, num_samples, max_concurrent)

    search_alg.__class__ = type(cls.__name__, (cls,), {"restore_from_dir": restore_from_dir, _OWN_PREFIX + "reshapes": True})
    return search_alg


def set_search_budget(search_alg, num_samples: int, max_concurrent: int) -> None:
    """Give a restored search algorithm a new trial budget (at least what it created) and concurrency limit."""
    import itertools
    import sys

    from ray.tune.search import ConcurrencyLimiter, SearchGenerator

    if isinstance(search_alg, SearchGenerator):
        target = max(int(num_samples), int(search_alg._counter))
        if target > search_alg._total_samples:
            search_alg._finished = False  # a searcher that said FINISHED says it again
        search_alg._total_samples = target
        searcher: Any = search_alg.searcher
        while searcher is not None:
            if isinstance(searcher, ConcurrencyLimiter):
                searcher.max_concurrent = max_concurrent or sys.maxsize
            elif hasattr(searcher, "_max_concurrent") and callable(getattr(searcher, "set_max_concurrency", None)):
                searcher.set_max_concurrency(max_concurrent)  # TuneBOHB: 0 is unlimited
            searcher = getattr(searcher, "searcher", None)
        return
    # BasicVariantGenerator: one _TrialIterator per experiment (a session has one), each yielding
    # `num_samples` samples of `variants` trials (grid searches) from its own random state.
    iterators = search_alg._iterators
    if len(iterators) != 1:
        raise RuntimeError(f"expected one trial iterator in the restored BasicVariantGenerator, found {len(iterators)}")
    (iterator,) = iterators
    variants = max(1, search_alg._total_samples // max(1, iterator.num_samples))
    used = iterator.num_samples - iterator.num_samples_left
    samples = max(int(num_samples), used)
    if samples > iterator.num_samples:
        search_alg._finished = False
    iterator.num_samples_left = samples - used
    iterator.num_samples = samples
    search_alg._total_samples = samples * variants
    search_alg.max_concurrent = max_concurrent
    search_alg._trial_iter = None  # restarted from the iterator, where it stopped
    search_alg._trial_generator = itertools.chain([], iterator)


def set_trial_resources(trial, resources) -> bool:
    """Give a trial that is not running new resources (``{"cpu": c, "gpu": g}`` or a `PlacementGroupFactory`,
    one bundle per DDP rank); True if they changed."""
    from ray.tune.execution.placement_groups import PlacementGroupFactory, resource_dict_to_pg_factory

    wanted = resources if isinstance(resources, PlacementGroupFactory) else resource_dict_to_pg_factory(dict(resources))
    if trial.placement_group_factory == wanted:
        return False
    trial.update_resources(wanted)  # also makes the next snapshot save it
    return True


def register_step_checkpoints(controller, marker: str) -> None:
    """Make ``controller`` register the checkpoint of a report with the metric ``marker`` (a checkpoint
    taken at a training step) and do nothing else with it.

    Such a report is no epoch result: the scheduler (ASHA's and HyperBand's rungs), the searcher and
    the callbacks (Tune's result logs, the session's progress) never see it, and the trial's last
    result stays its last epoch's. Tune still saves its checkpoint as the trial's latest, the one a
    resumed session continues from, exactly as it does for an epoch result (`_process_trial_result`'s
    tail). The trial reports its own ``training_iteration`` (its epoch reports so far), which the
    checkpoint keeps for the resumed trial.
    """
    from ray.tune.schedulers import TrialScheduler

    cls = type(controller)
    process = getattr(cls, "_process_trial_result", None)
    needed = ("_checkpoint_trial_if_needed", "_queue_decision", "_cached_trial_decisions")
    if process is None or not all(hasattr(controller, name) for name in needed):
        raise RuntimeError(
            f"Ray Tune {_ray_version()} no longer processes results the way lightning_bohb expects "
            "(TuneController._process_trial_result). Pin ray[tune]==2.60.0 or upgrade lightning_bohb."
        )
    markers = getattr(process, _OWN_PREFIX + "markers", None)
    if markers is not None:
        markers.add(marker)
        return
    markers = {marker}

    def _process_trial_result(self, trial, result):
        if not any(result.get(name) for name in markers):
            return process(self, trial, result)
        self._checkpoint_trial_if_needed(trial, force=True)
        if trial.is_saving:  # the decision runs once the save is registered
            self._cached_trial_decisions.setdefault(trial.trial_id, TrialScheduler.CONTINUE)
            return None
        self._queue_decision(trial, TrialScheduler.CONTINUE)
        return TrialScheduler.CONTINUE

    # On the class, once per process: the experiment snapshot saves the controller's attributes (a
    # method among them would drag the controller in), and a subclass would be pickled by value
    # wherever the controller is referenced. Results without the marker take Tune's own path.
    setattr(_process_trial_result, _OWN_PREFIX + "markers", markers)
    cls._process_trial_result = _process_trial_result
