"""Every command answers --help, and bad input gives one clear line and exit code 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sweeps import cli as sweep_cli


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, timeout=300)


@pytest.mark.parametrize("command", ["plan-sweep", "plan-fit", "plan-allocate"])
def test_help(command: str) -> None:
    script = Path(sys.executable).parent / command
    result = _run(str(script), "--help")
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout and "example" in result.stdout


@pytest.mark.parametrize("sub", ["data", "model"])
def test_sweep_subcommand_help(sub: str) -> None:
    result = _run(str(Path(sys.executable).parent / "plan-sweep"), sub, "--help")
    assert result.returncode == 0 and "usage: plan-sweep" in result.stdout


def test_unknown_language_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = sweep_cli.main(["data", "--languages", "el,klingon"])
    err = capsys.readouterr().err
    assert code == 1
    assert "plan-sweep: error: Unknown language 'klingon'" in err
    assert "Traceback" not in err


def test_not_a_model_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = sweep_cli.main(["model", str(tmp_path)])
    assert code == 1
    assert "is not a model folder" in capsys.readouterr().err


def test_data_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "de.tsv"
    corpus.write_text("The quick brown fox jumps.\tDer schnelle braune Fuchs springt.\n")
    code = sweep_cli.main(
        [
            "data",
            "--languages",
            "de",
            "--source",
            str(corpus),
            "--heldout-fraction",
            "0",
            "--format",
            "json",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert '"train": 1' in out and "Fuchs" in out
