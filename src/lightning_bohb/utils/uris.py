"""Storage URIs as strings (``s3://bucket/prefix?endpoint_override=...``): joined, split, named.

Whether a location is a URI at all is `lightning_bohb.utils.location_backend`'s to say. A URI keeps its
query (``?endpoint_override=...&region=...``, pyarrow's options) when a path is joined to it, so every URI
built from the user's one reaches the same store.
"""

from __future__ import annotations

import posixpath
from typing import Tuple


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
