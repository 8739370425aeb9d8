"""scripts/install (used by scripts/serve and scripts/test) runs pip only when
pyproject.toml changed since the last successful install, and says what it does."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[2]


def checkout(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the script and pyproject.toml, with a .venv whose python records its calls."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "install", tmp_path / "scripts" / "install")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    calls = tmp_path / "calls"
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\necho "$@" >> {calls}\necho "Requirement already satisfied: x"\n')
    python.chmod(0o755)
    return tmp_path / "scripts" / "install", calls


def run(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(script), *args], capture_output=True, text=True, timeout=30, check=True
    )


def test_install_runs_pip_once_then_only_when_pyproject_changes(tmp_path):
    script, calls = checkout(tmp_path)
    first = run(script, "dev")
    assert "installing hookgate[dev] into .venv" in first.stderr
    assert "Requirement already satisfied" not in first.stderr
    assert calls.read_text().count("pip install") == 1
    assert "-e .[dev]" in calls.read_text()

    assert run(script, "dev").stderr == ""
    assert run(script).stderr == ""  # a dev install covers the plain one
    assert calls.read_text().count("pip install") == 1

    with (tmp_path / "pyproject.toml").open("a") as file:
        file.write("\n# a new dependency\n")
    run(script, "dev")
    assert calls.read_text().count("pip install") == 2


def test_a_failed_install_is_tried_again_next_time(tmp_path):
    script, calls = checkout(tmp_path)
    python = tmp_path / ".venv" / "bin" / "python"
    python.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit 1\n')
    assert subprocess.run([str(script)], capture_output=True, timeout=30).returncode != 0
    assert subprocess.run([str(script)], capture_output=True, timeout=30).returncode != 0
    assert calls.read_text().count("pip install") == 2
