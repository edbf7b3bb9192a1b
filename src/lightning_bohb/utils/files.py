"""Files written atomically: a crash leaves the previous file or the new one, never part of one.

Every file LightningTune writes (session state, summary, best config) and every file Ray Tune writes
into a session (through `lightning_bohb._ray.atomic_fs`) goes through `AtomicFile`. Written by hand
because no library offers an atomic file whose I/O errors reach a pyarrow copy: pyarrow's
``copy_files`` (how Ray uploads checkpoints and snapshots) never calls ``flush`` and drops errors
raised by ``close`` (checked with pyarrow 26), so the one fsync per file happens in the ``write`` of
the copy's last chunk, the first one that is not a whole number of MiB (see `AtomicFile`).
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, Union

STAGING_FOLDER = ".checkpoint_staging"
"""A folder (in a trial's session folder) whose files are written once, then deleted: the session's
filesystem (`lightning_bohb._ray.atomic_fs`) hard-links them instead of copying them."""
SYNC_UNIT = 1 << 20
"""pyarrow's copy writes chunks of a whole number of MiB (1 MiB by default, 64 MiB from Ray) until the last one."""
_TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")  # AtomicFile's: tempfile.mkstemp(prefix=".NAME.", suffix=".tmp")


def make_private_dir(path: Union[str, Path]) -> Path:
    """Create folder ``path`` readable by its owner only (its parents as the umask makes them).

    The last component is never followed: a symbolic link there (or anything but a folder) raises
    `OSError` (``ELOOP``, ``ENOTDIR``), so a planted link cannot redirect what is written there.
    An existing folder is made owner-only.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)  # the parents are the user's choice
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except NotADirectoryError as err:  # what Linux says of a link opened this way
        if os.path.islink(path):
            raise OSError(errno.ELOOP, "it is a symbolic link", str(path)) from err
        raise
    try:
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    return path


class AtomicFile:
    """A binary file that appears at ``path`` only when closed after every write succeeded.

    Writes go to a temporary file beside ``path`` (owner-only); `close` fsyncs what is not on disk
    yet and moves the file into place with `os.replace`. A crash at any moment leaves the previous
    file or the new one, never part of one; a failed write or fsync removes the temporary file and
    leaves the previous file as it was.

    One fsync per file, placed where pyarrow's copy sees its error: pyarrow copies in chunks of a
    whole number of MiB and reports errors from ``write``, not from ``close``. So a write whose
    length is not a multiple of `SYNC_UNIT` (the last chunk of a copy, or any write of another
    writer) is fsynced before it returns; a full disk or an I/O error fails that write, and the
    copy (Ray's checkpoint upload) fails. Only a file whose size is an exact multiple of 1 MiB is
    fsynced at `close`, where a copy drops the error: the file then never appears.
    """

    def __init__(self, path: Union[str, Path]) -> None:
        self.path = str(path)
        directory, name = os.path.split(self.path)
        fd, self._tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory or ".")
        self._file = os.fdopen(fd, "wb", buffering=0)
        self._unsynced = False

    @property
    def closed(self) -> bool:
        return self._file.closed

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._file.tell()

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        written = 0
        try:
            while written < len(view):  # an unbuffered write may take only part of what it is given
                written += self._file.write(view[written:])
            self._unsynced = self._unsynced or written > 0
            if written % SYNC_UNIT:  # the last chunk of a pyarrow copy: see the class docstring
                self._sync()
            return written
        except BaseException:
            self._discard()
            raise

    def flush(self) -> None:
        if self._unsynced:
            self._sync()

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            self.flush()
            self._file.close()
            os.replace(self._tmp, self.path)
        except BaseException:
            self._discard()
            raise

    def _sync(self) -> None:
        os.fsync(self._file.fileno())
        self._unsynced = False

    def _discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        try:
            os.unlink(self._tmp)
        except FileNotFoundError:
            pass

    def __enter__(self) -> "AtomicFile":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif not self._file.closed:
            self._discard()


def place_copy(source: Union[str, Path], target: Union[str, Path], link: bool = False) -> None:
    """Put a copy of file ``source`` at ``target`` as `AtomicFile` would: on disk, and whole or not at all.

    With ``link=True`` (for a ``source`` nobody writes to again) the copy is a hard link to ``source``,
    made under a temporary name beside ``target`` and moved into place, after one fsync of ``source``:
    no data is copied. Where links are not possible (another filesystem, or one without them) the data
    is copied through an `AtomicFile`. Errors are raised, and leave any previous ``target`` as it was.
    """
    source, target = str(source), str(target)
    if link:
        fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        directory, name = os.path.split(target)
        temporary = os.path.join(directory or ".", f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            os.link(source, temporary)
        except OSError:
            pass  # copied below
        else:
            try:
                os.replace(temporary, target)
            except BaseException:
                os.unlink(temporary)
                raise
            return
    with open(source, "rb") as reader, AtomicFile(target) as writer:
        while chunk := reader.read(64 * SYNC_UNIT):
            writer.write(chunk)


def atomic_write(path: Union[str, Path], data: Union[bytes, str]) -> None:
    """Write ``data`` to ``path`` through an `AtomicFile`, then fsync the folder (the rename is durable)."""
    path = Path(path)
    with AtomicFile(path) as handle:
        handle.write(data.encode() if isinstance(data, str) else data)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove_abandoned_temp_files(folder: Union[str, Path]) -> None:
    """Delete the temporary files of `AtomicFile` writes a killed process left under ``folder``, and the
    `STAGING_FOLDER` s of trials killed while they wrote a checkpoint.

    Call it only while holding the folder's lock (`lightning_bohb.session.lock.SessionLock` does):
    a live writer's temporary files look the same. Symbolic links are not followed.
    """
    for directory, folders, names in os.walk(folder):
        if STAGING_FOLDER in folders:
            folders.remove(STAGING_FOLDER)
            shutil.rmtree(os.path.join(directory, STAGING_FOLDER), ignore_errors=True)
        for name in names:
            if _TEMP_NAME.fullmatch(name):
                Path(directory, name).unlink(missing_ok=True)


def read_bounded(path: Union[str, Path], limit: int, binary: bool = False, follow_link: bool = False) -> Any:
    """A file's content, read without hanging or (unless ``follow_link``) following a link at its last component.

    Raises `FileNotFoundError` when it is missing, `OSError` when it cannot be opened, and
    `ValueError` (the message says why) when it is not a regular file (a FIFO, a device), is a
    symbolic link, is larger than ``limit`` bytes or (unless ``binary``) is not UTF-8 text.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow_link:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        if err.errno == errno.ELOOP or (err.errno == errno.ENOTDIR and os.path.islink(path)):
            raise ValueError("it is a symbolic link") from None
        raise
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("it is not a regular file")
        if info.st_size > limit:
            raise ValueError(f"it is {info.st_size} bytes, more than the {limit} bytes allowed")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"it is more than the {limit} bytes allowed")
    if binary:
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"it is not UTF-8 text (byte {err.start})") from None


def parse_json(data: Union[bytes, str]) -> Any:
    """JSON read as data: `ValueError` (the message says why) for anything but JSON text, also for one
    nested too deeply for Python's parser (1,000 bytes of ``[`` raise `RecursionError` there)."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("it is nested too deeply") from None


def read_json(path: Union[str, Path], limit: int, follow_link: bool = False) -> Any:
    """A file's JSON content, read by `read_bounded` (no hang on a FIFO, no link followed, at most
    ``limit`` bytes) and parsed by `parse_json`: `OSError` or `ValueError`, nothing else."""
    return parse_json(read_bounded(path, limit, binary=True, follow_link=follow_link))
