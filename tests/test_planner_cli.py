"""`plan-allocate` end to end: outputs, units, objectives, and every bad input's one line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_planner_helpers import SCORE_LANGUAGES, write_loss_laws, write_score_laws

from muit_core import AllocationError
from planner import Unit, pipeline
from planner.cli import main, parse_budget


@pytest.fixture
def laws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return write_score_laws(tmp_path / "laws.json")


def run(
    argv: list[str], capsys: pytest.CaptureFixture[str], plots: bool = False
) -> tuple[int, str, str]:
    """Run plan-allocate in-process (without plots unless asked: they take most of the time)."""
    code = main(argv if plots else [*argv, "--no-plots"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("plan-allocate: error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_budget_1m_writes_mixture_table_and_plots(
    laws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run([str(laws), "--budget", "1M", "--out", "plan"], capsys, plots=True)
    assert code == 0
    assert "water-filling" in out and "planner gain" in out
    for name in (
        "mixture.yaml",
        "mixture.json",
        "table.txt",
        "frontier.png",
        "marginal_value.png",
    ):
        assert (tmp_path / "plan" / name).stat().st_size > 0
    as_yaml = yaml.safe_load((tmp_path / "plan" / "mixture.yaml").read_text())
    as_json = json.loads((tmp_path / "plan" / "mixture.json").read_text())
    assert as_yaml == as_json
    assert (tmp_path / "plan" / "mixture.yaml").read_text().startswith("# MuIT mixture")
    assert as_json["budget"] == 1_000_000 and as_json["budget_unit"] == "examples"
    assert as_json["total_examples"] == 1_000_000
    langs = as_json["languages"]
    assert list(langs) == list(SCORE_LANGUAGES)
    assert sum(v["examples"] for v in langs.values()) == 1_000_000
    for lang, entry in langs.items():
        assert entry["examples"] <= SCORE_LANGUAGES[lang][0]
        low, value, high = (entry["predicted"][k] for k in ("low", "value", "high"))
        assert low <= value <= high
        assert entry["corpus"] == f"corpora/{lang}.jsonl"
    interleave = as_json["interleave_datasets"]
    assert interleave["languages"] == list(SCORE_LANGUAGES)
    assert sum(interleave["probabilities"]) == pytest.approx(1.0, abs=1e-12)
    assert "interleave_datasets(" in interleave["usage"]
    baselines = as_json["baselines"]
    assert set(baselines) == {
        "uniform", "proportional", "temperature T=3.33", "temperature T=5", "unimax"
    }  # fmt: skip
    for entry in baselines.values():
        assert entry["planner_gain"]["value"] >= -1e-9  # never worse than a heuristic
        assert sum(entry["examples"].values()) == 1_000_000


def test_a_failing_run_leaves_the_earlier_outputs_byte_identical(
    laws: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The last output of a second plan (the marginal-value plot) fails: none of it is written,
    and no staging file is left behind."""
    out = tmp_path / "plan"
    assert main([str(laws), "--budget", "1M", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert len(before) == 5

    def fail(*args: object, **kwargs: object) -> None:
        raise AllocationError("The marginal-value plot failed.")

    monkeypatch.setattr(pipeline, "plot_marginal_value", fail)
    capsys.readouterr()
    assert main([str(laws), "--budget", "500k", "--out", str(out)]) == 1
    assert "The marginal-value plot failed." in error_line(capsys.readouterr().err)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.parametrize("spelling", ["1M", "1_000_000", "1e6", "1000k", "1000000"])
def test_budget_spellings(spelling: str) -> None:
    assert parse_budget(spelling, Unit.EXAMPLES) == 1_000_000
    assert parse_budget("2.5e6", Unit.TOKENS) == 2_500_000


def test_json_format(laws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([str(laws), "--budget", "250k", "--format", "json"], capsys)
    assert code == 0
    assert json.loads(out)["total_examples"] == 250_000


def test_tokens_unit_epochs_floors_and_weights(
    laws: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(laws), "--budget", "40M", "--unit", "tokens", "--format", "json"]
    code, out, _ = run([*argv, "--max-epochs", "2", "--min-per-language", "hi=50k"], capsys)
    assert code == 0
    plan = json.loads(out)
    assert plan["budget_unit"] == "tokens" and plan["max_epochs"] == 2
    tokens = sum(v["tokens"] for v in plan["languages"].values())
    assert tokens == pytest.approx(40e6, rel=1e-4)  # whole examples: within a few examples
    assert plan["languages"]["hi"]["examples"] >= 50_000
    assert plan["languages"]["hi"]["epochs"] > 1.0  # above one pass: the floor forces repeats
    code, out, _ = run(
        [str(laws), "--budget", "300k", "--weights", "ja=5", "--format", "json"], capsys
    )
    weighted = json.loads(out)["languages"]["ja"]["examples"]
    code, out, _ = run([str(laws), "--budget", "300k", "--format", "json"], capsys)
    assert weighted > json.loads(out)["languages"]["ja"]["examples"]


def test_maxmin_on_losses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    laws = write_loss_laws(tmp_path / "loss.json", n_draws=20)
    argv = [str(laws), "--budget", "20k", "--objective", "maxmin", "--out", str(tmp_path / "o")]
    code, out, _ = run([*argv, "--reference", "none", "--format", "json"], capsys)
    assert code == 0
    plan = json.loads(out)
    assert plan["higher_is_better"] is False and plan["method"] == "level-filling"
    assert plan["guard"] is None
    assert "highest heldout_ce" in plan["objective_label"]


def test_target_objective_finds_least_budget(
    laws: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(laws), "--objective", "target", "--targets", "el=50,hi=30", "--format", "json"]
    code, out, _ = run(argv, capsys)
    assert code == 0
    plan = json.loads(out)
    need = plan["budget_to_targets"]
    assert need["planner"] == plan["budget"]
    assert plan["languages"]["el"]["predicted"]["value"] >= 50 - 1e-6
    assert plan["languages"]["hi"]["predicted"]["value"] >= 30 - 1e-6
    assert all(v is None or v >= need["planner"] for v in need.values())
    assert plan["gain_unit"] == "examples"  # target: the gain is the budget saved
    for name, entry in plan["baselines"].items():
        saved = entry["planner_gain"]["value"]
        assert (
            saved is None
            if need[name] is None
            else saved == pytest.approx(need[name] - need["planner"])
        )
    code, out, err = run([*argv[:-2], "--budget", "1k"], capsys)
    assert code == 1 and "more than --budget" in error_line(err)


def test_robust_expected_and_quantile(laws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([str(laws), "--budget", "500k", "--robust", "--format", "json"], capsys)
    assert code == 0
    plan = json.loads(out)
    assert plan["robust"]["mode"] == "expected" and plan["method"] == "water-filling"
    assert all(
        b["robust_objective"] <= plan["robust_objective"] + 1e-9
        for b in plan["baselines"].values()
    )


@pytest.mark.slow
def test_robust_quantile_cli(laws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [str(laws), "--budget", "500k", "--robust", "--quantile", "0.1", "--format", "json"]
    code, out, _ = run(argv, capsys)
    assert code == 0
    plan = json.loads(out)
    assert plan["method"] == "global search" and plan["robust"]["quantile"] == 0.1
    assert all(
        b["robust_objective"] <= plan["robust_objective"] + 1e-9
        for b in plan["baselines"].values()
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--budget", "5M"],
            r"is 2\.26M above what the languages can absorb \(2\.74M examples.*raise --max-epochs",
        ),
        (
            ["--budget", "500k", "--languages", "el,de,tr", "--min-per-language", "200k"],
            r"is 100k below the sum of the per-language floors \(600k examples\); lower --min-per",
        ),
        (["--budget", "0"], r"--budget must be positive"),
        (["--budget", "-5"], r"--budget must be positive"),
        (["--budget", "0.4"], r"--budget '0\.4' is less than one example .*e\.g\. --budget 1k"),
        (
            ["--budget", "1MM", "--max-epochs", "-1", "--seed", "x", "--weights", "el=0"],
            r"Cannot read --budget='1MM'.* --max-epochs must be a positive number such as 1 or 4; "
            r"got '-1'\. --seed must be a whole number.*got 'x'\.$",
        ),
        (
            ["--budget", "1M", "--weights", "xx=2,el=abc"],
            r"Unknown language 'xx' in --weights\. Known: .* Cannot read --weights el='abc'",
        ),
        (["--budget", "1M", "--languages", "el,sw,xx"], r"Unknown languages 'sw', 'xx' in --lan"),
        (
            ["--budget", "1M", "--weights", "el=0,hi=-1"],
            r"--weights el=0 must be positive\. --weights hi=-1 must be positive\.$",
        ),
        (["--budget", "1MM"], r"Cannot read --budget='1MM' as a number; write it like 1M"),
        (
            ["--budget", "1M", "--weights", "xx=2"],
            r"Unknown language 'xx' in --weights\. Known: el, de",
        ),
        (["--budget", "1M", "--weights", "el2"], r"write it like el=2,hi=1"),
        (["--budget", "1M", "--languages", "el,sw"], r"Unknown language 'sw' in --languages"),
        (["--budget", "1M", "--min-per-language", "hi=50k"], r"'?hi'?.*above its cap"),
        (["--budget", "1M", "--max-epochs", "0"], r"--max-epochs must be a positive number"),
        (["--objective", "target"], r"needs --targets"),
        ([], r"--budget is required"),
        (["--budget", "1M", "--targets", "el=3"], r"--targets only applies to --objective target"),
        (["--objective", "target", "--targets", "hi=99"], r"target 99 for 'hi' is out of reach"),
    ],
)
def test_bad_input_one_clear_line(
    laws: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run([str(laws), *extra], capsys)
    assert code == 1 and out == ""
    assert re.search(message, error_line(err)), err


def test_failed_fit_is_named_unless_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    laws = write_score_laws(tmp_path / "laws.json", failed="ja")
    code, _, err = run([str(laws), "--budget", "500k"], capsys)
    assert code == 1
    assert "The saturating fit for 'ja' failed (the optimiser did not converge" in error_line(err)
    code, out, _ = run([str(laws), "--budget", "500k", "--languages", "el,de,tr,vi,hi"], capsys)
    assert code == 0 and "ja" not in out.split("Examples per language")[0]


def test_missing_pool_size_needs_available(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    laws = write_score_laws(tmp_path / "laws.json", with_available=False)
    code, _, err = run([str(laws), "--budget", "100k"], capsys)
    assert code == 1 and "--available el=N" in error_line(err)
    pools = "el=9k,de=9k,tr=9k,vi=9k,ja=9k,hi=9k"
    code, _, _ = run([str(laws), "--budget", "50k", "--available", pools], capsys)
    assert code == 0


def test_missing_laws_file_and_debug(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run([str(tmp_path / "nope.json"), "--budget", "1M"], capsys)
    assert code == 1 and "No laws file" in error_line(err)
    with pytest.raises(Exception, match="No laws file"):
        main([str(tmp_path / "nope.json"), "--budget", "1M", "--debug"])


def test_plan_allocate_end_to_end_loads_no_sweeps_optuna_torch_or_transformers(
    tmp_path: Path,
) -> None:
    """A whole `plan-allocate` run (plan, outputs, plots) in a fresh interpreter."""
    laws = write_score_laws(tmp_path / "laws.json")
    code = (
        "import sys; from planner.cli import main; "
        f"rc = main([{str(laws)!r}, '--budget', '60', '--languages', 'el,hi', "
        f"'--available', 'el=10,hi=10', '--max-epochs', '3', '--out', {str(tmp_path / 'al')!r}]); "
        "heavy = ('sweeps', 'optuna', 'torch', 'transformers'); "
        "bad = sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in heavy}); "
        "print('LOADED=' + ','.join(bad)); sys.exit(rc or (1 if bad else 0))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert "LOADED=" in result.stdout, result.stderr
    loaded = result.stdout.split("LOADED=")[1].strip()
    assert result.returncode == 0 and loaded == "", (
        f"plan-allocate loaded {loaded}: {result.stderr}"
    )
    assert (tmp_path / "al" / "mixture.json").is_file()


def test_console_script_help() -> None:
    exe = Path(sys.executable).with_name("plan-allocate")
    result = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "--budget" in result.stdout and "examples:" in result.stdout


@pytest.mark.slow
def test_end_to_end_from_plan_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """plan-fit on a synthetic results table, then plan-allocate on its default output."""
    from fits.cli import main as plan_fit
    from fits.synthetic import synthetic_results

    monkeypatch.chdir(tmp_path)
    synthetic_results(languages=("de", "el", "hi", "tr")).to_csv("results.csv", index=False)
    assert plan_fit(["results.csv", "--metric", "chrf", "--bootstrap", "100", "--no-plots"]) == 0
    capsys.readouterr()
    code, out, _ = run(["--budget", "50k", "--format", "json"], capsys)  # default fits/laws.json
    assert code == 0
    plan = json.loads(out)
    assert plan["total_examples"] == 50_000
    assert all(b["planner_gain"]["value"] >= -1e-9 for b in plan["baselines"].values())
