"""The import path is part of a session, and a class that is missing or changed is refused from its files,
before torch and Lightning are imported: a module's source read without running it, the class paths of a
base config, the import path a session records, and a resume's checks of its classes."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from lightning_bohb.core.base_config import check_class_paths
from lightning_bohb.core.lightning_cli import BaseConfigError
from lightning_bohb.exceptions import ConfigError, SessionError
from lightning_bohb.session import fingerprint
from lightning_bohb.utils import module_source
from lightning_bohb.utils.imports import import_class, import_problem

REPO = Path(__file__).resolve().parents[2]

MODEL_SOURCE = '''
import torch  # never run by the checks: they read the file

if True:
    class Encoder:
        """Defined in a block, as some modules do."""


@staticmethod
def helper():
    return 1


class Net(torch.nn.Module):
    def forward(self, x):
        return x
'''


@pytest.fixture
def project(tmp_path, monkeypatch):
    """``<tmp>/project/models/lt_net_<n>.py`` (a model module, not on the import path) and a unique name."""
    name = f"lt_net_{os.getpid()}_{abs(hash(str(tmp_path))) % 10**6}"
    models = tmp_path / "project" / "models"
    models.mkdir(parents=True)
    (models / f"{name}.py").write_text(MODEL_SOURCE)
    monkeypatch.chdir(tmp_path)
    yield models, name
    sys.modules.pop(name, None)


def test_a_module_is_located_without_running_it_or_its_package(tmp_path, monkeypatch):
    package = tmp_path / "lt_pkg_never_run"
    package.mkdir()
    (package / "__init__.py").write_text("raise RuntimeError('the package ran')\n")
    (package / "sub.py").write_text("class A:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = module_source.locate("lt_pkg_never_run.sub")
    assert isinstance(found, module_source.ModuleSource)
    assert found.file == str(package / "sub.py") and found.root == str(tmp_path)
    assert "lt_pkg_never_run" not in sys.modules
    assert module_source.locate("lt_no_such_module_anywhere") is module_source.MISSING
    assert module_source.locate("lt_pkg_never_run.missing") is None  # a package's code may add it: cannot tell
    assert module_source.top_level_names(found) == {"A"}


def test_top_level_names_and_what_the_source_cannot_settle(tmp_path):
    def names(source):
        path = tmp_path / "m.py"
        path.write_text(textwrap.dedent(source))
        return module_source.top_level_names(module_source.ModuleSource("m", str(path)))

    assert names(MODEL_SOURCE) == {"torch", "Encoder", "helper", "Net"}
    blocks = "try:\n    from x import Y as Z\nexcept ImportError as err:\n    Z = None\nfor i in range(3):\n    pass\n"
    assert names(blocks) == {"Z", "err", "i"}
    assert names("from x import *\n") is None
    assert names("def __getattr__(name):\n    return 1\n") is None
    assert names("globals()['Net'] = object\n") is None
    assert names("def f():\n    setattr(object, 'x', 1)\n") == {"f"}  # inside a function: not at import


def test_a_class_source_hash_follows_the_class_only(tmp_path):
    path = tmp_path / "m.py"
    path.write_text(MODEL_SOURCE)
    before = module_source.class_source_hash(str(path), "Net")
    assert before and module_source.class_source_hash(str(path), "Encoder")
    assert module_source.class_source_hash(str(path), "Missing") is None
    path.write_text("# a comment above\n" + MODEL_SOURCE + "\nOTHER = 1\n")
    assert module_source.class_source_hash(str(path), "Net") == before
    path.write_text(MODEL_SOURCE.replace("return x", "return x + 1"))
    assert module_source.class_source_hash(str(path), "Net") != before


def test_a_missing_module_names_the_folder_to_add(project):
    models, name = project
    problem = import_problem(f"{name}.Net")
    assert problem and f"no module named {name!r} is on the import path" in problem
    assert f"PYTHONPATH={models}" in problem  # found under the working folder
    with pytest.raises(ConfigError, match=f"PYTHONPATH={models}"):
        import_class(f"{name}.Net", "model_class")


def test_a_missing_class_is_found_missing_without_importing_its_module(project, monkeypatch):
    models, name = project
    monkeypatch.syspath_prepend(str(models))
    with pytest.raises(ConfigError, match=rf"defines no 'Nett'. Did you mean {name}.Net\?"):
        import_class(f"{name}.Nett", "model_class")
    assert name not in sys.modules
    config = {"model": {"class_path": f"{name}.Net"}, "trainer": {"callbacks": [{"class_path": f"{name}.Gone"}]}}
    with pytest.raises(BaseConfigError, match=r"`trainer.callbacks\[0\].class_path` is .*defines no 'Gone'"):
        check_class_paths(config)
    check_class_paths({"model": {"class_path": f"{name}.Net"}, "optimizer": {"class_path": "torch.optim.Adam"}})
    assert name not in sys.modules


def test_a_run_with_a_bad_class_fails_before_torch_is_imported(project, tmp_path):
    models, name = project
    conf = tmp_path / "project" / "conf"
    conf.mkdir()
    (conf / "config.yaml").write_text(yaml.safe_dump({"model": {"class_path": f"{name}.Net"}}))
    study = {"base_config": "../conf/config.yaml", "search_space": {"lr": 0.1}, "metric": "val_loss"}
    (tmp_path / "project" / "studies").mkdir()
    (tmp_path / "project" / "studies" / "study.yaml").write_text(yaml.safe_dump(study))
    code = (
        "import sys; from lightning_bohb.cli.main import main; "
        "code = main(['run', sys.argv[1]]); print(code, sorted(m for m in ('torch', 'lightning', 'ray') if m in sys.modules))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", code, "project/studies/study.yaml"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.split("\n")[0] == "2 []", done.stdout + done.stderr
    assert f"`model.class_path` is '{name}.Net', but no module named {name!r}" in done.stderr
    assert f"PYTHONPATH={models}" in done.stderr and "Traceback" not in done.stderr


def test_a_study_puts_its_folder_and_its_base_configs_folder_first(tmp_path, monkeypatch, base_dict):
    from lightning_bohb.cli.study import load_study

    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text(yaml.safe_dump(base_dict))
    (tmp_path / "studies").mkdir()
    study = tmp_path / "studies" / "study.yaml"
    study.write_text(yaml.safe_dump({"base_config": "../conf/config.yaml", "search_space": {"lr": 0.1}, "metric": "val_loss"}))
    monkeypatch.chdir(tmp_path)
    folders = load_study(study).import_folders()
    assert folders == [str(tmp_path / "studies"), str((tmp_path / "conf").resolve()), str(tmp_path)]


def test_a_session_records_pythonpath_absolute(tmp_path, monkeypatch):
    from lightning_bohb.session.script import session_import_path

    (tmp_path / "lib").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(["lib", "", str(tmp_path / "elsewhere")]))
    recorded = session_import_path([str(tmp_path / "study")], None)
    assert recorded == [str(tmp_path / "study"), str(tmp_path), str(tmp_path / "lib"), str(tmp_path / "elsewhere")]


def _recorded(models, name):
    """The fingerprint a session records for the model class ``name.Net`` of ``models``."""
    from lightning_bohb import RandomStrategy
    from lightning_bohb.cli.study import YamlSearchSpace

    sys.path.insert(0, str(models))
    try:
        net = import_class(f"{name}.Net")
    finally:
        sys.path.remove(str(models))
    used = (YamlSearchSpace({"lr": {"constant": 1}}, {"metric": "m"}), RandomStrategy(), {})
    return fingerprint.code_fingerprint(*used, classes=[net]), used


def test_a_resume_refuses_a_changed_class_from_its_file_naming_it(project, monkeypatch):
    pytest.importorskip("torch")
    models, name = project
    recorded, _ = _recorded(models, name)
    record = recorded["sources"][f"{name}.Net"]
    assert record == {"module": name, "qualname": "Net", "file": str(models / f"{name}.py"), "source": record["source"]}
    assert all(isinstance(v, str) for r in recorded["sources"].values() for v in r.values())  # plain data
    sys.modules.pop(name, None)
    monkeypatch.syspath_prepend(str(models))
    assert fingerprint.check_sources(recorded, "s", False, [str(models)]) == []
    (models / f"{name}.py").write_text(MODEL_SOURCE.replace("return x", "return x * 2"))
    with pytest.raises(SessionError, match=rf"code changed since session s started:\n  - class {name}.Net: source changed"):
        fingerprint.check_sources(recorded, "s", False, [str(models)])
    assert fingerprint.check_sources(recorded, "s", True, [str(models)]) == [f"class {name}.Net: source changed"]
    assert name not in sys.modules


def test_a_resume_refuses_a_class_it_cannot_import_with_the_folder_never_as_a_change(project, tmp_path):
    pytest.importorskip("torch")
    models, name = project
    recorded, used = _recorded(models, name)
    sys.modules.pop(name, None)
    moved = tmp_path / "project" / "moved"
    moved.mkdir()
    (models / f"{name}.py").rename(moved / f"{name}.py")
    with pytest.raises(SessionError) as info:
        fingerprint.check_sources(recorded, "s", False, [str(models)])
    message = str(info.value)
    assert f"class {name}.Net cannot be imported: no module named {name!r}" in message
    assert f"it was {models / (name + '.py')}, no longer there" in message and f"PYTHONPATH={moved}" in message
    assert "changed" not in message
    # Found by the full check (a session recorded without sources): the same refusal, never "code changed".
    base = {"model": {"class_path": f"{name}.Net"}}
    with pytest.raises(SessionError) as info:
        fingerprint.check_unchanged({"classes": recorded["classes"]}, "s", False, used[0], used[1], base, None, [str(models)])
    assert f"class {name}.Net cannot be imported" in str(info.value) and "changed" not in str(info.value)


def test_a_state_whose_search_space_only_the_recorded_path_imports_loads_from_a_fresh_shell(tmp_path):
    from lightning_bohb import OptimizationConfig, RandomStrategy
    from lightning_bohb.session.state import TuneSessionState
    from lightning_bohb.utils.files import make_private_dir

    code = tmp_path / "code"
    code.mkdir()
    module = f"lt_space_{os.getpid()}"
    (code / f"{module}.py").write_text(
        "from lightning_bohb import SearchSpace\n\n\nclass Space(SearchSpace):\n"
        "    def get_search_space(self):\n        return {'lr': 0.1}\n\n"
        "    def get_metric_config(self):\n        return {'metric': 'val_loss', 'mode': 'min'}\n"
    )
    session = make_private_dir(tmp_path / "exp" / "session_20260101_000000_abcdef")
    sys.path.insert(0, str(code))
    try:  # saved as a run saves it: the module imported, so its class is written by its path
        state = TuneSessionState(
            session_id="20260101_000000_abcdef", experiment_name="exp", search_space=import_class(f"{module}.Space")(),
            strategy=RandomStrategy(), optimization_config=OptimizationConfig(max_epochs=1, num_samples=1), base_config={},
            sys_path=[str(code)],
        )
        state.save(session)
    finally:
        sys.path.remove(str(code))
        sys.modules.pop(module, None)
    assert json.loads((session / "session_state.json").read_text())["search_space"]["class_path"] == f"{module}.Space"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    load = "import sys; from lightning_bohb.session.state import TuneSessionState as S; "
    load += "print(type(S.load(sys.argv[1]).search_space).__module__)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", load, str(session)], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == module, done.stderr[-2000:]
    (code / f"{module}.py").unlink()  # gone for good: the error says what to add, not that the code changed
    done = subprocess.run([sys.executable, "-c", load, str(session)], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert f"Add the folder that holds {module} to the import path" in done.stderr and "changed" not in done.stderr.splitlines()[-1]


def test_the_packages_own_classes_are_not_compared_so_a_session_outlives_a_release():
    from lightning_bohb import SearchSpace
    from lightning_bohb.core.strategies import BOHBStrategy
    from lightning_bohb.session.fingerprint import changes_since, check_sources, code_fingerprint

    class Space(SearchSpace):
        def get_search_space(self):
            return {}

        def get_metric_config(self):
            return {"metric": "val_loss", "mode": "min"}

    space, strategy = Space(), BOHBStrategy()
    recorded = code_fingerprint(space, strategy, {}, classes=[])
    assert [key for key in recorded["classes"] if key.startswith("lightning_bohb.")] == []
    assert any(key.endswith(".Space") for key in recorded["classes"])  # the user's class still is
    # A fingerprint of an earlier release recorded the strategy's source, which this release changed.
    older = {**recorded, "classes": {**recorded["classes"], "lightning_bohb.core.strategies.BOHBStrategy": "0" * 16}}
    older["sources"] = {"lightning_bohb.core.strategies.BOHBStrategy": {
        "module": "lightning_bohb.core.strategies", "qualname": "BOHBStrategy", "file": "/gone.py", "source": "0" * 16}}
    assert changes_since(older, space, strategy, {}, classes=[]) == []
    assert check_sources(older, "session", allow=False, import_path=[]) == []
