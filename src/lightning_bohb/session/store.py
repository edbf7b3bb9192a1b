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
from typing import Dict, Iterable, List, Optional, Tuple

from lightning_bohb.exceptions import SessionError
from lightning_bohb.utils.files import atomic_write, make_private_dir
from lightning_bohb.utils.layout import (
    BEST_CONFIG_FILE,
    CONTROL_FILE,
    LEGACY_STATE_FILE,
    SESSION_PREFIX,
    STATE_FILE,
    STATE_FILES,
    SUMMARY_FILE,
    TUNE_FOLDER,
)
from lightning_bohb.utils.uris import join_uri, split_query, uri_name

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
        folder = self.path(TUNE_FOLDER)
        try:
            infos = self.fs.get_file_info(pyarrow.fs.FileSelector(folder, allow_not_found=True))
        except OSError as err:
            raise SessionError(f"Cannot list {join_uri(self.uri, TUNE_FOLDER)}: {err}.") from None
        for info in infos:
            if info.type == pyarrow.fs.FileType.File:
                name = posixpath.basename(info.path)
                data = self.read(posixpath.join(TUNE_FOLDER, name))
                if data is not None:
                    experiment[name] = data
                    atomic_write(make_private_dir(local / TUNE_FOLDER) / name, data)
        return local, experiment

    def push_experiment(self, before: Dict[str, bytes]) -> None:
        """Put back Tune's experiment-level files the working copy changed since `pull_session` (the
        snapshot a delta was merged into): other files first, the snapshot index next, deletions last."""
        folder = self.local / TUNE_FOLDER
        now = {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()} if folder.is_dir() else {}
        changed = [name for name, data in now.items() if before.get(name) != data]
        changed.sort(key=lambda name: name.startswith("experiment_state"))
        for name in changed:
            self.write(posixpath.join(TUNE_FOLDER, name), now[name])
        for name in before:
            if name not in now:
                self.delete(posixpath.join(TUNE_FOLDER, name))

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
