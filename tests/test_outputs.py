"""`muit_core.OutputSet`: a run's outputs land all together, or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from muit_core import ConfigError, OutputSet


def test_all_files_land_together(tmp_path: Path) -> None:
    with OutputSet(tmp_path / "out") as out:
        out.write_text("a.json", "{}\n")
        out.write_bytes("plots/b.png", b"png")
        assert not (tmp_path / "out" / "a.json").exists()  # nothing in place before the end
    assert (tmp_path / "out" / "a.json").read_text() == "{}\n"
    assert (tmp_path / "out" / "plots" / "b.png").read_bytes() == b"png"
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")] == []


def test_a_failure_leaves_every_earlier_output_byte_identical(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("good\n")
    with pytest.raises(RuntimeError, match="half way"), OutputSet(tmp_path) as out:
        out.write_text("a.json", "bad\n")
        out.write_text("new.txt", "x")
        raise RuntimeError("half way")
    assert (tmp_path / "a.json").read_text() == "good\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_out_that_is_a_file_is_refused_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("keep")
    with pytest.raises(ConfigError, match=r"--out '.*f' is a file, not a folder"):
        OutputSet(tmp_path / "f")
    assert (tmp_path / "f").read_text() == "keep"


def test_check_creates_nothing_and_refuses_a_file_on_the_way(tmp_path: Path) -> None:
    OutputSet.check(tmp_path / "new" / "deeper")
    assert not (tmp_path / "new").exists()
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match=r"is not a folder you can write to"):
        OutputSet.check(tmp_path / "f" / "sub")


def test_a_folder_where_a_file_goes_is_refused_before_any_rename(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("good\n")
    (tmp_path / "plot.png").mkdir()
    with pytest.raises(ConfigError, match=r"holds a folder 'plot.png' where a file goes"):  # noqa: SIM117
        with OutputSet(tmp_path) as out:
            out.write_text("a.json", "new\n")
            out.write_bytes("plot.png", b"png")
    assert (tmp_path / "a.json").read_text() == "good\n"  # nothing was put in place
