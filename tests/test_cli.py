import subprocess
import sys

from typer.testing import CliRunner

from pipelines import __version__
from pipelines.cli import app

runner = CliRunner()


def test_version_prints_the_installed_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"cdr {__version__}"


def test_help_lists_every_command_with_one_line():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    commands = [c.name for c in app.registered_commands] + [g.name for g in app.registered_groups]
    for name in commands:
        assert name in result.output


def test_console_script_runs_without_traceback():
    proc = subprocess.run(
        [sys.executable, "-c", "from pipelines.cli import main; main()", "--version"],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
