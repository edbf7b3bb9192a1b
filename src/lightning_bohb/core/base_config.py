"""The LightningCLI-style base config: loading, validation, search-space paths and overrides."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import yaml

from lightning_bohb.exceptions import ConfigError
from lightning_bohb.utils.imports import import_class, init_parameters
from lightning_bohb.utils.plain import to_plain

_TOP_LEVEL_KEYS = ("seed_everything", "trainer", "model", "data", "ckpt_path")


def load_base_config(source: Union[str, Path, Mapping[str, Any]]) -> Dict[str, Any]:
    """Read a LightningCLI-style YAML file (or take the equivalent dict) and validate its shape."""
    if isinstance(source, Mapping):
        config = copy.deepcopy(dict(source))
        origin = "the base config dict"
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"Base config file not found: {str(path)!r}. Pass the path of the YAML you give "
                "`LightningCLI fit --config`, or a dict with the same keys."
            )
        try:
            config = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise ConfigError(f"The base config {str(path)!r} is not valid YAML:\n{err}") from None
        origin = repr(str(path))
    if not isinstance(config, dict):
        raise ConfigError(f"{origin} must be a mapping with `model:` (and optionally `data:`, `trainer:`).")
    unknown = sorted(set(config) - set(_TOP_LEVEL_KEYS))
    if unknown:
        raise ConfigError(
            f"{origin} has unsupported top-level keys {unknown}; supported: {list(_TOP_LEVEL_KEYS)}. "
            "Configure optimizers in your LightningModule's `configure_optimizers`."
        )
    if config.get("model") is None:
        raise ConfigError(f"{origin} has no `model:` section with a `class_path`.")
    for section in ("model", "data"):
        if config.get(section) is not None:
            _check_class_section(config[section], section, origin)
    trainer = config.get("trainer") or {}
    if not isinstance(trainer, dict):
        raise ConfigError(f"`trainer:` in {origin} must be a mapping of Trainer arguments.")
    config["trainer"] = trainer
    return config


def _check_class_section(section: Any, name: str, origin: str) -> None:
    if not isinstance(section, dict) or "class_path" not in section:
        raise ConfigError(f"`{name}:` in {origin} must have `class_path` (and optionally `init_args`).")
    cls = import_class(section["class_path"], where=f"{name}.class_path")
    init_args = section.get("init_args") or {}
    section["init_args"] = init_args
    accepted = init_parameters(cls)
    if accepted is not None:
        unknown = sorted(set(init_args) - set(accepted))
        if unknown:
            raise ConfigError(
                f"`{name}.init_args` has {unknown}, which {section['class_path']} does not accept; "
                f"it accepts {sorted(accepted)}."
            )


def resolve_parameter_paths(base_config: Mapping[str, Any], names: list) -> Dict[str, str]:
    """Map each search-space name to the dotted path in the base config that it sets.

    A dotted name (``model.init_args.lr``, ``trainer.gradient_clip_val``) is used as is after
    validation; a bare name must match exactly one init argument of the model or the datamodule.
    """
    owners = {}
    for section in ("model", "data"):
        if base_config.get(section):
            owners[section] = init_parameters(import_class(base_config[section]["class_path"]))
    trainer_args = _trainer_arguments()
    paths: Dict[str, str] = {}
    for name in names:
        if "." in name:
            _check_dotted(name, base_config, owners, trainer_args)
            paths[name] = name
            continue
        candidates = {s: args if args is not None else list(base_config[s].get("init_args", {})) for s, args in owners.items()}
        matches = [f"{section}.init_args.{name}" for section, args in candidates.items() if name in args]
        if len(matches) == 1:
            paths[name] = matches[0]
        elif not matches:
            known = [f"{s}.init_args.{a}" for s, args in candidates.items() for a in args]
            raise ConfigError(
                f"Search-space name {name!r} matches no init argument of the model or datamodule. "
                f"Use a dotted path, or one of: {known}."
            )
        else:
            raise ConfigError(
                f"Search-space name {name!r} is ambiguous: it matches {matches}. Use one of these dotted paths."
            )
    return paths


def _check_dotted(name: str, base_config: Mapping[str, Any], owners: Mapping[str, Optional[list]], trainer_args: list) -> None:
    parts = name.split(".")
    if parts[0] == "trainer" and len(parts) == 2:
        if parts[1] not in trainer_args:
            raise ConfigError(f"Search-space name {name!r}: Trainer has no argument {parts[1]!r}.")
        return
    if parts[0] in owners and len(parts) >= 3 and parts[1] == "init_args":
        accepted = owners[parts[0]]
        if len(parts) == 3 and accepted is not None and parts[2] not in accepted:
            raise ConfigError(
                f"Search-space name {name!r}: {base_config[parts[0]]['class_path']} has no init argument "
                f"{parts[2]!r}; it accepts {sorted(accepted)}."
            )
        return
    if parts[0] == "seed_everything":
        return
    raise ConfigError(
        f"Search-space name {name!r} is not a path this config has. Use `model.init_args.<arg>`, "
        "`data.init_args.<arg>`, `trainer.<arg>`, or a bare init-argument name."
    )


def _trainer_arguments() -> list:
    from lightning.pytorch import Trainer

    return init_parameters(Trainer) or []


def apply_overrides(base_config: Mapping[str, Any], values: Mapping[str, Any], paths: Mapping[str, str]) -> Dict[str, Any]:
    """Return a copy of ``base_config`` with each sampled value set at its dotted path."""
    merged = copy.deepcopy(dict(base_config))
    for name, value in values.items():
        if name not in paths:
            continue
        node = merged
        *parents, leaf = paths[name].split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = to_plain(value)
    return merged
