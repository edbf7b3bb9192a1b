"""Import a class named by a dotted path, list the init arguments a class accepts, extend the import path."""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import sys
from typing import Iterable, List, Optional

from lightning_bohb.exceptions import ConfigError
from lightning_bohb.utils.module_source import MISSING, ModuleSource, folders_holding, locate, top_level_names


def import_class(class_path: str, where: str = "class_path") -> type:
    """Import ``package.module.Class``; a clear `ConfigError` if it does not import."""
    module_name, _, attr = str(class_path).rpartition(".")
    if not module_name:
        raise ConfigError(f"`{where}` is {class_path!r}; use the full import path, e.g. `my_pkg.models.MyModel`.")
    problem = import_problem(str(class_path))  # before the module's own imports (torch, Lightning: seconds)
    if problem:
        raise ConfigError(f"`{where}` is {class_path!r}, but {problem}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(
            f"`{where}` is {class_path!r}, but module {module_name!r} does not import: {err}. "
            f"{module_fix(module_name, [os.getcwd()]) if (module_name + '.').startswith(f'{err.name}.') else 'Install what it imports.'}"
        ) from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"`{where}` is {class_path!r}, but {module_name!r} has no attribute {attr!r}.") from None


def import_problem(class_path: str, near: Iterable[str] = ()) -> Optional[str]:
    """Why ``class_path`` cannot be imported, with the fix, told from the files alone (no module runs), or None
    when the files do not settle it (`lightning_bohb.utils.module_source`). ``near``: folders (besides the
    working folder) to look for a missing module in, to name the folder to add to the import path."""
    module_name, _, attr = class_path.rpartition(".")
    if not module_name:
        return None
    found = locate(module_name)
    if found is MISSING:
        top = module_name.split(".")[0]
        return f"no module named {top!r} is on the import path. {module_fix(module_name, [os.getcwd(), *near])}"
    if isinstance(found, ModuleSource):
        names = top_level_names(found)
        if names is not None and attr not in names:
            close = difflib.get_close_matches(attr, sorted(names), n=1)
            hint = f" Did you mean {module_name}.{close[0]}?" if close else ""
            return f"module {module_name!r} ({found.file}) defines no {attr!r}.{hint}"
    return None


def module_fix(module: str, near: Iterable[str]) -> str:
    """What to do about ``module`` not being importable: the folder to add to ``PYTHONPATH`` (looked for
    under ``near``), or the file to look for."""
    top = module.split(".")[0]
    folders = folders_holding(module, near)
    if folders:
        others = f" (also found in: {', '.join(folders[1:3])})" if len(folders) > 1 else ""
        return f"Add the folder that holds it to the import path: PYTHONPATH={folders[0]}{others}"
    return f"Add the folder that holds {top}.py (or the package folder {top}/) to the import path: PYTHONPATH=/that/folder"


def pythonpath_entries() -> List[str]:
    """The folders of ``PYTHONPATH``, absolute."""
    return [os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]


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
