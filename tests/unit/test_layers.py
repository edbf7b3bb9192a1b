"""The package's layers import downward only, read from the source of every module.

cli -> session -> core -> callbacks -> pause -> _ray -> utils (exceptions and log sit with utils).
Only the session, the pause coordinator and the strategies reach Ray's private internals (`_ray`).
"""

import ast
import re
from pathlib import Path

import lightning_bohb

PACKAGE = Path(lightning_bohb.__file__).parent
LAYERS = ["utils", "_ray", "pause", "callbacks", "core", "session", "cli"]
BOTTOM = {"exceptions", "log", "utils"}
RAY_PATCH_USERS = ("lightning_bohb.session.", "lightning_bohb.pause.coordinator", "lightning_bohb.core.strategies", "lightning_bohb._ray.")


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        yield "lightning_bohb." + ".".join(parts), parts[0], path


def _imports(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def _layer(top):
    return -1 if top in BOTTOM else LAYERS.index(top) if top in LAYERS else None


def test_layers_import_downward_only():
    upward = []
    for name, top, path in _modules():
        mine = _layer(top)
        if mine is None:
            continue  # __init__, __main__
        for imported in _imports(path):
            parts = imported.split(".")
            if parts[0] != "lightning_bohb" or len(parts) < 2:
                continue
            theirs = _layer(parts[1])
            if theirs is not None and theirs > mine:
                upward.append(f"{name} imports {imported}")
    assert not upward, upward


def test_only_the_session_the_coordinator_and_the_strategies_use_ray_patches():
    users = {
        name
        for name, _, path in _modules()
        for imported in _imports(path)
        if imported.startswith("lightning_bohb._ray")
    }
    assert users and all(name.startswith(RAY_PATCH_USERS) for name in users), users


def test_nothing_changes_the_interpreter_at_import():
    offenders = []
    for name, _, path in _modules():
        tree = ast.parse(path.read_text())
        for node in tree.body:  # statements run at import (definitions only define)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            text = ast.unparse(node)
            if any(marker in text for marker in ("sys.excepthook", "filterwarnings", ".setLevel(", "propagate")):
                offenders.append(f"{name}: {text[:80]}")
    assert not offenders, offenders


BACKEND_MODULES = {"lightning_bohb.session.backend", "lightning_bohb.utils.location_backend"}
"""The session backend (its factories pick a folder or a store) and, below the session layer, the locations."""
_FOLDER_OR_URI = re.compile(r"\bis_uri\(|\bstore is (not )?None\b|\bstore\s*(==|!=)\s*None\b")


def test_only_the_backend_tells_a_folder_from_a_uri():
    branches = [
        f"{name}:{number}: {line.strip()}"
        for name, _, path in _modules()
        if name not in BACKEND_MODULES
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if _FOLDER_OR_URI.search(line)
    ]
    assert not branches, branches
