"""`SessionBackend`: where one session lives, and everything that depends on it.

A session lives in a local folder (`FolderSession`) or under a prefix in object storage
(`StoredSession`, ``s3://...``, through `lightning_bohb.session.store.SessionStore`). Its backend owns:

- the session's location as the user names it, and of each of its files (`SessionBackend.file`); the
  names themselves are the layout's (`lightning_bohb.utils.layout`);
- the folder the driver and the commands read and write (`SessionBackend.folder`: the session's own
  folder, or a private working copy of a stored session), kept in step with where the session lives
  (`refresh`, `push`, `take`), and its removal (`remove`);
- the right to run it, one `lightning_bohb.session.lock.OwnerLease` interface (`lease`);
- what a resume needs before anything is unpickled (`check_resumable`, `fetch`, `publish_fetched`);
- the commands that resume and pause it (`resume_command`, `pause_command`).

`open_session` (a session's folder or URI) and `session_at` (an experiment location and a session id)
are the factories that pick one; `sessions_under` lists an experiment's sessions. The runner, the
commands and the dashboard ask the backend: nothing outside this module and the store modules tells a
folder from a URI (`tests/unit/test_layers.py` reads the source to check).
"""

from __future__ import annotations

import errno
import os
import shlex
import shutil
import sys
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple, Union

from lightning_bohb.exceptions import LightningTuneError, SessionError
from lightning_bohb.session.lock import OwnerLease, SessionLock
from lightning_bohb.session.owner_record import HEARTBEAT_S
from lightning_bohb.session.state import TuneSessionState, state_file
from lightning_bohb.session.store import SessionStore, find_store_sessions
from lightning_bohb.session.trust import check_trusted
from lightning_bohb.utils.files import make_private_dir
from lightning_bohb.utils.layout import BEST_CONFIG_FILE, CONTROL_FILE, LOCK_FILE, SESSION_PREFIX, STATE_FILE, SUMMARY_FILE
from lightning_bohb.utils.location_backend import experiment_location, is_uri
from lightning_bohb.utils.uris import join_uri, split_query, uri_parent

VIEW_FILES = (SUMMARY_FILE, LOCK_FILE, BEST_CONFIG_FILE, CONTROL_FILE)
"""What commands that only look at a session (``status``, ``list``, ``pause``, ``export-best``) read."""


class SessionBackend(ABC):
    """Where one session lives; see the module's docstring.

    The defaults below are a URI's (a stored session's); `FolderSession` overrides them for a folder.

    Attributes:
        location: The session, as the user names it: its folder (as given, ``~`` expanded), or its URI.
    """

    location: str

    # -- where -----------------------------------------------------------------------------------
    @property
    @abstractmethod
    def folder(self) -> Path:
        """The folder the driver and the commands read and write the session's files in."""

    def file(self, name: str) -> str:
        """Where the session's file ``name`` lives, as the user names it."""
        return join_uri(self.location, name)

    @property
    def absolute(self) -> str:
        """The location, valid from any working folder (commands printed for later)."""
        return self.location

    @property
    def where(self) -> Union[str, Path]:
        """The location as the public API hands it out: a folder's `Path`, or the URI."""
        return self.location

    @property
    def experiment_dir(self) -> str:
        """``<experiment_dir>`` of ``<experiment_dir>/<experiment_name>/session_<id>``."""
        return uri_parent(uri_parent(self.location))

    @property
    def experiment_name(self) -> str:
        return os.path.basename(split_query(uri_parent(self.location))[0])

    # -- the commands that resume and pause it ---------------------------------------------------
    def resume_command(self, script: Optional[str] = None) -> str:
        """The command that resumes the session: its ``script`` with ``--resume-session``, or the console's
        ``resume`` (which resumes a script's session too). Built from the location, never read from a file."""
        session = shlex.quote(self.absolute)
        if script:
            return f"{python_command()} {shlex.quote(script)} --resume-session {session}"
        return f"{console_command()} resume {session}"

    def pause_command(self) -> str:
        return f"{console_command()} pause {shlex.quote(self.absolute)}"

    # -- what it holds ---------------------------------------------------------------------------
    @abstractmethod
    def is_session(self) -> bool:
        """Whether a session state is there."""

    @abstractmethod
    def lease(self, heartbeat_s: Optional[float] = HEARTBEAT_S) -> OwnerLease:
        """The right to run (or delete) the session; not taken yet."""

    @abstractmethod
    def create(self) -> None:
        """Make room for a new session."""

    @abstractmethod
    def refresh(self, *names: str) -> Path:
        """`folder`, with the files ``names`` (default: `VIEW_FILES`) read again from where the session lives."""

    @abstractmethod
    def push(self, *names: str) -> None:
        """Make `folder`'s files ``names`` the session's, in this order (one missing there is deleted)."""

    @abstractmethod
    def take(self, name: str) -> None:
        """Move the file ``name`` another process put where the session lives into `folder`."""

    @abstractmethod
    def remove(self) -> None:
        """Delete the whole session, nothing else."""

    @abstractmethod
    def close(self) -> None:
        """Give up what a stored session's working copy holds (everything in it is in the store)."""

    # -- resume ----------------------------------------------------------------------------------
    @abstractmethod
    def check_found(self, require: bool) -> None:
        """`SessionError` unless something is there (a folder: only with ``require``) that a command may look at."""

    @abstractmethod
    def check_resumable(self, trust: bool) -> None:
        """`SessionError` unless a session is there that may be read back; before anything is unpickled."""

    @abstractmethod
    def check_trusted(self, trust: bool) -> None:
        """The trust check of `check_resumable` again: Ray loads the experiment and scheduler states later."""

    @abstractmethod
    def fetch(self) -> None:
        """`folder` filled with what a resume reads (under the lease)."""

    @abstractmethod
    def publish_fetched(self) -> None:
        """What the resume changed in the files `fetch` read, made the session's (the merged snapshot delta)."""

    @abstractmethod
    def tune_filesystem(self) -> Any:
        """The ``pyarrow.fs.FileSystem`` Ray Tune writes the experiment through; None: the one Tune picks."""

    # -- what the commands may do with it --------------------------------------------------------
    signals_driver = True
    """Whether ``pause`` may signal the session's driver on its host (a stored session's is reached through Ray)."""

    def __enter__(self) -> "SessionBackend":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class FolderSession(SessionBackend):
    """A session in a local (or shared) folder.

    Args:
        folder: The session's folder; named as given (``~`` expanded), or with ``resolve`` as its real absolute path.
    """

    def __init__(self, folder: Union[str, Path], resolve: bool = False) -> None:
        self._folder = Path(folder).expanduser()
        if resolve:
            self._folder = self._folder.resolve()
        self.location = str(self._folder)

    @property
    def folder(self) -> Path:
        return self._folder

    def file(self, name: str) -> str:
        return str(self._folder / name)

    @property
    def absolute(self) -> str:
        return str(self._folder.absolute())

    @property
    def where(self) -> Union[str, Path]:
        return self._folder

    @property
    def experiment_dir(self) -> str:
        return str(self._folder.absolute().parent.parent)

    @property
    def experiment_name(self) -> str:
        return self._folder.absolute().parent.name

    def is_session(self) -> bool:
        return state_file(self._folder) is not None  # a planted link too: a resume refuses it, nothing overwrites it

    def lease(self, heartbeat_s: Optional[float] = HEARTBEAT_S) -> OwnerLease:
        return SessionLock(self._folder, heartbeat_s)

    def create(self) -> None:
        try:
            make_private_dir(self._folder)  # never through a symbolic link at session_<id>
        except OSError as err:
            why = "it is a symbolic link" if err.errno == errno.ELOOP else err.strerror or str(err)
            raise SessionError(f"Cannot create the session folder {self._folder}: {why}.") from err

    def refresh(self, *names: str) -> Path:
        return self._folder

    def push(self, *names: str) -> None:
        pass  # written in place

    def take(self, name: str) -> None:
        pass  # put in place

    def close(self) -> None:
        pass

    def fetch(self) -> None:
        pass  # read in place

    def publish_fetched(self) -> None:
        pass  # changed in place

    def remove(self) -> None:
        shutil.rmtree(self._folder)  # does not follow links inside the session

    def check_found(self, require: bool) -> None:
        if require and not self._folder.is_dir():
            raise SessionError(f"Session not found: {self._folder} is not a directory. List sessions with: lightning-bohb list")

    def check_resumable(self, trust: bool) -> None:
        check_trusted(self._folder, trust)  # before anything is written, read back or unpickled
        if state_file(self._folder) is None:  # not a session: say so, and leave no lock in it
            TuneSessionState.load(self._folder, trust=trust)

    def check_trusted(self, trust: bool) -> None:
        check_trusted(self._folder, trust)

    def tune_filesystem(self) -> Any:
        from lightning_bohb._ray.atomic_fs import atomic_storage_filesystem

        return atomic_storage_filesystem()


class StoredSession(SessionBackend):
    """A session under a prefix in object storage, with a private working copy as its `folder`.

    A stored session is trusted by its credentials (`lightning_bohb.session.store`): whoever may write its
    prefix may plant its state, as whoever may write the user's code may change what runs.
    """

    signals_driver = False

    def __init__(self, uri: str) -> None:
        self.store = SessionStore(uri)
        self.location = self.store.uri
        self._fetched: Dict[str, bytes] = {}

    @property
    def folder(self) -> Path:
        return self.store.local

    def is_session(self) -> bool:
        return self.store.is_session()

    def create(self) -> None:
        pass  # its working copy is made when first used; the store's prefix with its first object

    def lease(self, heartbeat_s: Optional[float] = HEARTBEAT_S) -> OwnerLease:
        from lightning_bohb.session.store_lease import StoreLease

        return StoreLease(self.store, heartbeat_s)

    def refresh(self, *names: str) -> Path:
        from lightning_bohb.session.state import MAX_SUMMARY_BYTES
        from lightning_bohb.utils.files import atomic_write

        for name in names or VIEW_FILES:
            data = self.store.read(name, MAX_SUMMARY_BYTES)  # a larger one is no session file: an error, not read
            if data is None:
                (self.folder / name).unlink(missing_ok=True)
            else:
                atomic_write(self.folder / name, data)
        return self.folder

    def push(self, *names: str) -> None:
        self.store.push(*names)

    def take(self, name: str) -> None:
        self.store.pull([name])
        self.store.delete(name)

    def remove(self) -> None:
        self.store.remove()

    def close(self) -> None:
        self.store.close()

    def check_found(self, require: bool) -> None:
        if not (self.folder / SUMMARY_FILE).is_file() and not self.store.is_session():
            raise SessionError(
                f"No session at {self.location}: it has no {SUMMARY_FILE} and no {STATE_FILE}, so it is not a LightningTune "
                f"session. List the sessions with: lightning-bohb list {uri_parent(uri_parent(self.location))}"
            )

    def check_resumable(self, trust: bool) -> None:
        if not self.store.is_session():  # not a session: say so, and leave no lease in it
            raise SessionError(
                f"Session state not found: {self.file(STATE_FILE)} does not exist, so {self.location} is not a "
                f"LightningTune session. Sessions look like <experiment_dir>/<name>/session_<id>; list them with: "
                f"lightning-bohb list {uri_parent(self.location)}"
            )

    def check_trusted(self, trust: bool) -> None:
        pass  # trusted by its credentials

    def fetch(self) -> None:
        _, self._fetched = self.store.pull_session()

    def publish_fetched(self) -> None:
        self.store.push_experiment(self._fetched)  # Ray restores the experiment from the store

    def tune_filesystem(self) -> Any:
        return None  # Tune writes the experiment to the store itself


# -- the factories -----------------------------------------------------------------------------------
def open_session(location: Union[str, Path], resolve: bool = False) -> SessionBackend:
    """The backend of the session at ``location``: its folder (with ``resolve``, its real absolute path), or its URI."""
    return StoredSession(str(location)) if is_uri(location) else FolderSession(location, resolve)


def view_session(location: Union[str, Path], require: bool = False) -> SessionBackend:
    """The session at ``location`` for a command that looks at it: `VIEW_FILES` read into its folder. A URI with
    neither a summary nor a state is no session, and with ``require`` nor is a missing folder: `SessionError`."""
    session = open_session(location)
    try:
        session.refresh()
        session.check_found(require)
    except BaseException:
        session.close()
        raise
    return session


def require_folder(location: Optional[Union[str, Path]], command: str) -> None:
    """`LightningTuneError` when ``location`` is in object storage, for a command that works on a session folder only."""
    if location is not None and is_uri(location):
        raise LightningTuneError(
            f"`lightning-bohb {command}` works on a session folder, not on object storage ({location}). `status`, `list`, "
            "`pause`, `resume`, `clean` and `export-best` take the URI; for the others, copy the session to a folder first."
        )


def session_at(experiment_dir: Optional[str], experiment_name: Optional[str], session_id: str) -> SessionBackend:
    """The backend of session ``session_id`` of an experiment (`lightning_bohb.utils.location_backend.experiment_location`)."""
    experiment = experiment_location(experiment_dir, experiment_name)
    if is_uri(experiment):
        return StoredSession(join_uri(experiment, f"{SESSION_PREFIX}{session_id}"))
    return FolderSession(Path(experiment) / f"{SESSION_PREFIX}{session_id}")


def sessions_under(experiment_dir: str) -> Iterator[Tuple[SessionBackend, str]]:
    """Each session directly below ``experiment_dir`` or one level deeper that has a summary, with its name
    relative to ``experiment_dir``, in order; a stored one's working copy is given up when the caller moves on."""
    if is_uri(experiment_dir):
        root = split_query(experiment_dir)[0].rstrip("/")
        for uri in find_store_sessions(experiment_dir):
            with StoredSession(uri) as session:
                yield session, uri[len(root) + 1 :]
        return
    folder = Path(experiment_dir).expanduser()
    if not folder.is_dir():
        raise SessionError(f"Experiment folder not found: {folder}. Give the folder you ran with (--experiment-dir).")
    found: Dict[Path, None] = {}
    for pattern in (f"*/{SESSION_PREFIX}*/{SUMMARY_FILE}", f"{SESSION_PREFIX}*/{SUMMARY_FILE}"):
        for path in folder.glob(pattern):
            found.setdefault(path.parent, None)
    for path in sorted(found):
        yield FolderSession(path), os.path.relpath(path, folder)


def link_below(experiment_dir: str, session: SessionBackend) -> Optional[str]:
    """The first symbolic link on the way from ``experiment_dir`` down to a session `sessions_under` found in it,
    if any (a store has none)."""
    if not isinstance(session, FolderSession):
        return None
    current = root = Path(experiment_dir).expanduser()
    for part in session.folder.relative_to(root).parts:
        current = current / part
        if current.is_symlink():
            return str(current)
    return None


# -- the commands that run it ------------------------------------------------------------------------
def python_command() -> str:
    found = shutil.which("python")
    if found and os.path.realpath(found) == os.path.realpath(sys.executable):
        return "python"
    return shlex.quote(sys.executable)


def console_command() -> str:
    found = shutil.which("lightning-bohb")
    sibling = Path(sys.executable).parent / "lightning-bohb"
    if found and sibling.exists() and os.path.realpath(found) == os.path.realpath(sibling):
        return "lightning-bohb"
    return f"{python_command()} -m lightning_bohb"

