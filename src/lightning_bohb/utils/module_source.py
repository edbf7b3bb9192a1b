"""A module's source read without running it: where ``import`` would find it, what it defines, a class's source.

Importing a user's model module imports torch and Lightning (seconds); a class path that names no
module, or a module without that class, or a class whose code changed since a session started, can
be told from the files alone, in milliseconds. Every function here answers only what the files
settle: ``None`` means "cannot tell without importing", and the caller then imports as usual.

A module is looked up with the finders of ``sys.meta_path``, as ``import`` looks it up, given each
parent package's search path, without running any package's ``__init__``. Only a missing top-level
module is reported as missing for sure: a package's ``__init__`` may change where its submodules are.
"""

from __future__ import annotations

import ast
import hashlib
import os
import sys
from dataclasses import dataclass
from typing import Any, Iterable, List, Optional, Sequence, Set

from lightning_bohb.utils.files import read_bounded

MAX_SOURCE_BYTES = 8 * 2**20
_SKIPPED_FOLDERS = {"__pycache__", "node_modules", "site-packages", "dist-packages", "build", "dist"}


@dataclass(frozen=True)
class ModuleSource:
    """Where ``import name`` would load the module from."""

    name: str
    file: Optional[str]
    """Its ``.py`` file (``__init__.py`` for a package); None for a module without one (compiled, namespace)."""

    @property
    def is_package(self) -> bool:
        return self.file is not None and os.path.basename(self.file) == "__init__.py"

    @property
    def root(self) -> Optional[str]:
        """The folder that ``sys.path`` needs for this import name (``/src`` for ``/src/pkg/mod.py``)."""
        return import_root(self.name, self.file)


class _Missing:
    """`locate` found for sure that nothing of that name can be imported."""


MISSING = _Missing()


def locate(name: str) -> Any:
    """A `ModuleSource`, `MISSING` (no finder knows the top-level module), or None (cannot tell)."""
    module = sys.modules.get(name)
    if module is not None:
        return ModuleSource(name, _source_file(getattr(module, "__file__", None)))
    parts = name.split(".")
    search_path: Optional[Sequence[str]] = None
    spec: Any = None
    for depth in range(1, len(parts) + 1):
        prefix = ".".join(parts[:depth])
        loaded = sys.modules.get(prefix)
        if loaded is not None:
            spec, search_path = getattr(loaded, "__spec__", None), getattr(loaded, "__path__", None)
        else:
            spec = _find_spec(prefix, search_path)
            if spec is None:
                return MISSING if depth == 1 else None
            search_path = spec.submodule_search_locations
        if depth < len(parts) and search_path is None:
            return None  # not a package: ``import`` would fail, but the parent's code may still run first
    origin = getattr(spec, "origin", None) if spec is not None else None
    return ModuleSource(name, _source_file(origin if getattr(spec, "has_location", False) else None))


def _find_spec(name: str, path: Optional[Sequence[str]]) -> Any:
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        try:
            spec = find_spec(name, path)
        except Exception:  # a finder that needs the parent imported: not for this lookup
            continue
        if spec is not None:
            return spec
    return None


def _source_file(origin: Optional[str]) -> Optional[str]:
    return os.path.abspath(origin) if origin and origin.endswith(".py") and os.path.isfile(origin) else None


def import_root(name: str, file: Optional[str]) -> Optional[str]:
    """The folder holding the top-level package (or module) of ``name`` whose source is ``file``."""
    if not file:
        return None
    folder = os.path.dirname(os.path.abspath(file))
    levels = name.count(".") + (1 if os.path.basename(file) == "__init__.py" else 0)
    for _ in range(levels):
        folder = os.path.dirname(folder)
    return folder


def _parse(file: str) -> Optional[ast.Module]:
    try:
        return ast.parse(read_bounded(file, MAX_SOURCE_BYTES, follow_link=True), filename=file)
    except (OSError, ValueError, SyntaxError, RecursionError):
        return None


def top_level_names(source: ModuleSource) -> Optional[Set[str]]:
    """The names a module binds when it runs (classes, functions, assignments, imports), or None when its
    source cannot say for sure (no source, a package, ``import *``, a module ``__getattr__``, ``globals()``,
    ``setattr``, ``exec`` at module level)."""
    if source.file is None or source.is_package:  # a package's attributes include submodules imported elsewhere
        return None
    tree = _parse(source.file)
    if tree is None:
        return None
    names: Set[str] = set()
    for node in _statements(tree.body):
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name == "__getattr__":
                return None
            names.add(node.name)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if any(alias.name == "*" for alias in node.names):
                return None
            names.update(alias.asname or alias.name.split(".")[0] for alias in node.names)
            continue
        if isinstance(node, ast.ExceptHandler):
            names.update([node.name] if node.name else [])
            continue
        if type(node).__name__ == "Match":  # its patterns bind names no ast.Name shows
            return None
        for part in _own_expressions(node):
            for sub in ast.walk(part):
                if isinstance(sub, ast.Name):
                    if sub.id in _DYNAMIC:
                        return None
                    if isinstance(sub.ctx, ast.Store):
                        names.add(sub.id)
    return names


_DYNAMIC = {"globals", "vars", "setattr", "exec", "__getattr__"}
"""Names whose use at module level may bind names no statement shows."""


def _own_expressions(node: ast.AST) -> List[ast.AST]:
    """The parts of a module-level statement that run at module level, less the statements it holds."""
    if isinstance(node, (ast.If, ast.While)):
        return [node.test]
    if isinstance(node, (ast.For, ast.AsyncFor)):
        return [node.target, node.iter]
    if isinstance(node, (ast.With, ast.AsyncWith)):
        return list(node.items)
    if isinstance(node, ast.Try):
        return []
    return [node]


def _statements(body: Iterable[ast.AST]) -> Iterable[ast.AST]:
    """The statements of ``body`` and of the blocks in it (if, try, for, while, with; not functions or
    classes), and the ``except`` handlers, in order."""
    for node in body:
        yield node
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for field in ("body", "orelse", "finalbody"):
            yield from _statements(getattr(node, field, []))
        for handler in getattr(node, "handlers", []):
            yield handler
            yield from _statements(handler.body)


def class_source_hash(file: str, qualname: str) -> Optional[str]:
    """A hash of the source of class ``qualname`` in ``file`` (from its first decorator to its last line),
    read without importing; None when the file has no such class or cannot be parsed."""
    tree = _parse(file)
    if tree is None:
        return None
    body: Sequence[ast.AST] = tree.body
    found: Optional[ast.ClassDef] = None
    for part in qualname.split("."):
        found = None
        for node in _statements(body):
            if isinstance(node, ast.ClassDef) and node.name == part:
                found = node  # the last definition wins, as when the module runs
        if found is None:
            return None
        body = found.body
    assert found is not None
    start = min([found.lineno] + [decorator.lineno for decorator in found.decorator_list])
    try:
        lines = read_bounded(file, MAX_SOURCE_BYTES, follow_link=True).splitlines(keepends=True)
    except (OSError, ValueError):
        return None
    text = "".join(lines[start - 1 : found.end_lineno])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def folders_holding(module: str, roots: Iterable[str], max_folders: int = 3000, max_depth: int = 4) -> List[str]:
    """Folders under the first of ``roots`` that has any (each searched ``max_depth`` levels down,
    ``max_folders`` in all; never ``/``) that hold the top-level module or package of ``module``: what
    to put on ``PYTHONPATH`` to import it."""
    top = module.split(".")[0]
    found: List[str] = []
    seen = 0
    for root in dict.fromkeys(os.path.abspath(r) for r in roots if r and os.path.isdir(r)):
        if found:
            return found  # the nearest root that has it
        if os.path.dirname(root) == root:
            continue  # not the whole file system
        base_depth = root.rstrip(os.sep).count(os.sep)
        for folder, subfolders, files in os.walk(root):
            seen += 1
            if seen > max_folders:
                return found
            if f"{top}.py" in files or os.path.isfile(os.path.join(folder, top, "__init__.py")):
                if folder not in found:
                    found.append(folder)
            if folder.count(os.sep) - base_depth >= max_depth:
                subfolders[:] = []
            else:
                subfolders[:] = sorted(d for d in subfolders if not d.startswith(".") and d not in _SKIPPED_FOLDERS and "venv" not in d)
    return found
