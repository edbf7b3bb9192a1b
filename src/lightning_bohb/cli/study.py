"""A search declared entirely in YAML (``lightning-bohb run study.yaml``), turned into an optimizer.

A study file::

    base_config: config.yaml            # relative to this file, or an inline LightningCLI mapping
    search_space:
      lr: {loguniform: [1.0e-4, 1.0e-1]}
      hidden_size: {choice: [16, 32, 64]}
      dropout: {uniform: [0.0, 0.5]}
      num_layers: 2                     # a constant
    metric: {metric: val_loss, mode: min}
    strategy: {name: bohb, reduction_factor: 3}
    optimization: {max_epochs: 9, num_samples: 8, max_concurrent_trials: 2, seed: 0}
    cli_class: my_project.cli.MyCLI     # optional, as your main.py calls LightningCLI: cli_class,
    model_class: my_project.MyModel     # model_class, datamodule_class (import paths),
    subclass_mode_model: false          # subclass_mode_model, subclass_mode_data

Distributions take the arguments of the Ray Tune function of the same name, as a list:
``uniform``/``loguniform``/``randint``/``lograndint``: ``[lower, upper]``; ``quniform``/``qloguniform``/
``qrandint``: ``[lower, upper, q]``; ``choice``: ``[value, ...]``. A mapping set as a constant is
written ``{constant: {...}}``. ``optimization.experiment_name`` defaults to the study file's stem.

Parsing checks the data only (no Ray, no model import); `Study.build_optimizer` then loads the base
config and resolves the search-space names. Every problem names its place in the YAML.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

import yaml

from lightning_bohb.core.search_space import DISTRIBUTIONS, SearchSpace, metric_problems
from lightning_bohb.exceptions import ConfigError
from lightning_bohb.session.state import load_yaml_data
from lightning_bohb.utils.files import read_bounded

CLI_KEYS = ("cli_class", "model_class", "datamodule_class", "subclass_mode_model", "subclass_mode_data")
"""The `LightningCLI` arguments of the project's ``main.py`` (import paths and booleans), as in `ConfigDrivenOptimizer`."""
STUDY_KEYS = ("base_config", "search_space", "metric", "strategy", "optimization", *CLI_KEYS)
REQUIRED_KEYS = ("base_config", "search_space", "metric")
CONSTANT = "constant"
MAX_STUDY_BYTES = 16 * 2**20
MAX_STUDY_VALUES = 200_000
"""Values of a study or base config once YAML aliases are expanded (a few KiB of aliases can make billions)."""



class StudyError(ConfigError):
    """The study file is missing, not YAML, or has invalid entries; each problem names its YAML path."""

    def __init__(self, study: Union[str, Path], problems: List[str]) -> None:
        self.study = str(study)
        self.problems = list(problems)
        if len(self.problems) == 1:
            message = f"{self.study}: {self.problems[0]}"
        else:
            lines = "\n".join(f"  {problem}" for problem in self.problems)
            message = f"{self.study} has {len(self.problems)} problems:\n{lines}"
        super().__init__(message)


class YamlSearchSpace(SearchSpace):
    """A search space given as plain data: ``{name: {"loguniform": [lo, hi]} | {"constant": v}}``.

    It holds only YAML data, so the session state holds it as its class path and that data, and a
    session started with ``lightning-bohb run`` resumes with ``lightning-bohb resume``.
    """

    VERSION = "yaml"

    def __init__(self, space: Mapping[str, Mapping[str, Any]], metric: Mapping[str, str]) -> None:
        self.space = {name: dict(spec) for name, spec in space.items()}
        self.metric = dict(metric)

    def get_search_space(self) -> Dict[str, Any]:
        from ray import tune

        domains = {}
        for name, spec in self.space.items():
            ((kind, args),) = spec.items()
            if kind == CONSTANT:
                domains[name] = args
            elif kind == "choice":
                domains[name] = tune.choice(list(args))
            else:
                domains[name] = getattr(tune, kind)(*args)
        return domains

    def get_metric_config(self) -> Dict[str, str]:
        return dict(self.metric)

    def __repr__(self) -> str:
        return f"YamlSearchSpace({self.space!r}, metric={self.metric!r})"


@dataclass
class Study:
    """A validated study file: plain data, ready to become a `ConfigDrivenOptimizer`."""

    path: Path
    base_config: Union[str, Dict[str, Any]]
    space: Dict[str, Dict[str, Any]]
    metric: Dict[str, str]
    strategy: Dict[str, Any] = field(default_factory=lambda: {"name": "random"})
    optimization: Dict[str, Any] = field(default_factory=dict)
    cli: Dict[str, Any] = field(default_factory=dict)
    """`CLI_KEYS` given in the study (class import paths as text)."""

    @property
    def folder(self) -> Path:
        return self.path.parent

    def import_folders(self) -> List[str]:
        """What a run of this study puts first on the import path, as ``python main.py fit`` has its own
        folder there: the study's folder, its base config's folder (a file), and the working folder."""
        folders = [str(self.folder)]
        if isinstance(self.base_config, str):
            folders.append(str(Path(self.base_config).resolve().parent))
        return list(dict.fromkeys([*folders, os.getcwd()]))

    def search_space(self) -> YamlSearchSpace:
        return YamlSearchSpace(self.space, self.metric)

    def optimization_config(self, experiment_dir: Optional[str] = None, experiment_name: Optional[str] = None):
        from lightning_bohb.core.optimization_config import OptimizationConfig

        values = {"experiment_name": self.path.stem, **self.optimization}
        if experiment_dir is not None:
            values["experiment_dir"] = str(experiment_dir)
        if experiment_name is not None:
            values["experiment_name"] = experiment_name
        try:
            return OptimizationConfig(**values)
        except ConfigError as err:
            raise StudyError(self.path, [_located("optimization", err, r"The value of `(\w+)`")]) from None

    def build_optimizer(self, experiment_dir: Optional[str] = None, experiment_name: Optional[str] = None):
        """The `ConfigDrivenOptimizer` this study declares; `StudyError` names the YAML path of a problem.

        Imports the model and datamodule classes (and Ray Tune, for the domains): put their folder on
        ``sys.path`` first.
        """
        from lightning_bohb.core.base_config import load_base_config
        from lightning_bohb.core.lightning_cli import BaseConfigError
        from lightning_bohb.core.optimizer import ConfigDrivenOptimizer
        from lightning_bohb.core.strategies import strategy_from_name
        from lightning_bohb.utils.imports import import_class

        optimization = self.optimization_config(experiment_dir, experiment_name)
        kwargs = {k: v for k, v in self.strategy.items() if k != "name"}
        try:
            strategy = strategy_from_name(self.strategy["name"], **kwargs)
        except ConfigError as err:
            raise StudyError(self.path, [f"strategy: {err}"]) from None
        try:
            load_base_config(self.base_config)
        except ConfigError as err:
            raise StudyError(self.path, [f"base_config: {err}"]) from None
        except (OSError, ValueError, yaml.YAMLError, RecursionError) as err:  # binary, a 5000-digit number...
            raise StudyError(self.path, [f"base_config: cannot be read: {_reason(err)}"]) from None
        cli = dict(self.cli)
        for key in ("cli_class", "model_class", "datamodule_class"):
            if key in cli:
                try:
                    cli[key] = import_class(cli[key], where=key)
                except ConfigError as err:
                    raise StudyError(self.path, [f"{key}: {err}"]) from None
        try:
            return ConfigDrivenOptimizer(self.base_config, self.search_space(), strategy, optimization, **cli)
        except BaseConfigError as err:
            raise StudyError(self.path, [f"base_config: {err}"]) from None
        except ConfigError as err:
            if not re.search(r"Search-space name '([^']+)'", str(err)) and any(f"`{key}`" in str(err) for key in CLI_KEYS):
                raise StudyError(self.path, [str(err)]) from None
            raise StudyError(self.path, [_located("search_space", err, r"Search-space name '([^']+)'")]) from None


def load_study(path: Union[str, Path]) -> Study:
    """Read and validate a study file; a `StudyError` lists every invalid entry by its YAML path."""
    path = Path(path).expanduser()
    try:
        text = read_bounded(path, MAX_STUDY_BYTES, follow_link=True)
    except FileNotFoundError:
        raise StudyError(path, ["file not found"]) from None
    except OSError as err:
        raise StudyError(path, [f"cannot be read ({err.strerror or err})"]) from None
    except ValueError as err:  # not UTF-8, too large, a FIFO
        raise StudyError(path, [f"cannot be read: {err}"]) from None
    try:
        data = load_yaml_data(text, aliases=True, max_nodes=MAX_STUDY_VALUES)
    except yaml.YAMLError as err:
        raise StudyError(path, [f"not valid YAML:\n{err}"]) from None
    except (ValueError, RecursionError) as err:  # an int too long to convert, too deep, an alias bomb
        raise StudyError(path, [f"cannot be used: {_reason(err)}"]) from None
    return parse_study(data, path)


def parse_study(data: Any, path: Union[str, Path]) -> Study:
    """Validate study data (already loaded from ``path``); relative paths are relative to ``path``."""
    path = Path(path).expanduser().resolve()
    if not isinstance(data, dict):
        raise StudyError(path, [f"must be a mapping with keys {list(STUDY_KEYS)}, got {_kind(data)}"])
    problems: List[str] = []
    for key in data:
        if key not in STUDY_KEYS:
            problems.append(f"{key}: unknown key; use one of {list(STUDY_KEYS)}")
    for key in REQUIRED_KEYS:
        if data.get(key) is None:
            problems.append(f"{key}: missing; {_HINTS[key]}")
    base_config = _base_config(data.get("base_config"), path.parent, problems)
    space = _search_space(data.get("search_space"), problems)
    metric = _metric(data.get("metric"), problems)
    strategy = _strategy(data.get("strategy") or "random", problems)
    optimization = _optimization(data.get("optimization") or {}, problems)
    cli = _cli(data, problems)
    if problems:
        raise StudyError(path, problems)
    return Study(path, base_config, space, metric, strategy, optimization, cli)


_HINTS = {
    "base_config": "give the path of a LightningCLI config (relative to the study file) or the mapping itself",
    "search_space": "e.g. search_space: {lr: {loguniform: [1.0e-4, 1.0e-1]}}",
    "metric": "e.g. metric: {metric: val_loss, mode: min}",
}


def _base_config(value: Any, folder: Path, problems: List[str]) -> Any:
    if value is None:
        return None
    if isinstance(value, dict):
        return value
    if not isinstance(value, str) or not value.strip():
        problems.append(f"base_config: must be a file path or a mapping, got {_kind(value)}")
        return None
    config = Path(value).expanduser()
    if not config.is_absolute():
        config = folder / config
    if not config.is_file():
        problems.append(f"base_config: file not found: {str(config)!r} (relative paths are relative to the study file)")
        return str(config)
    try:  # what would fail later, said here with its YAML path
        load_yaml_data(read_bounded(config, MAX_STUDY_BYTES, follow_link=True), aliases=True, max_nodes=MAX_STUDY_VALUES)
    except (OSError, ValueError, yaml.YAMLError, RecursionError) as err:
        problems.append(f"base_config: {str(config)!r} cannot be read: {_reason(err)}")
    return str(config)


def _search_space(value: Any, problems: List[str]) -> Dict[str, Dict[str, Any]]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not value:
        problems.append(f"search_space: must be a non-empty mapping of names to distributions, got {_kind(value)}")
        return {}
    space = {}
    for name, spec in value.items():
        where = f"search_space.{name}"
        if not isinstance(name, str) or not name.strip():
            problems.append(f"search_space: the name {name!r} must be a non-empty string")
            continue
        parsed = _distribution(spec, where, problems)
        if parsed is not None:
            space[name] = parsed
    return space


def _distribution(spec: Any, where: str, problems: List[str]) -> Optional[Dict[str, Any]]:
    if not isinstance(spec, dict):
        return {CONSTANT: spec}  # a scalar or a list: the same value in every trial
    known = sorted(DISTRIBUTIONS) + [CONSTANT]
    if len(spec) != 1:
        problems.append(
            f"{where}: a distribution is a mapping with one key, e.g. {{loguniform: [1.0e-4, 1.0e-1]}}, got "
            f"keys {list(spec)}; distributions: {known}. Write a mapping constant as {{constant: {{...}}}}"
        )
        return None
    ((kind, args),) = spec.items()
    if kind == CONSTANT:
        return {CONSTANT: args}
    if kind not in DISTRIBUTIONS:
        problems.append(f"{where}: unknown distribution {kind!r}; use one of {known}")
        return None
    where = f"{where}.{kind}"
    if kind == "choice":
        if not isinstance(args, list) or not args:
            problems.append(f"{where}: must be a non-empty list of values, got {_kind(args)}")
            return None
        return {kind: args}
    names, integers, positive = DISTRIBUTIONS[kind]
    usage = f"[{', '.join(names)}]"
    if not isinstance(args, list) or len(args) != len(names):
        problems.append(f"{where}: must be a list {usage}, got {args!r}")
        return None
    number = "an integer" if integers else "a number"
    bad = [n for n, a in zip(names, args, strict=False) if not _is_number(a, integers)]
    if bad:
        hint = ""
        if any(isinstance(a, str) and _is_float_text(a) for a in args):
            hint = " (YAML reads 1e-4 as text: write 1.0e-4)"
        problems.append(f"{where}: {', '.join(bad)} must be {number}, got {args!r} for {usage}{hint}")
        return None
    lower, upper = args[0], args[1]
    if not lower < upper:
        problems.append(f"{where}: lower ({lower}) must be less than upper ({upper})")
    elif positive and lower <= 0:
        problems.append(f"{where}: lower ({lower}) must be > 0 on a log scale")
    elif len(args) == 3 and args[2] <= 0:
        problems.append(f"{where}: q ({args[2]}) must be > 0")
    else:
        return {kind: list(args)}
    return None


def _metric(value: Any, problems: List[str]) -> Dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, str):
        value = {"metric": value}
    checked, found = metric_problems(value)
    problems.extend(f"metric.{problem}" if ":" in problem.split()[0] else f"metric: {problem}" for problem in found)
    return checked if not found else {}


def _strategy(value: Any, problems: List[str]) -> Dict[str, Any]:
    from lightning_bohb.core.strategies import STRATEGIES

    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        problems.append(f"strategy: must be a name or a mapping {{name: bohb, <arguments>}}, got {_kind(value)}")
        return {}
    name = value.get("name")
    if name is None:
        problems.append(f"strategy.name: missing; use one of {sorted(STRATEGIES)}")
    elif str(name).lower() not in STRATEGIES:
        problems.append(f"strategy.name: unknown strategy {name!r}; use one of {sorted(STRATEGIES)}")
    return dict(value)


def _optimization(value: Any, problems: List[str]) -> Dict[str, Any]:
    from lightning_bohb.core.optimization_config import OptimizationConfig

    if not isinstance(value, dict):
        problems.append(f"optimization: must be a mapping of OptimizationConfig fields, got {_kind(value)}")
        return {}
    fields = [f.name for f in dataclasses.fields(OptimizationConfig)]
    for key in value:
        if key not in fields:
            problems.append(f"optimization.{key}: unknown field; use one of {fields}")
    return {k: v for k, v in value.items() if k in fields}


def _cli(data: Dict[str, Any], problems: List[str]) -> Dict[str, Any]:
    """The `CLI_KEYS` present: classes as dotted import paths, subclass modes as booleans."""
    cli = {}
    for key in CLI_KEYS:
        if data.get(key) is None:
            continue
        value = data[key]
        if key.startswith("subclass_mode"):
            if not isinstance(value, bool):
                problems.append(f"{key}: must be true or false, got {_kind(value)}")
                continue
        elif not isinstance(value, str) or "." not in value.strip(".") or " " in value:
            problems.append(f"{key}: must be the import path of a class, e.g. my_project.cli.MyCLI, got {_kind(value)}")
            continue
        cli[key] = value
    return cli


def _located(section: str, err: Exception, pattern: str) -> str:
    match = re.search(pattern, str(err))
    return f"{section}.{match.group(1)}: {err}" if match else f"{section}: {err}"


def _is_number(value: Any, integer: bool) -> bool:
    if isinstance(value, bool):
        return False
    if integer:
        return isinstance(value, int)
    return isinstance(value, (int, float)) and math.isfinite(value)


def _is_float_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _reason(err: BaseException) -> str:
    text = " ".join(str(getattr(err, "strerror", None) or err).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {value!r}" if value is not None else "nothing"
