"""The README and the documentation site stay true to the code: every study key documented, links resolve.

`mkdocs build --strict` (in `.ci/run`) checks the links between the pages of `docs/`; these tests check
what it cannot: that the study page names every key the study loader accepts, that its examples load,
and that the README is short, its links lead to files, and its test command is the one CI runs.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import pytest
import tomllib
import yaml

from lightning_bohb.cli.study import CLI_KEYS, CONSTANT, STUDY_KEYS, parse_study
from lightning_bohb.core.optimization_config import OptimizationConfig
from lightning_bohb.core.search_space import DISTRIBUTIONS, MODES
from lightning_bohb.core.strategies import STRATEGIES

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
STUDY_PAGE = ROOT / "docs" / "study.md"
EXAMPLE_STUDY = ROOT / "examples" / "study.yaml"


def study_keys() -> dict[str, list[str]]:
    """Every key the study loader accepts, by where it goes: read from the code, never listed by hand."""
    arguments = sorted(
        {name for cls in STRATEGIES.values() for name in inspect.signature(cls.__init__).parameters if name != "self"}
    )
    return {
        "top level": list(STUDY_KEYS) + list(CLI_KEYS),
        "search_space distributions": sorted(DISTRIBUTIONS) + [CONSTANT],
        "metric": ["metric", "mode", *MODES],
        "strategy names": sorted(STRATEGIES),
        "strategy arguments": ["name", *arguments],
        "optimization": [f.name for f in dataclasses.fields(OptimizationConfig)],
    }


def undocumented(page: str, keys: list[str]) -> list[str]:
    return [key for key in keys if f"`{key}`" not in page]


@pytest.mark.parametrize("where", list(study_keys()))
def test_the_study_page_documents_every_key_the_loader_accepts(where):
    missing = undocumented(STUDY_PAGE.read_text(), study_keys()[where])
    assert not missing, f"{STUDY_PAGE.relative_to(ROOT)} does not document these {where} keys: {missing}"


def test_a_key_missing_from_the_study_page_is_found():
    page = STUDY_PAGE.read_text().replace("`pause_at`", "pause_at")
    assert undocumented(page, study_keys()["optimization"]) == ["pause_at"]


def _yaml_blocks(text: str) -> list[str]:
    return re.findall(r"^```yaml\n(.*?)^```", text, flags=re.M | re.S)


def test_the_study_page_examples_are_studies_the_loader_accepts():
    blocks = [block for block in _yaml_blocks(STUDY_PAGE.read_text()) if "base_config:" in block]
    assert blocks, "the study page has no example study"
    for block in blocks:
        study = parse_study(yaml.safe_load(block), EXAMPLE_STUDY)  # relative paths: examples/config.yaml
        assert study.space and study.metric
    full = yaml.safe_load(blocks[-1])
    for where in ("top level", "optimization"):
        section = full if where == "top level" else full["optimization"]
        assert set(study_keys()[where]) <= set(section), f"the 'Every key at once' example lacks {where} keys"
    assert "--8<-- \"examples/study.yaml\"" in STUDY_PAGE.read_text()  # the example file itself, included by the build


def test_the_readme_shows_the_example_study_as_it_is():
    (block,) = [b for b in _yaml_blocks(README.read_text()) if "base_config:" in b]
    example = "".join(line for line in EXAMPLE_STUDY.read_text().splitlines(keepends=True) if not line.startswith("#"))
    assert block == example


def test_the_readme_is_a_ten_minute_read():
    assert len(README.read_text().splitlines()) <= 250


def test_every_relative_link_of_the_readme_leads_to_a_file():
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README.read_text())
    local = [t for t in targets if "://" not in t]
    assert "docs/study.md" in local and "docs/dashboard.png" in local
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, f"README links to missing files: {missing}"


def test_ci_runs_exactly_the_readmes_test_command():
    commands = re.findall(r"^```bash\n(.*?)\n```", README.read_text(), flags=re.M | re.S)
    (test_command,) = [c for c in commands if "pytest" in c]
    mkdocs = test_command.split("mkdocs build")[1].split("&&")[0].split()
    assert "--strict" in mkdocs and "-q" not in mkdocs  # quiet hides the warnings strict mode counts: it would pass
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"bash -c '{test_command}'" in ci


def test_every_extra_the_docs_name_exists_and_tensorboard_comes_with_its_advice():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    texts = [README.read_text()] + [page.read_text() for page in sorted((ROOT / "docs").glob("*.md"))]
    named = {extra for text in texts for group in re.findall(r"\.\[([a-z0-9_,-]+)\]", text) for extra in group.split(",")}
    assert named and not named - set(extras), f"extras named in the docs but not in pyproject.toml: {named - set(extras)}"
    advised = [text for text in texts if "tensorboard --logdir" in text]
    assert advised
    for text in advised:
        extras_named = {e for group in re.findall(r"\.\[([a-z0-9_,-]+)\]", text) for e in group.split(",")}
        assert any(req.startswith("tensorboard") for extra in extras_named for req in extras[extra]), (
            "a page advises `tensorboard --logdir` but names no extra that installs tensorboard"
        )
    assert "docs" in re.findall(r"lightning-bohb\[([a-z0-9_,]+)\]", " ".join(extras["dev"]))[0].split(",")
