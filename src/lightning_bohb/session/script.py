"""The user's script and the import path a session records, so that a resume (on any machine, from any
folder) imports the user's classes as the first run did, in the driver and in Ray's workers."""

from __future__ import annotations

import os
import sys
from typing import List, Optional, Sequence

from lightning_bohb.utils.imports import pythonpath_entries


def session_import_path(import_paths: Sequence[str], script: Optional[str]) -> List[str]:
    """The import path a session records and restores on resume (absolute folders, in order): the folders
    given (a study's), the script's folder, the working folder and the folders of ``PYTHONPATH``."""
    folders = [*import_paths, *(p for p in (os.path.dirname(script) if script else None, os.getcwd()) if p), *pythonpath_entries()]
    return list(dict.fromkeys(os.path.abspath(p) for p in folders))


def user_script() -> Optional[str]:
    """The user's script when the session was started as ``python script.py``, else ``None``."""
    argv0 = sys.argv[0] if sys.argv else ""
    if not argv0.endswith(".py") or not os.path.isfile(argv0):
        return None
    script = os.path.abspath(argv0)
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return None if script.startswith(package_dir + os.sep) else script
