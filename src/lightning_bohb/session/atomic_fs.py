"""The local filesystem Ray Tune writes a session through, with every file written atomically.

Ray Tune stages its experiment snapshot (``experiment_state-*.json``, searcher and callback state)
and each trial's files on the driver, then copies them into the session with plain writes that
truncate the previous file first. A ``kill -9`` during that copy would leave a half-written
snapshot that no resume can read. Through this filesystem each file is written to a temporary
file beside it, flushed, and moved into place with `os.replace`: a crash leaves the previous
file or the new one, never part of one. A write that fails (a full disk) leaves the previous
file as it was.
"""

from __future__ import annotations

import os
import tempfile

from fsspec.implementations.local import LocalFileSystem


class AtomicLocalFileSystem(LocalFileSystem):
    """fsspec's local filesystem, except that files opened for writing are replaced atomically."""

    def _open(self, path, mode="rb", block_size=None, **kwargs):
        if mode == "wb":  # what pyarrow opens for every file it writes
            path = self._strip_protocol(path)
            if self.auto_mkdir:
                self.makedirs(self._parent(path), exist_ok=True)
            return AtomicFile(path)
        return super()._open(path, mode=mode, block_size=block_size, **kwargs)


class AtomicFile:
    """A file that appears at ``path`` only when closed after every write succeeded."""

    def __init__(self, path: str) -> None:
        self.path = path
        directory, name = os.path.split(path)
        fd, self._tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory or ".")
        self._file = os.fdopen(fd, "wb", buffering=0)  # a full disk fails the write, not a later flush

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
        try:
            return self._file.write(data)
        except BaseException:
            self._discard()
            raise

    def flush(self) -> None:
        pass  # unbuffered: every write is already in the file

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            os.fsync(self._file.fileno())
        except BaseException:
            self._discard()
            raise
        self._file.close()
        os.replace(self._tmp, self.path)

    def _discard(self) -> None:
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


def atomic_storage_filesystem():
    """A ``pyarrow.fs.FileSystem`` over `AtomicLocalFileSystem`, for ``tune.run(storage_filesystem=...)``."""
    import pyarrow.fs

    return pyarrow.fs.PyFileSystem(pyarrow.fs.FSSpecHandler(AtomicLocalFileSystem(auto_mkdir=True)))
