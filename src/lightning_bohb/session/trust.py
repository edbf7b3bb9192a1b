"""Whether a session folder may be unpickled: its owner and write permissions, as ssh checks its keys.

Loading a session's state (``session_state.json`` may hold pickles of the user's objects; 0.1.0's
``session_state.pkl`` is one), Ray Tune's experiment state (its trials are cloudpickled inside the
JSON), the searcher and scheduler states and the trial checkpoints runs (or, for checkpoints loaded
``weights_only=False``, can run) whatever code those pickles name. So before any of them is loaded,
the session folder, its state file and everything under the Ray experiment folder ``tune/`` must be
owned by the current user (or root) and not writable by group or others. The session folder, the
state file and what ``tune/`` holds directly must not be symbolic links; deeper (Lightning's
``save_last="link"``) a link must stay inside the session. A folder copied from someone else, or one
another user could have written to, is refused with the reason; ``--trust`` (or
``LIGHTNING_BOHB_TRUST=1``) loads it anyway.

Inside a folder that group and others cannot enter (LightningTune creates the session folder
``0700``), the write bits of what it holds do not matter: nobody else can reach them. That keeps
sessions written under a ``umask`` of ``002`` (Ray's folders ``0775``) resumable.

What this does not cover: a user who can already act as you, or root; and the copies Ray stages
under its own temporary folder.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import List, Optional, Tuple, Union

from lightning_bohb.exceptions import SessionError
from lightning_bohb.utils.layout import STATE_FILES, TUNE_FOLDER

TRUST_ENV = "LIGHTNING_BOHB_TRUST"
_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH
_OTHERS_ENTER = stat.S_IXGRP | stat.S_IXOTH
_MAX_CHECKED = 1_000_000  # files and folders looked at; a session has about ten per trial


def trust_overridden(trust: bool = False) -> bool:
    """Whether the caller (``--trust``) or the environment (``LIGHTNING_BOHB_TRUST=1``) vouches for the session."""
    return trust or os.environ.get(TRUST_ENV) == "1"


def untrusted_reason(session_dir: Union[str, Path]) -> Optional[str]:
    """Why the pickles of ``session_dir`` must not be loaded, or ``None`` when they may."""
    session_dir = Path(os.path.realpath(session_dir))  # the folder given may be a link: its target is checked
    me = os.geteuid()
    real_session = str(session_dir)
    checked = 0
    # (path, shielded: inside a folder group and others cannot enter, top: a link is refused outright)
    pending: List[Tuple[Path, bool, bool]] = [(session_dir, False, True)]
    while pending:
        path, shielded, top = pending.pop()
        checked += 1
        if checked > _MAX_CHECKED:
            return f"{session_dir} holds more than {_MAX_CHECKED} files, more than can be checked"
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            continue
        except OSError as err:
            return f"{path} cannot be examined ({err.strerror or err})"
        if stat.S_ISLNK(info.st_mode):
            target = os.path.realpath(path)
            if top or os.path.commonpath([target, real_session]) != real_session:
                return f"{path} is a symbolic link" + ("" if top else f" out of the session (to {target})")
            continue
        if info.st_uid not in (me, 0):
            return f"{path} is owned by uid {info.st_uid}, not by you (uid {me})"
        if info.st_mode & _OTHERS_WRITE and not shielded:
            return f"{path} is writable by group or others (mode {stat.S_IMODE(info.st_mode):04o})"
        if not stat.S_ISDIR(info.st_mode):
            continue
        inner_shielded = shielded or not info.st_mode & _OTHERS_ENTER
        if path == session_dir:
            pending += [(session_dir / name, inner_shielded, True) for name in (*STATE_FILES, TUNE_FOLDER)]
            continue
        try:
            with os.scandir(path) as scan:
                children = [Path(entry.path) for entry in scan]
        except OSError as err:
            return f"{path} cannot be listed ({err.strerror or err})"
        is_tune = path == session_dir / TUNE_FOLDER
        pending += [(child, inner_shielded, is_tune) for child in children]
    return None


def check_trusted(session_dir: Union[str, Path], trust: bool = False) -> None:
    """Raise `SessionError` unless the session's pickles may be loaded (see the module docstring)."""
    if trust_overridden(trust):
        return
    reason = untrusted_reason(session_dir)
    if reason is not None:
        raise SessionError(
            f"Refusing to load session {session_dir}: {reason}. Its state files are pickles, and loading "
            "them runs the code they name, so a session is loaded only from folders that you own and that "
            "nobody else can write to (as ssh does with its keys). If it is yours and you trust its content, "
            f"fix the owner or mode (e.g. chmod -R go-w {session_dir}), or resume anyway with "
            f"lightning-bohb resume --trust {session_dir} (or {TRUST_ENV}=1 <resume command>)."
        )
