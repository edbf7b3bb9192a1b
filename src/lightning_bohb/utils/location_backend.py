"""Where experiments live below the session layer: a local folder, or a URI in object storage (``s3://bucket/
prefix``, ``gs://...``, any URI that ``pyarrow.fs.FileSystem.from_uri`` opens).

`ConfigDrivenOptimizer` runs a search without a session, so the core layer needs the folder-or-URI choice too:
this module makes it for an experiment's location, its folder and a file written into it. It is the lower half
of the session backend (`lightning_bohb.session.backend`, which builds a session's on it); nothing else tells
a folder from a URI (`tests/unit/test_layers.py` reads the source to check).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional, Union

from lightning_bohb.utils.files import atomic_write
from lightning_bohb.utils.layout import DEFAULT_EXPERIMENT_DIR, DEFAULT_EXPERIMENT_NAME
from lightning_bohb.utils.uris import join_uri

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def is_uri(location: Any) -> bool:
    """Whether ``location`` names object storage (a ``scheme://`` other than ``file://``)."""
    match = _SCHEME.match(str(location))
    return match is not None and match.group(1).lower() != "file"


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
