"""`SessionStore`: a session whose folder is a URI in object storage (``s3://bucket/prefix/...``,
``gs://...``, any filesystem ``pyarrow.fs.FileSystem.from_uri`` opens).

Ray Tune writes the experiment (trial checkpoints, results, snapshots) straight to the store: the
session's URI is its ``storage_path``. The session's own files (state, summary, best config, control
record) are written as for a local session, into a private working copy on the driver (a temporary
folder, removed when the run ends), and each one is put into the store right after it is written,
in the order written: the state before the summary that describes it. A put replaces an object
whole, so a ``kill -9`` leaves the previous file or the new one in the store. A resume, on any
machine, starts from a new working copy filled from the store (`SessionStore.pull_session`):
nothing a resume needs stays on the driver's disk. The owner record is a lease object in the store
(`lightning_bohb.session.store_lease`).

Credentials and endpoint come from the standard AWS environment (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``), read by pyarrow as by
boto3, or from the URI's query (``?endpoint_override=...``), so the printed resume command works
unchanged on any machine that has them.

Trust: objects have no owner and mode to check (`lightning_bohb.session.trust` checks a local
folder's); whoever can write under the session's prefix can plant a session state, as whoever can
write the user's code can change what runs. A session in a store is trusted by its credentials:
give write access to that prefix only to those whose code you would run (docs/cluster.md).

Written by hand: pyarrow and fsspec copy files and folders, but none keeps a local folder and a
store prefix in step file by file, in a chosen order.
"""

from __future__ import annotations

import posixpath
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from lightning_bohb.core.optimizer import BEST_CONFIG_FILE, RAY_EXPERIMENT_FOLDER
from lightning_bohb.exceptions import SessionError
from lightning_bohb.pause.remote import CONTROL_FILE
from lightning_bohb.session.lock import LOCK_FILE
from lightning_bohb.session.state import LEGACY_STATE_FILE, MAX_SUMMARY_BYTES, SESSION_PREFIX, STATE_FILE, STATE_FILES, SUMMARY_FILE
from lightning_bohb.utils.files import atomic_write, make_private_dir
from lightning_bohb.utils.uris import is_uri, join_uri, split_query, uri_name, uri_parent

SESSION_FILES = (STATE_FILE, LEGACY_STATE_FILE, SUMMARY_FILE, BEST_CONFIG_FILE, CONTROL_FILE)
"""The session's own files a working copy is filled with (those present)."""
MAX_OBJECT_BYTES = 1 << 28
"""No session or experiment-level file is larger; a larger object is not one of them."""


def open_uri(uri: str):
    """``(pyarrow filesystem, path in it)`` for ``uri``, or a `SessionError` that says what is wrong."""
    import pyarrow.fs

    try:
        return pyarrow.fs.FileSystem.from_uri(uri)
    except Exception as err:  # pyarrow raises ArrowInvalid, OSError, ... with its own text
        raise SessionError(
            f"Cannot open the storage URI {uri}: {err}. Use s3://bucket/prefix (credentials and endpoint from "
            "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, AWS_ENDPOINT_URL), gs://bucket/prefix, or a local folder."
        ) from None


class SessionStore:
    """A session's files in object storage, with a local working copy for the driver.

    Args:
        uri: The session's URI, ``<experiment_dir>/<experiment_name>/session_<id>``.
    """

    def __init__(self, uri: str) -> None:
        head, query = split_query(uri)
        self.uri = head.rstrip("/") + query
        self.fs, root = open_uri(self.uri)
        self.root = root.rstrip("/")
        self._local: Optional[Path] = None
        self._temp: Optional[str] = None

    @property
    def name(self) -> str:
        return uri_name(self.uri)

    def path(self, *parts: str) -> str:
        """The path of a file of the session in the store's filesystem."""
        return posixpath.join(self.root, *parts)

    @property
    def local(self) -> Path:
        """The driver's working copy (a new private temporary folder named like the session)."""
        if self._local is None:
            self._temp = tempfile.mkdtemp(prefix="lbohb_store_")
            self._local = make_private_dir(Path(self._temp) / (self.name or "session"))
        return self._local

    def close(self) -> None:
        """Remove the working copy (everything in it is in the store)."""
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)
        self._temp = self._local = None

    # -- single files ----------------------------------------------------------------------------
    def exists(self, name: str) -> bool:
        import pyarrow.fs

        return self._info(name).type == pyarrow.fs.FileType.File

    def read(self, name: str, limit: int = MAX_OBJECT_BYTES) -> Optional[bytes]:
        """The content of file ``name`` of the session, or None when there is none."""
        import pyarrow.fs

        info = self._info(name)
        if info.type != pyarrow.fs.FileType.File:
            return None
        if info.size is not None and info.size > limit:
            raise SessionError(f"{join_uri(self.uri, name)} is {info.size} bytes, more than any session file ({limit}); it is not one.")
        try:
            with self.fs.open_input_stream(self.path(name)) as stream:
                data = stream.read(limit + 1)
        except OSError as err:
            if self._info(name).type != pyarrow.fs.FileType.File:
                return None  # deleted meanwhile (the driver removes its control record when it stops)
            raise SessionError(f"Cannot read {join_uri(self.uri, name)}: {err}.") from None
        if len(data) > limit:
            raise SessionError(f"{join_uri(self.uri, name)} is larger than any session file ({limit} bytes); it is not one.")
        return bytes(data)

    def write(self, name: str, data: bytes) -> None:
        """Put ``data`` as file ``name`` of the session (one object, replaced whole)."""
        try:
            with self.fs.open_output_stream(self.path(name)) as out:
                out.write(data)
        except OSError as err:
            raise OSError(f"Cannot write {join_uri(self.uri, name)}: {err}") from err

    def delete(self, name: str) -> None:
        try:
            self.fs.delete_file(self.path(name))
        except FileNotFoundError:
            pass

    def push(self, *names: str) -> None:
        """Put the working copy's files ``names`` into the store, in this order (a missing one is deleted there)."""
        for name in names:
            local = self.local / name
            if local.is_file():
                self.write(name, local.read_bytes())
            else:
                self.delete(name)

    def _info(self, name: str):
        try:
            return self.fs.get_file_info(self.path(name))
        except OSError as err:
            raise SessionError(f"Cannot reach {join_uri(self.uri, name)}: {err}.") from None

    # -- the whole session -----------------------------------------------------------------------
    def is_session(self) -> bool:
        return any(self.exists(name) for name in STATE_FILES)

    def pull(self, names: Iterable[str] = SESSION_FILES) -> Path:
        """The working copy with the store's files ``names`` (those present) written into it."""
        for name in names:
            data = self.read(name)
            if data is not None:
                atomic_write(self.local / name, data)
        return self.local

    def pull_session(self) -> Tuple[Path, Dict[str, bytes]]:
        """The working copy filled for a resume: the session's own files and Tune's experiment-level
        files (its snapshots, searcher and callback states; not the trials' folders, which Tune
        reads from the store itself). Also returns those experiment files' contents, for `push_experiment`."""
        import pyarrow.fs

        local = self.pull()
        experiment: Dict[str, bytes] = {}
        folder = self.path(RAY_EXPERIMENT_FOLDER)
        try:
            infos = self.fs.get_file_info(pyarrow.fs.FileSelector(folder, allow_not_found=True))
        except OSError as err:
            raise SessionError(f"Cannot list {join_uri(self.uri, RAY_EXPERIMENT_FOLDER)}: {err}.") from None
        for info in infos:
            if info.type == pyarrow.fs.FileType.File:
                name = posixpath.basename(info.path)
                data = self.read(posixpath.join(RAY_EXPERIMENT_FOLDER, name))
                if data is not None:
                    experiment[name] = data
                    atomic_write(make_private_dir(local / RAY_EXPERIMENT_FOLDER) / name, data)
        return local, experiment

    def push_experiment(self, before: Dict[str, bytes]) -> None:
        """Put back Tune's experiment-level files the working copy changed since `pull_session` (the
        snapshot a delta was merged into): other files first, the snapshot index next, deletions last."""
        folder = self.local / RAY_EXPERIMENT_FOLDER
        now = {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()} if folder.is_dir() else {}
        changed = [name for name, data in now.items() if before.get(name) != data]
        changed.sort(key=lambda name: name.startswith("experiment_state"))
        for name in changed:
            self.write(posixpath.join(RAY_EXPERIMENT_FOLDER, name), now[name])
        for name in before:
            if name not in now:
                self.delete(posixpath.join(RAY_EXPERIMENT_FOLDER, name))

    def remove(self) -> None:
        """Delete the session from the store: every object under its prefix, nothing else."""
        self.fs.delete_dir(self.root)


def find_store_sessions(experiment_uri: str) -> List[str]:
    """The URIs of the sessions directly below ``experiment_uri`` or one level deeper (with a summary)."""
    import pyarrow.fs

    fs, root = open_uri(experiment_uri)
    root = root.rstrip("/")
    try:
        infos = fs.get_file_info(pyarrow.fs.FileSelector(root, allow_not_found=True, recursive=False))
        found: List[str] = []
        for info in infos:
            if info.type != pyarrow.fs.FileType.Directory:
                continue
            name = posixpath.basename(info.path)
            below = [name] if name.startswith(SESSION_PREFIX) else [
                posixpath.join(name, posixpath.basename(inner.path))
                for inner in fs.get_file_info(pyarrow.fs.FileSelector(info.path, recursive=False))
                if inner.type == pyarrow.fs.FileType.Directory and posixpath.basename(inner.path).startswith(SESSION_PREFIX)
            ]
            for relative in below:
                if fs.get_file_info(posixpath.join(root, relative, SUMMARY_FILE)).type == pyarrow.fs.FileType.File:
                    found.append(relative)
    except OSError as err:
        raise SessionError(f"Cannot list {experiment_uri}: {err}.") from None
    return [join_uri(experiment_uri, relative) for relative in sorted(found)]


VIEW_FILES = (SUMMARY_FILE, LOCK_FILE, BEST_CONFIG_FILE, CONTROL_FILE)
"""What commands that only look at a session (``status``, ``list``, ``pause``, ``export-best``) read."""


class SessionView:
    """A session's summary, owner record, best config and control record as local files: the session's
    own folder, or for a URI a private temporary copy of them, read again from the store by `refresh`."""

    def __init__(self, location: Union[str, Path]) -> None:
        self.store = SessionStore(str(location)) if is_uri(location) else None
        self.name = self.store.uri if self.store is not None else str(Path(location).expanduser())
        self.path = self.store.local if self.store is not None else Path(location).expanduser()
        self.refresh()
        if self.store is not None and not (self.path / SUMMARY_FILE).is_file() and not self.store.is_session():
            self.store.close()
            raise SessionError(
                f"No session at {self.name}: it has no {SUMMARY_FILE} and no {STATE_FILE}, so it is not a LightningTune "
                f"session. List the sessions with: lightning-bohb list {uri_parent(uri_parent(self.name))}"
            )

    def refresh(self, *names: str) -> Path:
        """The folder, with the store's files ``names`` (default: all of `VIEW_FILES`) read again."""
        if self.store is not None:
            for name in names or VIEW_FILES:
                data = self.store.read(name, MAX_SUMMARY_BYTES)  # a larger one is no session file: an error, not read
                if data is None:
                    (self.path / name).unlink(missing_ok=True)
                else:
                    atomic_write(self.path / name, data)
        return self.path

    def of(self, name: str) -> str:
        """Where the session's file ``name`` lives, as the user names it."""
        return join_uri(self.name, name) if self.store is not None else str(self.path / name)

    def __enter__(self) -> "SessionView":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.store is not None:
            self.store.close()
