"""The session's experiment snapshots: Tune's, copied index last, and a journal of deltas in between.

`publish_snapshots_last` has Tune copy each experiment snapshot into the session with its index
written last and only the files that changed; `snapshot_experiment` puts the experiment into the
session each time a trial checkpoints, as a full snapshot now and then and a delta
(`SNAPSHOT_DELTA_FILE`) in between; `apply_snapshot_delta` folds that delta into the snapshot before
a resume reads it. `tests/unit/test_ray_internals.py` runs them against the installed Ray.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import weakref
from typing import Any, Callable, Dict, Optional, Set, Tuple, Union

from lightning_bohb._ray.incremental_copy import SNAPSHOT_INDEX_PREFIX, Copied, copy_changed
from lightning_bohb._ray.scheduler_hooks import captured_controller


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


def _upload_snapshot_last(local_path: str, fs, fs_path: str, exclude=None, journal_key: Optional[int] = None) -> None:
    """Tune's copy of a snapshot into the session, as `publish_snapshots_last` has it done. Tune pickles this
    function by its module and name into every session's searcher state: moving or renaming it breaks the
    resume of sessions saved before (`lightning_bohb._ray.internals` keeps the name of those before the move)."""
    import posixpath

    journal = _journals_by_key.get(journal_key) if journal_key is not None else None
    if journal is not None:
        journal.published = False
    before_write = journal.before_write if journal is not None else None
    copy_changed(local_path, fs, fs_path, exclude, {} if journal is None else journal.copied, before_write=before_write)
    if journal is not None:
        journal.published = True  # what the copy raised reached Tune's syncer instead
        try:  # older than this snapshot: no delta is written while a copy is under way
            fs.delete_file(posixpath.join(fs_path, SNAPSHOT_DELTA_FILE))
        except OSError:  # FileNotFoundError: there was none
            pass


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
    controller = captured_controller(scheduler)
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
        self.copied: Copied = {}  # trial files as last copied into the session
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
            racy = os.path.isdir(folder) and copy_changed(
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

    indexes = sorted(path.name for path in folder.glob(SNAPSHOT_INDEX_PREFIX + "*.json"))
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
        own = name == SNAPSHOT_DELTA_FILE or name.startswith(SNAPSHOT_INDEX_PREFIX)
        if own or not _DELTA_FILE_NAME.fullmatch(name):
            raise ValueError(f"it names the file {name!r}, not a state file of the experiment folder")
    return (indexes[-1], index), files
