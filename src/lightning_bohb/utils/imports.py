"""Import a class named by a dotted path, list the init arguments a class accepts, extend the import path."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Iterable, Optional

from lightning_bohb.exceptions import ConfigError


def import_class(class_path: str, where: str = "class_path") -> type:
    """Import ``package.module.Class``; a clear `ConfigError` if it does not import."""
    module_name, _, attr = str(class_path).rpartition(".")
    if not module_name:
        raise ConfigError(f"`{where}` is {class_path!r}; use the full import path, e.g. `my_pkg.models.MyModel`.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(
            f"`{where}` is {class_path!r}, but module {module_name!r} does not import: {err}. "
            "Install the package or run from the folder that holds it."
        ) from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"`{where}` is {class_path!r}, but {module_name!r} has no attribute {attr!r}.") from None


def init_parameters(cls: type) -> Optional[list]:
    """Names ``cls.__init__`` accepts, or ``None`` when it takes ``**kwargs``."""
    params = inspect.signature(cls.__init__).parameters.values()  # type: ignore[misc]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.name != "self" and p.kind is not inspect.Parameter.VAR_POSITIONAL]


def extend_import_path(paths: Iterable[str], first: bool = True) -> None:
    """Put the existing folders among ``paths`` on ``sys.path`` (first, in order; or last), once each.

    The one place the import path grows: a study's folder, a resumed session's recorded folders,
    and in each trial the driver's path (so user classes the driver imports also import there).
    """
    folders = [str(p) for p in paths if p and os.path.isdir(str(p)) and str(p) not in sys.path]
    folders = list(dict.fromkeys(folders))
    if first:
        sys.path[:0] = folders
    else:
        sys.path.extend(folders)
