"""Storage URIs: an ``experiment_dir`` in object storage (``s3://bucket/prefix``, ``gs://...``, any URI
that ``pyarrow.fs.FileSystem.from_uri`` opens) instead of a local folder.

A URI keeps its query (``?endpoint_override=...&region=...``, pyarrow's options) when a path is
joined to it, so every URI built from the user's one reaches the same store.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any, Tuple

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
