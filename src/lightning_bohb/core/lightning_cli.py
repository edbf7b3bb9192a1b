"""The user's `LightningCLI` as the one reader of a search's config, in the driver and in every trial.

The driver only *parses* (`CLISpec.parse`: no model, no Trainer, no seeding), to validate the base
config and every search-space path before Ray starts and to write ``best_config.yaml`` in the form
LightningCLI itself saves. Each trial *builds* (`CLISpec.build`): the same class, with the same
arguments, ``run=False`` and the trial's merged config as ``args``, so whatever the user's
``python main.py fit --config c.yaml`` accepts (``optimizer:``/``lr_scheduler:``, short class names,
fixed-class CLIs, ``link_arguments``, ``add_arguments_to_parser``) a trial accepts too.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import importlib
import inspect
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from lightning_bohb.exceptions import ConfigError

FIT_ARGUMENTS = ("ckpt_path", "weights_only")
"""`Trainer.fit` arguments a ``fit --print_config`` output carries besides the model and data: with
``run=False`` LightningCLI has no ``fit`` subcommand, so they are taken out and passed to ``fit``."""

SUBCOMMANDS = ("fit", "validate", "test", "predict")

OWNED_ARGUMENTS = ("args", "run")
"""LightningCLI arguments LightningTune sets itself in every trial."""

_STANDALONE = "pytorch_lightning"
_NAMESPACE_FIX = (
    "LightningTune builds trials with the `lightning` package (`lightning.pytorch`), whose classes are "
    "not those of the standalone `pytorch_lightning` package: write `import lightning.pytorch as pl` "
    "(and `from lightning.pytorch... import ...`) instead of `pytorch_lightning`"
)


@dataclass
class CLISpec:
    """Which `LightningCLI` reads the config, with LightningCLI's own arguments.

    Args:
        cli_class: `LightningCLI` or the user's subclass (``add_arguments_to_parser``, ``link_arguments``).
        model_class: As `LightningCLI`'s ``model_class`` (``None``: any LightningModule, given by ``class_path``).
        datamodule_class: As `LightningCLI`'s ``datamodule_class``.
        subclass_mode_model: As `LightningCLI`'s ``subclass_mode_model``.
        subclass_mode_data: As `LightningCLI`'s ``subclass_mode_data``.
        kwargs: Any other `LightningCLI` argument (``trainer_class``, ``trainer_defaults``,
            ``seed_everything_default``, ``parser_kwargs``, ``auto_configure_optimizers``, ...).
    """

    cli_class: Any = None
    model_class: Any = None
    datamodule_class: Any = None
    subclass_mode_model: bool = False
    subclass_mode_data: bool = False
    kwargs: Dict[str, Any] = field(default_factory=dict)

    def lightning_cli_class(self) -> Any:
        if self.cli_class is not None:
            return self.cli_class
        from lightning.pytorch.cli import LightningCLI

        return LightningCLI

    def validate(self) -> "CLISpec":
        """`ConfigError` for a class that is not a LightningCLI, or an argument LightningCLI does not take."""
        from lightning.pytorch.cli import LightningCLI

        cli_class = self.lightning_cli_class()
        for where, value in (("cli_class", self.cli_class), ("model_class", self.model_class), ("datamodule_class", self.datamodule_class)):
            if value is not None:
                check_not_standalone(value, where)
        if not (isinstance(cli_class, type) and issubclass(cli_class, LightningCLI)):
            raise ConfigError(f"The value of `cli_class` is {cli_class!r}, but must be `lightning.pytorch.cli.LightningCLI` or a subclass.")
        accepted = set(inspect.signature(LightningCLI.__init__).parameters) - {"self"}
        for name in self.kwargs:
            if name in OWNED_ARGUMENTS:
                raise ConfigError(f"`{name}` is set by LightningTune in every trial; remove it from the LightningCLI arguments.")
            if name not in accepted:
                raise ConfigError(f"`{name}` is not a LightningCLI argument; LightningCLI takes {sorted(accepted - set(OWNED_ARGUMENTS))}.")
        return self

    def arguments(self) -> Dict[str, Any]:
        """The keyword arguments for ``cli_class`` (without ``args`` and ``run``); parse errors raise."""
        kwargs = dict(self.kwargs)
        for name in ("model_class", "datamodule_class"):
            if getattr(self, name) is not None:
                kwargs[name] = getattr(self, name)
        for name in ("subclass_mode_model", "subclass_mode_data"):
            if getattr(self, name):
                kwargs[name] = True
        parser_kwargs = dict(kwargs.get("parser_kwargs") or {})
        parser_kwargs["exit_on_error"] = False  # an ArgumentError we can report, not SystemExit(2)
        kwargs["parser_kwargs"] = parser_kwargs
        return kwargs

    def parse(self, config: Mapping[str, Any], origin: str = "the base config") -> Tuple[Any, Any]:
        """``(parser, parsed Namespace)`` of ``config``, read by the user's CLI without instantiating anything.

        Raises `BaseConfigError` with the YAML path and the parser's reason.
        """
        check_config_namespace(config, origin)
        cli_class = _parse_only(self.lightning_cli_class())
        kwargs = self.arguments()
        kwargs["save_config_callback"] = None
        try:
            with quiet_args_warning():
                cli = cli_class(args=copy.deepcopy(dict(config)), run=False, **kwargs)  # jsonargparse edits lists in place
        except argparse.ArgumentError as err:
            raise BaseConfigError(f"{origin} is refused by {cli_class.__mro__[1].__name__}: {parser_reason(err)}") from None
        except ConfigError:
            raise
        except Exception as err:  # MisconfigurationException, an import failing in a class_path, ...
            raise BaseConfigError(f"{origin} is refused by {cli_class.__mro__[1].__name__}: {one_line(str(err))}") from None
        return cli.parser, cli.config

    def build(self, config: Mapping[str, Any], callbacks: Sequence[Any], trainer_defaults: Mapping[str, Any]) -> Any:
        """The user's CLI, constructed for one trial: model, datamodule and Trainer, seeded, not run.

        ``trainer_defaults`` apply only where the config is silent; ``callbacks`` are added to the
        Trainer after the configured ones (LightningCLI's persistent callbacks). LightningCLI's
        ``config.yaml`` is written into the trial's log folder, overwritten on resume.
        """
        kwargs = self.arguments()
        defaults = {**trainer_defaults, **dict(kwargs.get("trainer_defaults") or {})}
        persistent = defaults.get("callbacks") or []
        defaults["callbacks"] = [*(persistent if isinstance(persistent, list) else [persistent]), *callbacks]
        kwargs["trainer_defaults"] = defaults
        kwargs["save_config_kwargs"] = {**dict(kwargs.get("save_config_kwargs") or {}), "overwrite": True}
        with quiet_args_warning():
            return self.lightning_cli_class()(args=copy.deepcopy(dict(config)), run=False, **kwargs)


class BaseConfigError(ConfigError):
    """The LightningCLI parser refuses the base config (its YAML path and the parser's reason say where)."""


@functools.lru_cache(maxsize=None)
def _parse_only(cli_class: type) -> type:
    """``cli_class`` that stops after parsing: the driver builds no model, no Trainer, and seeds nothing.

    ``_set_seed`` is LightningCLI's private seeding step (Lightning 2.6): skipped so that the driver's
    RNGs and ``PL_GLOBAL_SEED`` (inherited by Ray's workers) stay as the user left them.
    """

    def skip(self: Any) -> None:
        return None

    skipped = ("_set_seed", "_add_instantiators", "before_instantiate_classes", "instantiate_classes", "after_instantiate_classes")
    members = {name: skip for name in skipped}
    return type(f"ParseOnly{cli_class.__name__}", (cli_class,), members)


@contextlib.contextmanager
def quiet_args_warning() -> Iterator[None]:
    """LightningCLI warns when given ``args`` while ``sys.argv`` has arguments (the driver's script, Ray's worker)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*LightningCLI's args parameter is intended.*")
        yield


_BOILERPLATE = (
    "Does not validate against any of the Union subtypes",
    "Subtypes:",
    "Errors:",
    "Given value type:",
    "Given value:",
    "- Expected a <class 'NoneType'>",
    "- Expected <class 'NoneType'>",
    "tip:",
    "Not a valid subclass of",
    "Subclass types expect one of",
    "a class path (str)",
    "a dict with class_path entry",
    "a dict without class_path but with init_args entry",
    "a dict with parameters accepted by the base class",
)
_KEY = re.compile(r'^(?:- )?Parser key "([^"]+)":\s*$')
_CLASS = re.compile(r"^(?:- )?Problem with given class_path '([^']+)':\s*$")


def parser_reason(err: BaseException) -> str:
    """jsonargparse's nested error as one line: ``<YAML path>: <the innermost reasons>``."""
    path: List[str] = []
    class_path: Optional[str] = None  # set while the reasons are about a class_path itself
    reasons: List[str] = []
    for raw in str(err).splitlines():
        line = raw.strip()
        if not line or line.startswith(_BOILERPLATE) or line.lstrip("- ").startswith(_BOILERPLATE):
            continue
        key, cls = _KEY.match(line), _CLASS.match(line)
        if key:
            path.append(("init_args." if class_path else "") + key.group(1))
            class_path, reasons = None, []
        elif cls:
            class_path, reasons = cls.group(1), []
        else:
            reasons.append(line.lstrip("- ").strip())
    reason = "; ".join(dict.fromkeys(r for r in reasons if r)) or one_line(str(err))
    if path and class_path:
        return f"`{'.'.join(path)}.class_path` is {class_path!r}: {reason}"
    return f"{'.'.join(path)}: {reason}" if path else reason


def one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def check_not_standalone(value: Any, where: str) -> None:
    """`ConfigError` naming the namespace to use when ``value`` was written against ``pytorch_lightning``."""
    cls = value if isinstance(value, type) else type(value) if not callable(value) else None
    if cls is None:
        return
    standalone = [base for base in inspect.getmro(cls) if base.__module__.split(".")[0] == _STANDALONE]
    if not standalone:
        return
    name = f"{cls.__module__}.{cls.__qualname__}"
    base = standalone[0]
    what = "a class of" if base is cls else f"a subclass of {base.__module__}.{base.__qualname__}, from"
    raise ConfigError(f"`{where}` is {name}, {what} the standalone `pytorch_lightning` package. {_NAMESPACE_FIX}.")


def check_config_namespace(config: Mapping[str, Any], origin: str) -> None:
    """Every fully qualified ``class_path`` in ``config`` that imports: not a ``pytorch_lightning`` class."""
    for where, class_path in class_paths(config):
        module_name, _, attr = class_path.rpartition(".")
        if not module_name:
            continue  # a short name: LightningCLI resolves it among the classes it knows
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name and err.name.split(".")[0] == _STANDALONE:
                raise BaseConfigError(
                    f"`{where}` in {origin} is {class_path!r}, whose module imports `pytorch_lightning`, which is not "
                    f"installed. {_NAMESPACE_FIX}."
                ) from None
            continue  # the parser reports it with its own reason
        except Exception:
            continue
        value = getattr(module, attr, None)
        if isinstance(value, type):
            try:
                check_not_standalone(value, f"{where}` in `{origin}")
            except ConfigError as err:
                raise BaseConfigError(str(err)) from None


def class_paths(node: Any, where: str = "") -> Iterator[Tuple[str, str]]:
    """``(YAML path, class_path)`` of every ``class_path`` string in a config."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            here = f"{where}.{key}" if where else str(key)
            if key == "class_path" and isinstance(value, str):
                yield here, value
            else:
                yield from class_paths(value, here)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from class_paths(value, f"{where}[{index}]")


def dump_config(parser: Any, namespace: Any) -> Dict[str, Any]:
    """A parsed config as LightningCLI saves it (``config.yaml``, ``--print_config``): complete, plain YAML data."""
    import yaml

    return yaml.safe_load(parser.dump(namespace, skip_unset=False))


def user_classes(namespace: Any, spec: CLISpec) -> List[type]:
    """The model and datamodule classes a parsed config names (for fingerprints); fixed classes from ``spec``."""
    classes: List[type] = []
    for section, fixed in (("model", spec.model_class), ("data", spec.datamodule_class)):
        node = namespace.get(section) if namespace is not None else None
        class_path = getattr(node, "class_path", None) if node is not None and "class_path" in vars(node) else None
        if class_path:
            module_name, _, attr = str(class_path).rpartition(".")
            try:
                value = getattr(importlib.import_module(module_name), attr)
            except (ImportError, AttributeError, ValueError):
                continue
            if isinstance(value, type):
                classes.append(value)
        elif isinstance(fixed, type):
            classes.append(fixed)
    if spec.cli_class is not None:
        classes.append(spec.cli_class)
    return classes
