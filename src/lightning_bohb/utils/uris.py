"""Locations: an ``experiment_dir`` that is a local folder, or a URI in object storage (``s3://bucket/prefix``,
``gs://...``, any URI that ``pyarrow.fs.FileSystem.from_uri`` opens).

Below the session layer (`ConfigDrivenOptimizer` runs a search without a session), this module is the one
place that tells a folder from a URI; a session's own backend is `lightning_bohb.session.backend`.
A URI keeps its query (``?endpoint_override=...&region=...``, pyarrow's options) when a path is
joined to it, so every URI built from the user's one reaches the same store.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any, Optional, Tuple, Union

from lightning_bohb.utils.files import atomic_write
from lightning_bohb.utils.layout import DEFAULT_EXPERIMENT_DIR, DEFAULT_EXPERIMENT_NAME

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def is_uri(location: Any) -> bool:
    """Whether ``location`` names object storage (a ``scheme://`` other than ``file://``)."""
    match = _SCHEME.match(str(location))
    return match is not None and match.group(1).lower() != "file"


def split_query(uri: str) -> Tuple[str, str]:
    """``(uri without its query, "?query" or "")``."""
    head, mark, query = uri.partition("?")
    return head, mark + query


def join_uri(uri: str, *parts: str) -> str:
    """``uri`` with ``parts`` appended to its path, its query kept."""
    head, query = split_query(uri)
    return posixpath.join(head.rstrip("/"), *parts) + query


def uri_name(uri: str) -> str:
    """The last component of ``uri``'s path."""
    return posixpath.basename(split_query(uri)[0].rstrip("/"))


def uri_parent(uri: str) -> str:
    """``uri`` without its last path component, its query kept."""
    head, query = split_query(uri)
    return posixpath.dirname(head.rstrip("/")) + query


def experiment_location(experiment_dir: Optional[Union[str, Path]], experiment_name: Optional[str]) -> str:
    """``<experiment_dir>/<experiment_name>`` (defaults filled in): a URI as the user wrote it, or an absolute folder."""
    name = experiment_name or DEFAULT_EXPERIMENT_NAME
    if is_uri(experiment_dir):
        return join_uri(str(experiment_dir), name)
    return str(Path(experiment_dir or DEFAULT_EXPERIMENT_DIR).expanduser().resolve() / name)


def prepare_location(location: Union[str, Path]) -> str:
    """``location`` ready to write into: a folder is made (with its parents); a URI needs nothing."""
    if not is_uri(location):
        Path(location).mkdir(parents=True, exist_ok=True)
    return str(location)


def write_at(location: Union[str, Path], name: str, text: str) -> str:
    """Write ``text`` as file ``name`` into the folder or URI ``location`` (replaced whole); where it is."""
    if not is_uri(location):
        path = Path(location) / name
        atomic_write(path, text)
        return str(path)
    import pyarrow.fs

    filesystem, folder = pyarrow.fs.FileSystem.from_uri(str(location))
    with filesystem.open_output_stream(f"{folder.rstrip('/')}/{name}") as out:
        out.write(text.encode())
    return join_uri(str(location), name)
