"""The session state as plain data (format `FORMAT_VERSION`): what ``session_state.json`` holds.

The study (base config, search space), the `OptimizationConfig`'s fields, the strategy's settings and the
LightningCLI arguments, with classes named by their import path, so that a later release reads it (and
`lightning_bohb.session.migrations` brings an older format up to this one). An object is written as its class
path and the constructor arguments that rebuild it: its attributes, when each is a parameter of its class and
the object rebuilt from them equals it. Only an object that cannot be written so is pickled (cloudpickle,
base64, inside the JSON): one of a class defined in the user's own script (``__main__``) or one whose state
is not its constructor's arguments; never an object of this package. Such a pickle is read only after the
session folder's trust check (`lightning_bohb.session.trust`), as Ray's own pickles are.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
import inspect
import re
from typing import Any, Dict, Optional

from lightning_bohb.core.optimization_config import OptimizationConfig
from lightning_bohb.exceptions import SessionError

FORMAT_VERSION = 1
"""Raised by one, with a migration from the one before (`lightning_bohb.session.migrations`), whenever what
``session_state.json`` holds changes: a field renamed or removed, a class moved. Format 0 is the pickled
``session_state.pkl`` of 0.1.0."""
TYPE_KEY = "$type"
_LIBRARY = "lightning_bohb"
_MISSING = object()
_VERSION_TEXT = re.compile(r"[0-9A-Za-z.+!_-]{1,40}")


def encode(value: Any) -> Any:
    """``value`` as JSON data: plain values as they are, tuples, other dicts, classes and objects tagged
    with `TYPE_KEY` (see the module docstring)."""
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return value
    if kind is list:
        return [encode(item) for item in value]
    if kind is dict and TYPE_KEY not in value and all(type(key) is str for key in value):
        return {key: encode(item) for key, item in value.items()}
    if kind is dict:
        return {TYPE_KEY: "dict", "items": [[encode(key), encode(item)] for key, item in value.items()]}
    if kind is tuple:
        return {TYPE_KEY: "tuple", "items": [encode(item) for item in value]}
    if isinstance(value, type) and _class_path(value):
        return {TYPE_KEY: "class", "class_path": _class_path(value)}
    path = _class_path(kind)
    init_args = _init_args(value) if path else None
    if init_args is not None:
        return {TYPE_KEY: "object", "class_path": path, "init_args": init_args}
    if kind.__module__.split(".")[0] == _LIBRARY:
        raise TypeError(f"{kind.__module__}.{kind.__qualname__} is not plain data: its attributes must be its constructor's arguments")
    import cloudpickle

    data = base64.b64encode(cloudpickle.dumps(value)).decode("ascii")
    return {TYPE_KEY: "pickle", "class_path": f"{kind.__module__}.{kind.__qualname__}", "data": data}


def decode(data: Any) -> Any:
    """The value `encode` wrote. Imports the classes it names and unpickles its pickles: only after the
    trust check. Raises ImportError or AttributeError for a class that is gone, other errors for bad data."""
    if isinstance(data, list):
        return [decode(item) for item in data]
    if not isinstance(data, dict):
        return data
    kind = data.get(TYPE_KEY)
    if kind is None:
        return {key: decode(item) for key, item in data.items()}
    if kind == "dict":
        return {decode(key): decode(item) for key, item in data["items"]}
    if kind == "tuple":
        return tuple(decode(item) for item in data["items"])
    if kind == "class":
        return import_path(data["class_path"])
    if kind == "object":
        return import_path(data["class_path"])(**{str(key): decode(item) for key, item in data["init_args"].items()})
    if kind == "pickle":
        import cloudpickle

        return cloudpickle.loads(base64.b64decode(data["data"], validate=True))
    raise ValueError(f"an entry has the unknown {TYPE_KEY} {kind!r}")


def import_path(class_path: Any) -> Any:
    """The class ``package.module.Class`` names (ImportError or AttributeError when it is gone)."""
    module, _, name = str(class_path).rpartition(".")
    if not module:
        raise ValueError(f"{class_path!r} is not a class path")
    return getattr(importlib.import_module(module), name)


def _class_path(cls: type) -> Optional[str]:
    """``module.Class`` when that path imports ``cls`` in a later process, else None (``__main__``, nested)."""
    module, name = getattr(cls, "__module__", None), getattr(cls, "__qualname__", "")
    if not isinstance(module, str) or module == "__main__" or "." in name or "<" in name:
        return None
    try:
        found = import_path(f"{module}.{name}")
    except (ImportError, AttributeError, ValueError):
        return None
    return f"{module}.{name}" if found is cls else None


def _init_args(value: Any) -> Optional[Dict[str, Any]]:
    """``value``'s attributes, encoded, when they are its class's constructor arguments and the object rebuilt
    from them has the same attributes (a class default counts for one the object lacks), else None."""
    cls = type(value)
    attributes = getattr(value, "__dict__", None)
    try:
        parameters = {
            name
            for name, parameter in inspect.signature(cls).parameters.items()
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
        }
    except (TypeError, ValueError):
        return None
    if not isinstance(attributes, dict) or not set(attributes) <= parameters:
        return None
    try:
        rebuilt = cls(**attributes)
        names = [*vars(rebuilt), *(name for name in attributes if name not in vars(rebuilt))]
        if not set(names) <= parameters or any(bool(getattr(value, n, _MISSING) != getattr(rebuilt, n, _MISSING)) for n in names):
            return None
    except Exception:  # a constructor that refuses its own attributes, values that do not compare: not plain
        return None
    return {name: encode(getattr(value, name)) for name in names}


def state_data(state: Any) -> Dict[str, Any]:
    """A `TuneSessionState` as format `FORMAT_VERSION` data."""
    import lightning_bohb

    config = state.optimization_config
    return {
        "format_version": FORMAT_VERSION,
        "written_by": lightning_bohb.__version__,
        "session_id": state.session_id,
        "experiment_name": state.experiment_name,
        "status": str(getattr(state.status, "value", state.status)),
        "started_at": state.started_at,
        "paused_at": list(state.paused_at),
        "resumed_at": list(state.resumed_at),
        "versions": dict(state.versions),
        "fingerprint": encode(state.fingerprint),
        "script": state.script,
        "sys_path": list(state.sys_path),
        "base_config_source": state.base_config_source,
        "base_config": encode(state.base_config),
        "optimization_config": {field.name: encode(getattr(config, field.name)) for field in dataclasses.fields(config)},
        "search_space": encode(state.search_space),
        "strategy": encode(state.strategy),
        "cli_arguments": encode(state.cli_arguments),
    }


_FIELDS: Dict[str, tuple] = {
    "session_id": (str,),
    "experiment_name": (str,),
    "status": (str,),
    "started_at": (str,),
    "paused_at": (list,),
    "resumed_at": (list,),
    "versions": (dict,),
    "fingerprint": (dict,),
    "script": (str, type(None)),
    "sys_path": (list,),
    "base_config_source": (str, type(None)),
    "base_config": (dict,),
    "optimization_config": (dict,),
    "search_space": (dict,),
    "strategy": (dict,),
    "cli_arguments": (dict,),
}


def data_problem(data: Dict[str, Any]) -> Optional[str]:
    """What is wrong with the fields of format `FORMAT_VERSION` data, else None."""
    for name, kinds in _FIELDS.items():
        if not isinstance(data.get(name), kinds):
            return f"`{name}` is {type(data.get(name)).__name__}, not {' or '.join(kind.__name__ for kind in kinds)}"
    for name in ("paused_at", "resumed_at", "sys_path"):
        if not all(isinstance(item, str) for item in data[name]):
            return f"`{name}` holds something other than text"
    if not data["session_id"].strip() or "/" in data["session_id"]:
        return f"`session_id` is {data['session_id']!r}"
    return None


def state_fields(data: Dict[str, Any]) -> Dict[str, Any]:
    """The `TuneSessionState` fields of checked (`data_problem`) format `FORMAT_VERSION` data, its classes
    imported and its objects rebuilt (`decode`)."""
    fields = {name: data[name] for name in _FIELDS}
    for name in ("fingerprint", "base_config", "search_space", "strategy", "cli_arguments"):
        fields[name] = decode(data[name])
    fields["optimization_config"] = OptimizationConfig(**decode(data["optimization_config"]))
    return fields


def check_version(data: Dict[str, Any], path: Any) -> int:
    """The format version of state ``data``; `SessionError` (the release to install) for a newer one."""
    version = data.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise SessionError(f"The session state {path} is corrupt (`format_version` is {str(version)[:40]!r}).")
    if version > FORMAT_VERSION:
        import lightning_bohb

        writer = data.get("written_by")
        release = writer if isinstance(writer, str) and _VERSION_TEXT.fullmatch(writer) else None
        install = f"pip install 'lightning-bohb>={release}'" if release else "pip install -U lightning-bohb"
        raise SessionError(
            f"The session state {path} has format version {version}, written by lightning_bohb {release or '(a newer release)'}; "
            f"this lightning_bohb {lightning_bohb.__version__} reads format versions up to {FORMAT_VERSION}. "
            f"Install lightning_bohb {release or 'of that release'} or newer to resume it: {install}"
        )
    return version
