"""`copy_changed`: a folder copied into the session's storage file by file, only what changed, the
experiment state index last.

Tune's loggers append to a trial's files and rewrite its experiment state at every snapshot; a copy
of everything at every snapshot costs what the session holds, this one what changed since the last
copy (`snapshot_journal` keeps what was copied, per TuneController).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import time
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

SNAPSHOT_INDEX_PREFIX = "experiment_state-"
"""Tune's experiment state index (``experiment_state-<time>.json``): which checkpoint each trial resumes from."""

# A file modified this recently may change again within the same tick of the file system's clock
# without changing size (git's "racily clean" index entries): its size and modification time do not
# tell whether it changed since it was copied, its content does.
_RACY_NS = 1_000_000_000
# A trial file up to this size is read once, written into the session from what was read, and remembered
# by a digest of that content while it is racy; a bigger one is copied by Ray, and again while racy.
_DIGEST_MAX_BYTES = 8 << 20

Copied = Dict[str, Tuple[Any, ...]]  # (size, mtime ns) of a settled file; (size, mtime ns, digest) of a racy one


def copy_changed(
    local_path: str,
    fs,
    fs_path: str,
    exclude=None,
    copied: Optional[Copied] = None,
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
    top.sort(key=lambda item: item[0].startswith(SNAPSHOT_INDEX_PREFIX))
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
        index = not prefix and relative.startswith(SNAPSHOT_INDEX_PREFIX)  # rewritten by Tune: published again, last
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
