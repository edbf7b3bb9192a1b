"""``lightning-bohb --help`` and every command's ``--help`` document the exit codes."""

import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from lightning_bohb.cli.commands import COMMANDS as REGISTRY
from lightning_bohb.cli.main import main

COMMANDS = list(REGISTRY)
EXIT_CODE_LINES = ["0  success", "1  error", "2  bad usage, or an invalid study file", "3  the session paused"]


def test_top_level_help_lists_commands_and_exit_codes(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: lightning-bohb")
    for command in COMMANDS:
        assert f"\n    {command}" in out
    for line in EXIT_CODE_LINES:
        assert line in out


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help_with_exit_codes(capsys, command):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: lightning-bohb {command}")
    for line in EXIT_CODE_LINES:
        assert line in out


def test_the_registry_holds_every_command_once_by_its_name():
    assert COMMANDS == ["run", "pause", "resume", "status", "list", "clean", "export-best", "export", "plot", "dashboard", "trial"]
    assert all(name == command.name for name, command in REGISTRY.items())


@pytest.mark.parametrize("command", [name for name, command in REGISTRY.items() if command.local_only])
def test_commands_on_trial_files_refuse_object_storage_in_one_line(capsys, command):
    session = "s3://bucket/exp/session_x"
    argv = {"export": [command, session, "--csv", "-"], "trial": [command, "pause", session, "t_00000"]}.get(command, [command, session])
    assert main(argv) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: `lightning-bohb {command}` works on a session folder, not on object storage")


def test_run_help_shows_a_study_file():
    import io
    from contextlib import redirect_stdout

    buffer = io.StringIO()
    with redirect_stdout(buffer):
        assert main(["run", "--help"]) == 0
    assert "lr: {loguniform: [1.0e-4, 1.0e-1]}" in buffer.getvalue()


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["status"], ["pause", "x", "--timeout", "0"]])
def test_bad_usage_exits_2(capsys, argv):
    assert main(argv) == 2
    assert "usage: lightning-bohb" in capsys.readouterr().err


def test_version(capsys):
    import lightning_bohb

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"lightning-bohb {lightning_bohb.__version__}"


def test_console_script_and_python_m_are_the_same_entry():
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "lightning-bohb"]
    assert script.value == "lightning_bohb.cli.main:main"
    result = subprocess.run([sys.executable, "-m", "lightning_bohb", "list", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "usage: lightning-bohb list" in result.stdout
