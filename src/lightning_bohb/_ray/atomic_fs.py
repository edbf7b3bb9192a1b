"""The local filesystem Ray Tune writes a session through, with every file written atomically.

Ray Tune stages its experiment snapshot (``experiment_state-*.json``, searcher and callback state)
and each trial's files on the driver, then copies them into the session with plain writes that
truncate the previous file first. A ``kill -9`` during that copy would leave a half-written
snapshot that no resume can read. Through this filesystem each file is written to a temporary
file beside it, flushed, and moved into place with `os.replace`: a crash leaves the previous
file or the new one, never part of one. A write that fails (a full disk) leaves the previous
file as it was.

A copy from this filesystem to itself (Ray's upload of a checkpoint reported with this filesystem)
is made by `cp_file`, with the same rule; a file under a `STAGING_FOLDER` (where the report callback
writes a trial checkpoint, inside the trial's folder) is hard-linked into place after one fsync
instead of copied, so a checkpoint's data is written to disk once.
"""

from __future__ import annotations

import os

from fsspec.implementations.local import LocalFileSystem

from lightning_bohb.utils.files import STAGING_FOLDER, AtomicFile, place_copy


class AtomicLocalFileSystem(LocalFileSystem):
    """fsspec's local filesystem, except that files opened for writing are `AtomicFile` objects
    (owner-only, like every session file) and the folders it makes are owner-only too."""

    links_staged_files = True
    """Copies of files in a `STAGING_FOLDER` are hard links (what the report callback looks for)."""

    def makedirs(self, path, exist_ok=False):
        path = self._strip_protocol(path)
        if os.path.isdir(path):
            if not exist_ok:
                raise FileExistsError(path)
            return
        missing = []
        while path and not os.path.exists(path):
            missing.append(path)
            path = os.path.dirname(path)
        for folder in reversed(missing):
            try:
                os.mkdir(folder, 0o700)
            except FileExistsError:  # made meanwhile by another writer
                if not os.path.isdir(folder):
                    raise

    def _open(self, path, mode="rb", block_size=None, **kwargs):
        if mode == "wb":  # what pyarrow opens for every file it writes
            path = self._strip_protocol(path)
            if self.auto_mkdir:
                self.makedirs(self._parent(path), exist_ok=True)
            return AtomicFile(path)
        return super()._open(path, mode=mode, block_size=block_size, **kwargs)

    def cp_file(self, path1, path2, **kwargs):
        source, target = self._strip_protocol(path1), self._strip_protocol(path2)
        if self.auto_mkdir:
            self.makedirs(self._parent(target), exist_ok=True)
        if os.path.isdir(source):
            self.makedirs(target, exist_ok=True)
        elif os.path.isfile(source):
            place_copy(source, target, link=os.path.basename(os.path.dirname(source)) == STAGING_FOLDER)
        else:
            raise FileNotFoundError(source)


def atomic_storage_filesystem():
    """A ``pyarrow.fs.FileSystem`` over `AtomicLocalFileSystem`, for ``tune.run(storage_filesystem=...)``."""
    import pyarrow.fs

    return pyarrow.fs.PyFileSystem(pyarrow.fs.FSSpecHandler(AtomicLocalFileSystem(auto_mkdir=True)))
