"""`plan-fit` end to end on a realistic synthetic sweep: laws file, table, plots, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fits import read_laws
from fits.cli import main
from fits.synthetic import synthetic_results


@pytest.fixture(scope="module")
def results_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 languages, sizes 0 and 64..4096, 3 seeds, heldout_ce falling with noise, chrF, BLEU."""
    path = tmp_path_factory.mktemp("sweep") / "results.csv"
    synthetic_results().to_csv(path, index=False)
    return path


def test_plan_fit_writes_laws_table_and_plots(
    results_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fits"
    assert main([str(results_csv), "--bootstrap", "100", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "heldout_ce (lower is better)" in table
    assert "Held-out error by law" in table
    for code in ("de", "hi", "km", "tr", "zh-CN"):
        assert f"\n{code} " in table
        assert (out / "plots" / f"{code}.png").stat().st_size > 10_000
    assert (out / "plots" / "overview.png").stat().st_size > 10_000
    laws = read_laws(out / "laws.json")
    assert laws.metric == "heldout_ce" and not laws.higher_is_better
    assert laws.objective == "sft" and laws.settings["bootstrap"] == 100
    for code, fit in laws.fits.items():
        assert fit.success, (code, fit.message)
        assert fit.n_draws == 100
        assert fit.data["n_available"] > 0 and fit.data["corpus"] == "libreoffice"
        # the curve falls with data, within the interval
        d = np.array([100.0, 1e4])
        low, high = fit.interval(d)
        assert fit(d)[1] < fit(d)[0] and (low <= fit(d)).all() and (fit(d) <= high).all()
        assert set(fit.diagnostics["extrapolation"]) == {
            "power",
            "saturating",
            "loglinear",
            "similarity",
        }
    assert "below_base" in laws.fits["km"].diagnostics["flags"]


def test_plan_fit_json_format_and_default_out_dir(
    results_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            str(results_csv),
            "--metric",
            "chrf",
            "--law",
            "saturating",
            "--bootstrap",
            "0",
            "--no-plots",
            "--format",
            "json",
        ]
    )
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["metric"] == "chrf" and payload["higher_is_better"] is True
    assert Path(payload["laws_file"]) == results_csv.parent / "fits" / "laws.json"
    assert {lang["law"] for lang in payload["languages"].values()} == {"saturating"}
    assert all(lang["extrapolation_error"] is not None for lang in payload["languages"].values())


def test_several_models_give_one_laws_file_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small = synthetic_results(languages=("de", "hi"), metrics=("heldout_ce",))
    large = small.assign(model="big-model", n_params=1.7e9, value=small["value"] * 0.9)
    path = tmp_path / "results.csv"
    pd.concat([small, large]).to_csv(path, index=False)
    assert main([str(path), "--law", "power", "--bootstrap", "0", "--no-plots"]) == 0
    names = sorted(p.name for p in (tmp_path / "fits").glob("*.json"))
    assert names == ["laws_sft_SmolLM2-135M-Instruct.json", "laws_sft_big-model.json"]
    assert read_laws(tmp_path / "fits" / "laws_sft_big-model.json").model == "big-model"
    capsys.readouterr()
    assert (
        main(
            [
                str(path),
                "--law",
                "chinchilla",
                "--bootstrap",
                "0",
                "--no-plots",
                "--out",
                str(tmp_path / "c"),
            ]
        )
        == 0
    )
    laws = read_laws(tmp_path / "c" / "laws.json")
    assert laws.fits["de"].fixed == {"n": 1.7e9}


@pytest.mark.parametrize(
    ("change", "args", "message"),
    [
        (lambda f: f.drop(columns=["n_params"]), [], "lacks the column(s) n_params"),
        (lambda f: f, ["--metric", "comet"], "Metric 'comet' is not in the results table"),
        (lambda f: f.assign(value=f["value"].where(f.index != 5)), [], "NaN or inf"),
        (lambda f: f, ["--law", "chinchilla"], "2 or more model sizes"),
        (lambda f: f, ["--share", "zeta", "--law", "power"], "Cannot share zeta"),
        (lambda f: f, ["--model", "gpt"], "No runs with model 'gpt'"),
    ],
)
def test_user_errors_are_one_line_and_exit_1(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: object,
    args: list[str],
    message: str,
) -> None:
    frame = synthetic_results(languages=("de", "hi"), metrics=("heldout_ce",))
    path = tmp_path / "results.csv"
    change(frame).to_csv(path, index=False)  # type: ignore[operator]
    assert main([str(path), "--bootstrap", "0", "--no-plots", *args]) == 1
    err = capsys.readouterr().err
    error_lines = [line for line in err.splitlines() if line.startswith("plan-fit: error:")]
    assert len(error_lines) == 1 and message in error_lines[0]
    assert err.rstrip().endswith(
        "(`plan-fit --help` lists the options; --debug shows the traceback)"
    )
    assert "usage:" not in err  # one sentence and a pointer, not the whole usage


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_run_that_fails_while_plotting_leaves_every_earlier_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = synthetic_results(languages=("de", "hi"), metrics=("heldout_ce",))
    path = tmp_path / "results.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "fits"
    assert main([str(path), "--bootstrap", "5", "--out", str(out)]) == 0
    before = snapshot(out)

    def broken_overview(*args: object, **kwargs: object) -> object:
        raise MemoryError("no room for the overview")

    monkeypatch.setattr("fits.cli.plot_overview", broken_overview)
    with pytest.raises(MemoryError):
        main([str(path), "--bootstrap", "5", "--seed", "3", "--out", str(out)])
    assert snapshot(out) == before  # laws.json and the language plots are the earlier ones


def test_one_size_per_language_is_an_error_naming_the_sizes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = synthetic_results(languages=("de", "hi"), sizes=(0, 64), metrics=("heldout_ce",))
    path = tmp_path / "results.csv"
    frame.to_csv(path, index=False)
    assert main([str(path), "--bootstrap", "0", "--no-plots"]) == 1
    err = capsys.readouterr().err
    assert (
        "plan-fit: error: No language of heldout_ce (sft/SmolLM2-135M-Instruct) could be "
        "fitted: every law needs 2 or more distinct data sizes above 0, and each language has "
        "fewer (de: 64; hi: 64); run the sweep at more sizes (grid.sizes), export it, then run "
        "plan-fit again."
    ) in err
    assert "pooled" not in err
    assert not (tmp_path / "fits").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seed", "-1"], "--seed must be >= 0; got -1."),
        (["--holdout", "0"], "--holdout must be 1 or more"),
        (["--n-params", "0"], "--n-params='0' must be above 0; give a size such as 135M."),
        (["--plan-max", "0", "--no-plots"], "--plan-max='0' must be above 0"),
        (["--max-value", "nan"], "--max-value=nan must be a positive number"),
        (["--out", "{csv}/fits"], "is not a folder you can write to"),
    ],
)
def test_every_argument_is_checked_before_anything_is_read_or_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    path = tmp_path / "results.csv"
    path.write_text("not read: the arguments fail first\n")
    argv = [arg.replace("{csv}", str(path)) for arg in args]
    assert main([str(path), "--bootstrap", "0", *argv]) == 1
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]


def test_duplicates_are_averaged_only_when_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = synthetic_results(languages=("de", "hi"), metrics=("heldout_ce",))
    path = tmp_path / "results.csv"
    pd.concat([frame, frame.iloc[[3]]]).to_csv(path, index=False)
    argv = [str(path), "--bootstrap", "0", "--no-plots"]
    assert main(argv) == 1
    assert "appear more than once" in capsys.readouterr().err
    assert main([*argv, "--average-duplicates"]) == 0
    assert read_laws(tmp_path / "fits" / "laws.json").fits["de"].success
