"""Control of a running session from any node of its Ray cluster (``lightning-bohb pause`` with ``RAY_ADDRESS``).

The driver's pause channel (`lightning_bohb.pause.channel`, the named actor
``lightning_bohb_control_<session id>_<pid>_<ms>`` in namespace ``lightning_bohb`` that the trials
talk to) also takes these requests: one actor process for both, not two (a Ray worker process is
about 125 MiB). The driver writes ``session_control.json`` (owner-only) into the session folder:
the actor's name and namespace and a random token. ``pause`` reads that file, connects to the
cluster as a Ray client and hands the actor the token with its request; the actor passes a request
with the right token to the driver, which pauses as on SIGUSR1 (or quits now, as on SIGUSR2).

The file is read as data only: it can only name an actor of this namespace with this prefix, and
a request is carried out only with the token the driver chose, which only a reader of the
session folder knows. The driver's own calls (open, take and close requests) carry the session
key, which is never written to a file (`lightning_bohb.pause.channel`); the token can be given once.
This keeps other jobs of a shared Ray cluster from steering the session through its actor; it does
not protect it from them otherwise: whoever may connect to the cluster can run code as the user
that runs the Ray workers. What protects a session is who may connect (the cluster's token
authentication, its network). The actor is not detached: it ends with the driver's Ray job.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import socket
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Union

from lightning_bohb.exceptions import SessionError
from lightning_bohb.log import logger
from lightning_bohb.utils.files import atomic_write, read_json
from lightning_bohb.utils.layout import CONTROL_FILE

NAMESPACE = "lightning_bohb"
ACTOR_PREFIX = "lightning_bohb_control_"
ACTIONS = ("pause", "quit")
"""``pause``: at the next validation boundary (as SIGUSR1); ``quit``: now, at the last checkpoints (as SIGUSR2)."""
_SCHEMA_VERSION = 1
_MAX_CONTROL_BYTES = 4096
_ACTOR_NAME = re.compile(re.escape(ACTOR_PREFIX) + r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_POLL_S = 1.0


class RemoteControl:
    """Actor part (of the pause channel): requests from Ray clients that know the token, waiting for the
    driver to take them. None is taken before the driver `open_requests` with its token.

    Args:
        key: The session key: a call that changes the actor's state without it raises `PermissionError`.
    """

    def __init__(self, key: str) -> None:
        if not isinstance(key, str) or len(key) < 16:
            raise ValueError("The control actor needs a session key of at least 16 characters.")
        self._key = key
        self._owner: Dict[str, Any] = {}
        self._token = ""
        self._requests: List[str] = []
        self._closed = False
        self._requests_changed = threading.Condition()

    def _check(self, key: Any) -> None:
        """`PermissionError` unless ``key`` is the session key (a call from the driver or its trials)."""
        if not (isinstance(key, str) and secrets.compare_digest(key, self._key)):
            raise PermissionError("refused: this call needs the session key, which only the session's driver and trials hold")

    def open_requests(self, key: str, session_id: str, token: str, host: str, pid: int) -> None:
        """Take requests with ``token`` from now on, for session ``session_id`` (its driver's host and pid); once."""
        self._check(key)
        with self._requests_changed:
            if self._token:
                raise PermissionError("refused: requests are open already (their token is given once)")
            self._owner, self._token = {"session_id": session_id, "host": host, "pid": pid}, token

    def request(self, token: str, action: str) -> bool:
        """Queue ``action`` for the driver; False (nothing queued) for a wrong token or an unknown action."""
        valid = isinstance(token, str) and bool(self._token) and secrets.compare_digest(token, self._token)
        if not valid or action not in ACTIONS:
            return False
        with self._requests_changed:
            self._requests.append(action)
            self._requests_changed.notify_all()
        return True

    def next_request(self, key: str, timeout: float) -> Optional[str]:
        """The oldest queued action, waiting up to ``timeout`` s; None if none came (or after `close_requests`)."""
        self._check(key)
        with self._requests_changed:
            self._requests_changed.wait_for(lambda: self._closed or bool(self._requests), timeout)
            return self._requests.pop(0) if self._requests and not self._closed else None

    def close_requests(self, key: str) -> None:
        self._check(key)
        with self._requests_changed:
            self._closed = True
            self._requests_changed.notify_all()

    def describe(self) -> Dict[str, Any]:
        """Whose actor this is (the session and its driver's host and pid); no token."""
        return dict(self._owner)


class RemoteControlServer:
    """The driver's side: requests through the pause channel's actor, the control file, and a thread that
    hands requests to ``on_request``.

    Args:
        actor: The pause channel's actor handle (a `RemoteControl` too).
        name: Its name in namespace `NAMESPACE` (``lightning_bohb_control_...``), written into the control file.
        key: The session key the actor was created with.
        on_open: Called once the control file is written (a store session puts it into its store).
    """

    def __init__(
        self,
        session_dir: Union[str, Path],
        session_id: str,
        on_request: Callable[[str], None],
        actor: Any,
        name: str,
        key: str,
        on_open: Optional[Callable[[], None]] = None,
    ) -> None:
        self.session_dir = Path(session_dir)
        self.session_id = session_id
        self.on_request = on_request
        self.on_open = on_open
        self.actor = actor
        self.name = name
        self.key = key
        self._stop = threading.Event()
        self._file_lock = threading.Lock()  # the control file is written, or removed, not both at once
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        """Give the actor a new token and start the thread, which writes the control file once the actor
        holds the token (its process may still be starting: the driver does not wait for it), calls
        ``on_open``, then serves requests. A control file that cannot be written turns control from other
        nodes off for this run, with a warning."""
        token = secrets.token_hex(16)
        opened = self.actor.open_requests.remote(self.key, self.session_id, token, socket.gethostname(), os.getpid())
        record = {
            "schema_version": _SCHEMA_VERSION,
            "namespace": NAMESPACE,
            "actor": self.name,
            "session_id": self.session_id,
            "token": token,
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        self._thread = threading.Thread(target=self._serve, args=(opened, record), name="lightning_bohb-remote-control", daemon=True)
        self._thread.start()

    def _open(self, opened: Any, record: Dict[str, Any]) -> bool:
        import ray

        try:
            ray.get(opened)
        except Exception as err:  # the actor or the connection is gone
            if not self._stop.is_set():
                logger.warning("Control from other nodes is off for this run: %s", err)
            return False
        with self._file_lock:
            if self._stop.is_set():
                return False
            try:
                atomic_write(self.session_dir / CONTROL_FILE, json.dumps(record))  # owner-only (mkstemp's 0600)
            except OSError as err:
                logger.warning("Control from other nodes is off for this run: cannot write %s: %s", CONTROL_FILE, err.strerror or err)
                return False
            if self.on_open is not None:  # under the lock: `stop` removes what it published
                self.on_open()
        return True

    def _serve(self, opened: Any, record: Dict[str, Any]) -> None:
        import ray

        if not self._open(opened, record):
            return
        while not self._stop.is_set():
            try:
                action = ray.get(self.actor.next_request.remote(self.key, _POLL_S), timeout=_POLL_S + 30)
            except Exception as err:  # the actor or the connection is gone: no more remote requests
                if not self._stop.is_set():
                    logger.warning("Control from other nodes stopped: %s", err)
                return
            if action is not None and not self._stop.is_set():
                self.on_request(action)

    def stop(self, remove_file: bool = True) -> None:
        """Remove the control file (unless not ``remove_file``) and end the thread (the run is over; the
        driver ends the actor)."""
        with self._file_lock:
            self._stop.set()
            try:
                if remove_file:
                    (self.session_dir / CONTROL_FILE).unlink()
            except OSError:
                pass
        self.actor.close_requests.remote(self.key)
        if self._thread is not None:
            self._thread.join(timeout=_POLL_S + 5)
            self._thread = None


def read_control(session_dir: Union[str, Path]) -> Dict[str, Any]:
    """The session's control record, checked as data (`SessionError` naming what is wrong)."""
    path = Path(session_dir) / CONTROL_FILE
    try:  # never blocks on a planted FIFO, never follows a link, reads at most _MAX_CONTROL_BYTES
        record = read_json(path, _MAX_CONTROL_BYTES)
    except FileNotFoundError:
        raise SessionError(
            f"Session {session_dir} has no {CONTROL_FILE}: its driver does not take requests through Ray (it is not "
            "running, or it started without Ray control). Pause it on its host: lightning-bohb pause "
            f"{session_dir}"
        ) from None
    except OSError as err:
        raise SessionError(f"The control file {path} cannot be read ({err.strerror or err}); nothing was sent.") from None
    except ValueError as err:
        raise SessionError(f"The control file {path} is corrupt ({err}); nothing was sent.") from None
    try:
        if not isinstance(record, dict):
            raise ValueError("not a mapping")
        if record.get("namespace") != NAMESPACE or not isinstance(record.get("actor"), str) or not _ACTOR_NAME.fullmatch(record["actor"]):
            raise ValueError("it does not name a lightning_bohb control actor")
        if not isinstance(record.get("token"), str) or not record["token"]:
            raise ValueError("no token")
    except ValueError as err:
        raise SessionError(f"The control file {path} is corrupt ({err}); nothing was sent.") from None
    return record


def send_request(session_dir: Union[str, Path], action: str, connect_timeout: float = 60.0) -> Dict[str, Any]:
    """Connect to the Ray cluster (``RAY_ADDRESS``) and give the session's driver ``action``.

    Returns the actor's description (the driver's host and pid). `SessionError` when the cluster
    cannot be reached (token authentication included), the actor is not there, or it refuses.
    """
    import ray

    record = read_control(session_dir)
    address = os.environ.get("RAY_ADDRESS") or "auto"
    if not ray.is_initialized():
        with _stderr_kept() as kept:  # Ray's core logs each failed attempt there; one message says it all
            try:
                ray.init(address=address, namespace=NAMESPACE, log_to_driver=False, logging_level=logging.ERROR)
            except Exception as err:
                failure: Optional[Exception] = err
            else:
                failure = None
        if failure is not None:
            raise SessionError(_connection_problem(failure, address, session_dir, record, kept.text())) from None
    try:
        actor = ray.get_actor(record["actor"], namespace=NAMESPACE)
        accepted: Any = ray.get(actor.request.remote(record["token"], action), timeout=connect_timeout)
        described: Any = ray.get(actor.describe.remote(), timeout=connect_timeout)
    except Exception as err:
        raise SessionError(_connection_problem(err, address, session_dir, record)) from None
    if not accepted:
        raise SessionError(
            f"The control actor of session {session_dir} refused the request (the token in {CONTROL_FILE} is not its "
            "token: the file is from another run of the session). Nothing was sent."
        )
    return described if isinstance(described, dict) else {}


class _stderr_kept:
    """Collects what is written to file descriptor 2 (also by Ray's C++ core) while it is entered."""

    def __enter__(self) -> "_stderr_kept":
        import tempfile

        sys.stderr.flush()
        self._file = tempfile.TemporaryFile()
        self._saved = os.dup(2)
        os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, *exc: Any) -> None:
        sys.stderr.flush()
        os.dup2(self._saved, 2)
        os.close(self._saved)

    def text(self, limit: int = 65536) -> str:
        self._file.seek(0)
        return self._file.read(limit).decode(errors="replace")


def _connection_problem(
    err: Exception, address: str, session_dir: Union[str, Path], record: Dict[str, Any], logged: str = ""
) -> str:
    text = " ".join(str(err).split())[:300]
    kind = type(err).__name__
    if "InvalidAuthToken" in logged or "Unauthenticated" in logged:
        return (
            f"The Ray cluster at {address} refused the connection: its token authentication did not accept this client "
            "(no token, or another one). Set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) to the "
            f"cluster's token (`ray get-auth-token` on its head node), then run: lightning-bohb pause {session_dir}"
        )
    if kind == "AuthenticationError" or "authentication" in text.lower():
        return (
            f"The Ray cluster at {address} refused the connection: token authentication ({text}). Set RAY_AUTH_MODE=token "
            "and RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) to the cluster's token (`ray get-auth-token` on its head node), "
            f"then run: lightning-bohb pause {session_dir}"
        )
    if isinstance(err, ValueError) and "Failed to look up actor" in text:
        return (
            f"Session {session_dir}'s control actor {record['actor']} is not in the Ray cluster at {address}: its driver "
            f"is connected to another cluster, or has ended. Check with: lightning-bohb status {session_dir}"
        )
    if isinstance(err, ConnectionError) or "connect" in text.lower():
        return f"Cannot connect to the Ray cluster at {address} ({kind}: {text}). Set RAY_ADDRESS to the cluster of the session's driver."
    return f"Could not send the request to session {session_dir} through Ray at {address} ({kind}: {text})."
