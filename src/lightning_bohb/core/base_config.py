"""The LightningCLI base config: reading it, search-space paths, overrides and their validation.

The config is never interpreted here: the user's `LightningCLI` parser (`core.lightning_cli`) is the
judge of what it accepts. This module reads the YAML, maps search-space names to paths the parser
knows (``optimizer.init_args.lr``, ``model.init_args.encoder.init_args.hidden``,
``trainer.callbacks[1].init_args.patience``, or a bare init-argument name of the model or datamodule),
sets sampled values at those paths, and asks the parser about one sample of every domain.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import yaml

from lightning_bohb.core.lightning_cli import FIT_ARGUMENTS, SUBCOMMANDS, BaseConfigError, class_paths, parser_reason
from lightning_bohb.exceptions import ConfigError
from lightning_bohb.utils.imports import import_problem
from lightning_bohb.utils.plain import to_plain

Token = Union[str, int]
_INDEX = re.compile(r"^([^\[\]]*)((?:\[\d+\])*)$")
_SAMPLES_PER_CHOICE = 20


def load_base_config(source: Union[str, Path, Mapping[str, Any]]) -> Dict[str, Any]:
    """Read the YAML you give ``LightningCLI fit --config`` (or the same dict), as written.

    Only its shape is checked here (a mapping); a config for the main parser with a ``fit:`` section
    (``main.py --config c.yaml fit``) is taken from that section. The parser checks the rest.
    """
    if isinstance(source, Mapping):
        config: Any = copy.deepcopy(dict(source))
        origin = "the base config dict"
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise BaseConfigError(
                f"Base config file not found: {str(path)!r}. Pass the path of the YAML you give "
                "`LightningCLI fit --config`, or a dict with the same keys."
            )
        try:
            config = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise BaseConfigError(f"The base config {str(path)!r} is not valid YAML: {' '.join(str(err).split())}") from None
        origin = repr(str(path))
    if not isinstance(config, dict):
        kind = type(config).__name__
        raise BaseConfigError(f"{origin} must be a mapping with `model:` (and optionally `data:`, `trainer:`), got {kind}.")
    sections = set(config) & set(SUBCOMMANDS)
    if sections and set(config) <= {*SUBCOMMANDS, "subcommand", "config"}:
        if not isinstance(config.get("fit"), dict):
            raise BaseConfigError(
                f"{origin} has subcommand sections {sorted(sections)} but no `fit:` mapping; a search trains, so it needs `fit:`."
            )
        config = config["fit"]
    return config


def split_fit_arguments(config: Mapping[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """``(config for LightningCLI(run=False), Trainer.fit arguments)``: ``ckpt_path``/``weights_only`` apart."""
    cli_config = {k: v for k, v in config.items() if k not in FIT_ARGUMENTS}
    fit_arguments = {k: config[k] for k in FIT_ARGUMENTS if config.get(k) is not None}
    return cli_config, fit_arguments


def check_class_paths(config: Mapping[str, Any], near: Sequence[str] = ()) -> None:
    """Refuse (`BaseConfigError`) a dotted ``class_path`` of ``config`` that its files show cannot be imported
    (`lightning_bohb.utils.imports.import_problem`): a missing module or class fails here, before anything
    imports torch and Lightning. ``near``: folders to look for a missing module in, besides the working folder."""
    for where, class_path in class_paths(config):
        problem = import_problem(class_path, near)  # None for a short name (the parser resolves it)
        if problem:
            raise BaseConfigError(f"`{where}` is {class_path!r}, but {problem}")


# -- paths --------------------------------------------------------------------------------------


def parse_path(path: str) -> List[Token]:
    """``"trainer.callbacks[1].init_args.patience"`` -> ``["trainer", "callbacks", 1, "init_args", "patience"]``."""
    tokens: List[Token] = []
    for part in str(path).split("."):
        match = _INDEX.match(part)
        if not match or not match.group(1):
            raise ConfigError(
                f"{path!r} is not a config path; write keys with dots and list entries as [i], "
                "e.g. `trainer.callbacks[0].init_args.patience`."
            )
        key = match.group(1)
        tokens.append(int(key) if key.isdigit() else key)  # `callbacks.0` is `callbacks[0]`
        tokens.extend(int(i) for i in re.findall(r"\[(\d+)\]", match.group(2)))
    return tokens


def format_path(tokens: List[Token]) -> str:
    text = ""
    for token in tokens:
        text += f"[{token}]" if isinstance(token, int) else (f".{token}" if text else str(token))
    return text


def resolve_parameter_paths(parsed: Any, names: List[str]) -> Dict[str, str]:
    """Map each search-space name to the config path it sets, checked against the parsed base config.

    ``parsed`` is the base config as the LightningCLI parser returned it (a jsonargparse ``Namespace``
    with every default filled in). A name with a dot or ``[i]`` is a path that must exist there (into
    a free-form ``dict`` value any key is allowed); a bare name must be exactly one init argument of
    the model or the datamodule (or a top-level key such as ``seed_everything``).
    """
    candidates = _init_arguments(parsed)
    paths: Dict[str, str] = {}
    for name in names:
        if "." in name or "[" in name:
            tokens = parse_path(name)
            problem = _missing(parsed, tokens)
            if problem:
                raise ConfigError(f"Search-space name {name!r} is not a path the LightningCLI parser knows: {problem}.")
            paths[name] = format_path(tokens)
            continue
        matches = [path for path, argument in candidates if argument == name]
        if not matches and name in _keys(parsed) and name != "config":
            matches = [name]
        if len(matches) == 1:
            paths[name] = matches[0]
        elif not matches:
            known = [path for path, _ in candidates]
            raise ConfigError(
                f"Search-space name {name!r} matches no init argument of the model or datamodule. Use a config path "
                f"(e.g. `optimizer.init_args.lr`, `trainer.gradient_clip_val`), or one of: {known}."
            )
        else:
            raise ConfigError(f"Search-space name {name!r} is ambiguous: it matches {matches}. Use one of these paths.")
    return paths


def _init_arguments(parsed: Any) -> List[Tuple[str, str]]:
    """``(path, name)`` of every init argument of the model and datamodule (subclass or fixed-class mode)."""
    found = []
    for section in ("model", "data"):
        node = _get(parsed, section)
        if not _is_namespace(node):
            continue
        if "class_path" in _keys(node):
            arguments, prefix = _get(node, "init_args"), f"{section}.init_args."
        else:
            arguments, prefix = node, f"{section}."
        if _is_namespace(arguments):
            found += [(prefix + key, key) for key in _keys(arguments) if key != "dict_kwargs"]
    return found


def _missing(parsed: Any, tokens: List[Token]) -> Optional[str]:
    """Why ``tokens`` is not a path of the parsed config, or None when it is."""
    node = parsed
    for depth, token in enumerate(tokens):
        where = format_path(tokens[:depth]) or "the config"
        if isinstance(node, list):
            if not isinstance(token, int):
                return f"`{where}` is a list; address its entries as `{where}[i]`"
            if token >= len(node):
                return f"`{where}` has {len(node)} entries, so [{token}] does not exist"
            node = node[token]
        elif _is_namespace(node):
            keys = _keys(node)
            if token not in keys:
                return f"`{where}` has no key {token!r}; it has {sorted(k for k in keys if k != 'config')}"
            node = _get(node, token)
        elif isinstance(node, dict):
            if token not in node:
                return None  # a free-form mapping (an argument typed dict): any key
            node = node[token]
        elif node is None:
            return f"`{where}` is null in the config; give it a value in the YAML (e.g. `{where}: {{class_path: ...}}`) to search inside it"
        else:
            return f"`{where}` is the value {node!r}, which has no keys"
    return None


def _is_namespace(node: Any) -> bool:
    return type(node).__name__ == "Namespace" and hasattr(node, "as_dict")


def _keys(node: Any) -> List[str]:
    return list(vars(node)) if _is_namespace(node) else []


def _get(node: Any, key: str) -> Any:
    return vars(node).get(key) if _is_namespace(node) else None


# -- overrides ----------------------------------------------------------------------------------


def apply_overrides(base_config: Mapping[str, Any], values: Mapping[str, Any], paths: Mapping[str, str]) -> Dict[str, Any]:
    """A copy of ``base_config`` with each sampled value (as plain Python) set at its path."""
    merged = copy.deepcopy(dict(base_config))
    for name, value in values.items():
        if name in paths:
            set_path(merged, parse_path(paths[name]), to_plain(value))
    return merged


def set_path(config: Dict[str, Any], tokens: List[Token], value: Any) -> None:
    """Set ``value`` at ``tokens`` in a YAML-like config, creating missing mappings on the way.

    A class given by name only (``encoder: my.Encoder``) becomes ``{class_path: my.Encoder}`` when a
    path goes into it; a single mapping where a list entry [0] is addressed stands for that entry
    (jsonargparse accepts ``callbacks: {class_path: ...}`` for a one-element list).
    """
    node: Any = config
    for token, following in zip(tokens[:-1], tokens[1:], strict=True):
        if isinstance(token, int) and isinstance(node, dict) and token == 0:
            continue
        if isinstance(node, list):
            child = node[token]  # type: ignore[index]
            if isinstance(child, str) and following in ("class_path", "init_args"):
                child = node[token] = {"class_path": child}  # type: ignore[index]
        else:
            child = node.get(token)
            if isinstance(child, str) and following in ("class_path", "init_args"):
                child = {"class_path": child}
            elif not isinstance(child, (dict, list)):
                child = [] if isinstance(following, int) else {}
            node[token] = child
        node = child
    leaf = tokens[-1]
    if isinstance(node, list):
        node[leaf] = value  # type: ignore[index]
    elif isinstance(leaf, int) and leaf == 0 and isinstance(node, dict):
        node.clear()
        node.update(value if isinstance(value, dict) else {"class_path": value})
    else:
        node[leaf] = value


# -- validation of sampled values --------------------------------------------------------------


def domain_samples(domain: Any) -> List[Any]:
    """Values to check for one search-space entry: every category of a choice (up to 20), every grid
    value, one sample of any other Ray Tune domain (seeded, the global RNGs untouched), or the constant."""
    if isinstance(domain, dict) and set(domain) == {"grid_search"}:
        return list(domain["grid_search"])[:_SAMPLES_PER_CHOICE]
    categories = getattr(domain, "categories", None)
    if categories is not None and hasattr(domain, "sample"):
        return [to_plain(c) for c in list(categories)[:_SAMPLES_PER_CHOICE]]
    if type(domain).__module__.startswith("ray.tune") and hasattr(domain, "sample"):
        import numpy as np

        try:
            return [to_plain(domain.sample(random_state=np.random.RandomState(0)))]
        except Exception:  # a sample_from function that needs the rest of the config
            return []
    if callable(domain):
        return []
    return [to_plain(domain)]


def check_values(
    parse: Callable[[Dict[str, Any]], Any],
    base_config: Mapping[str, Any],
    space: Mapping[str, Any],
    paths: Mapping[str, str],
    describe: Callable[[Any], Any] = repr,
) -> None:
    """Ask the parser about one trial config with a sample of every domain, then about every choice.

    Raises `ConfigError` naming the search-space entry, its path, the value and the parser's reason.
    """
    import argparse

    samples = {name: domain_samples(space[name]) for name in paths}

    def refused(values: Mapping[str, Any]) -> Optional[str]:
        try:
            parse(apply_overrides(base_config, values, paths))
        except argparse.ArgumentError as err:
            return parser_reason(err)
        return None

    first = {name: values[0] for name, values in samples.items() if values}
    joint = refused(first)
    skip = 0 if joint is not None else 1  # each first sample passed already, in the joint config
    for name, values in samples.items():
        for value in values[skip:]:
            reason = refused({name: value})
            if reason is not None:
                raise ConfigError(
                    f"Search-space name {name!r} sets `{paths[name]}` to {value!r} (from {describe(space[name])}), which the "
                    f"LightningCLI parser refuses: {reason}"
                )
    if joint is not None:
        raise ConfigError(f"The search space's values {first!r} together are refused by the LightningCLI parser: {joint}")


def largest_num_workers(parsed: Any, space: Mapping[str, Any], paths: Mapping[str, str]) -> int:
    """The largest ``num_workers`` among the init arguments of the parsed config and the values the
    search space gives them (0 if none)."""
    values: List[Any] = []

    def walk(node: Any) -> None:
        if _is_namespace(node):
            node = vars(node)
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "num_workers":
                    values.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(parsed)
    for name, path in paths.items():
        if path.split(".")[-1] == "num_workers":
            values.extend(domain_samples(space[name]))
    return max((v for v in values if isinstance(v, int) and not isinstance(v, bool)), default=0)
