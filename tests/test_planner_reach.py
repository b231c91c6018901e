"""Every prediction knows its reach: amount / the language's largest swept size."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from test_planner_helpers import SCORE_LANGUAGES, write_score_laws

from planner.cli import main, suggested_sizes

D_MAX = 16_384.0  # every score law's largest swept size (test_planner_helpers)


def test_reach_is_in_the_table_and_the_mixture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    laws = write_score_laws(tmp_path / "laws.json")
    assert main([str(laws), "--budget", "600k", "--out", str(tmp_path / "a"), "--no-plots"]) == 0
    table = capsys.readouterr().out
    header = next(line for line in table.splitlines() if line.startswith("language  examples"))
    assert "reach" in header
    mixture = json.loads((tmp_path / "a" / "mixture.json").read_text())
    for code, entry in mixture["languages"].items():
        assert entry["largest_swept"] == D_MAX
        assert entry["reach"] == pytest.approx(entry["examples"] / D_MAX)
        assert mixture["baselines"]["uniform"]["reach"][code] == pytest.approx(
            mixture["baselines"]["uniform"]["examples"][code] / D_MAX
        )
    assert mixture["max_extrapolation"] is None


def test_far_reach_warns_once_naming_languages_and_sizes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    laws = write_score_laws(tmp_path / "laws.json")
    with caplog.at_level(logging.WARNING):
        assert main([str(laws), "--budget", "1M", "--out", str(tmp_path / "b"), "--no-plots"]) == 0
    capsys.readouterr()
    warnings = [r.getMessage() for r in caplog.records if "reaches beyond" in r.getMessage()]
    assert len(warnings) == 1
    mixture = json.loads((tmp_path / "b" / "mixture.json").read_text())
    far = [code for code, e in mixture["languages"].items() if e["reach"] > 4]
    assert far and all(f"{code} " in warnings[0] for code in far)
    assert "grid.sizes" in warnings[0] and "65.5k" in warnings[0]  # 4 x 16,384
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        argv = [str(laws), "--budget", "1M", "--warn-reach", "1000", "--out", str(tmp_path / "c")]
        assert main([*argv, "--no-plots"]) == 0
    capsys.readouterr()
    assert not [r for r in caplog.records if "reaches beyond" in r.getMessage()]


def test_max_extrapolation_caps_each_language(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    laws = write_score_laws(tmp_path / "laws.json")
    argv = [
        str(laws),
        "--budget",
        "300k",
        "--max-extrapolation",
        "4",
        "--out",
        str(tmp_path / "d"),
    ]
    assert main([*argv, "--no-plots"]) == 0
    capsys.readouterr()
    mixture = json.loads((tmp_path / "d" / "mixture.json").read_text())
    assert mixture["max_extrapolation"] == 4
    for entry in mixture["languages"].values():
        assert entry["examples"] <= 4 * D_MAX and entry["reach"] <= 4 + 1e-9
    for baseline in mixture["baselines"].values():
        assert max(baseline["reach"].values()) <= 4 + 1e-9
    assert sum(mixture["languages"][c]["examples"] for c in SCORE_LANGUAGES) == 300_000


def testsuggested_sizes_step_by_four_to_the_amount() -> None:
    assert suggested_sizes(5128, 128) == ["512", "2.05k", "5.13k"]
    assert suggested_sizes(600, 128) == ["600"]  # 512 is too close to 600 to be worth a run
    assert suggested_sizes(500, 0) == ["500"]
