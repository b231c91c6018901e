"""Every refused input, one row each: the command line, the one sentence it must print, exit 1,
no traceback, and every earlier output in the workspace byte-identical afterwards.

The workspace (built once per module) holds a good results table, the laws `plan-fit` wrote for
it and the plan `plan-allocate` wrote from those laws; each case may first write a bad file of
its own (`prepare`), then runs the command in-process with `--out` pointing at the good outputs,
so a command that writes before it checks is caught. Adding a bad input is one `BadInput(...)`
line in `CASES`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fits.cli import main as plan_fit
from fits.synthetic import synthetic_results
from planner.cli import main as plan_allocate
from planner.design_cli import main as plan_suggest
from sweeps.cli import main as plan_sweep

COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "plan-fit": plan_fit,
    "plan-allocate": plan_allocate,
    "plan-sweep": plan_sweep,
    "plan-suggest": plan_suggest,
    "plan-fit transfer": lambda argv: plan_fit(["transfer", *argv]),
}


@dataclass(frozen=True)
class BadInput:
    """One refused input.

    Attributes:
        id: the test id.
        command: `plan-fit`, `plan-allocate` or `plan-sweep`.
        argv: its arguments; `{ws}` is replaced by the workspace folder.
        sentence: a regex the error line must match (it names the value and the fix).
        prepare: writes the case's bad input into the workspace (a path under `{ws}/bad/`).
    """

    id: str
    command: str
    argv: tuple[str, ...]
    sentence: str
    prepare: Callable[[Path], None] | None = None


def _results(ws: Path, name: str, change: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    (ws / "bad").mkdir(exist_ok=True)
    change(pd.read_csv(ws / "results.csv")).to_csv(ws / "bad" / name, index=False)


def _laws(ws: Path, name: str, change: Callable[[dict], None]) -> None:  # type: ignore[type-arg]
    (ws / "bad").mkdir(exist_ok=True)
    raw = json.loads((ws / "fits" / "laws.json").read_text())
    change(raw)
    (ws / "bad" / name).write_text(json.dumps(raw))


def _mixture(ws: Path, name: str, change: Callable[[str], str]) -> None:
    (ws / "bad").mkdir(exist_ok=True)
    (ws / "bad" / name).write_text(change((ws / "allocate" / "mixture.json").read_text()))


def _edit_json(change: Callable[[dict], None]) -> Callable[[str], str]:  # type: ignore[type-arg]
    def edit(text: str) -> str:
        raw = json.loads(text)
        change(raw)
        return json.dumps(raw)

    return edit


def _first_language(raw: dict) -> dict:  # type: ignore[type-arg]
    return next(iter(raw["languages"].values()))  # type: ignore[no-any-return]


def _without_draws(raw: dict) -> None:  # type: ignore[type-arg]
    for entry in raw["languages"].values():
        entry["draws"] = {}
        entry["predictive"] = None
        entry["n_draws"] = 0


def _general_spec(ws: Path, files: dict[str, str]) -> None:
    """A spec at `{ws}/bad/general.toml` asking for general data `{ws}/bad/general_{lang}.jsonl`,
    and those files: one line each, for the languages in `files` only."""
    (ws / "bad").mkdir(exist_ok=True)
    for lang, line in files.items():
        (ws / "bad" / f"general_{lang}.jsonl").write_text(line + "\n")
    (ws / "bad" / "general.toml").write_text(
        "[data]\nlanguages = ['de', 'el', 'hi']\n"
        f"general_data = '{ws}/bad/general_{{lang}}.jsonl'\ngeneral_ratio = 0.5\n"
    )


def _validation(
    ws: Path, name: str, language: str = "hi", metric: str = "heldout_ce", model: str = ""
) -> None:
    """A validation table of two mixture runs of the workspace's languages (`language` in
    place of hi), as `plan-sweep validate` writes it."""
    (ws / "bad").mkdir(exist_ok=True)
    laws = json.loads((ws / "fits" / "laws.json").read_text())
    fixed = {"seed": 0, "examples": 100, "metric": metric, "value": 2.0}
    rows = [
        {"allocator": alloc, "language": code, **fixed, "model": model or laws.get("model", "")}
        for alloc in ("planner", "uniform")
        for code in ("de", "el", language)
    ]
    pd.DataFrame(rows).to_csv(ws / "bad" / name, index=False)


def _transfer(ws: Path, languages: tuple[str, ...]) -> None:
    """bad/laws-transfer.json: the workspace's laws with a selected transfer law of
    `languages` only."""
    from fits import read_laws, write_laws
    from fits.transfer import TransferLaw

    (ws / "bad").mkdir(exist_ok=True)
    n = len(languages)
    law = TransferLaw(
        form="shared",
        params={"tau": 0.2},
        intervals={"tau": (0.1, 0.3)},
        level=0.9,
        languages=languages,
        matrix=0.2 * (np.ones((n, n)) - np.eye(n)),
        levels=np.zeros(n),
        metric="heldout_ce",
        higher_is_better=False,
        n_runs=6,
        n_mixtures=3,
        n_bootstrap=0,
        seed=0,
        held_out=(),
        lomo_mae={"independent": 0.1, "level": 0.08, "shared": 0.05},
        in_sample_mae={"independent": 0.1, "level": 0.08, "shared": 0.05},
        selected=True,
    )
    laws = read_laws(ws / "fits" / "laws.json")
    target = ws / "bad" / "laws-transfer.json"
    write_laws(dataclasses.replace(laws, transfer=law.to_dict()), target)


LAWS = "{ws}/fits/laws.json"
CASES: list[BadInput] = [
    # --- plan-fit ---------------------------------------------------------------------------
    BadInput(
        "fit-plan-max-typo",
        "plan-fit",
        ("{ws}/results.csv", "--out", "{ws}/fits", "--plan-max", "5OOk"),
        r"--plan-max='5OOk'.*1M",
    ),
    BadInput(
        "fit-plan-max-not-a-number-without-plots",
        "plan-fit",
        ("{ws}/results.csv", "--out", "{ws}/fits", "--plan-max", "abc", "--no-plots"),
        r"--plan-max='abc'",
    ),
    BadInput(
        "fit-out-is-a-file",
        "plan-fit",
        ("{ws}/results.csv", "--out", "{ws}/results.csv"),
        r"--out '.*results.csv' is a file, not a folder",
    ),
    BadInput(
        "fit-out-below-a-file",
        "plan-fit",
        ("{ws}/results.csv", "--out", "{ws}/results.csv/fits"),
        r"Cannot write to --out '.*results.csv/fits' \('.*results.csv' is not a folder",
    ),
    BadInput(
        "fit-seed-negative",
        "plan-fit",
        ("{ws}/results.csv", "--out", "{ws}/fits", "--seed", "-1"),
        r"--seed must be >= 0; got -1",
    ),
    BadInput(
        "fit-holdout-zero",
        "plan-fit",
        ("{ws}/results.csv", "--out", "{ws}/fits", "--holdout", "0"),
        r"--holdout must be 1 or more .*; got 0",
    ),
    BadInput(
        "fit-negative-cross-entropy",
        "plan-fit",
        ("{ws}/bad/negative-ce.csv", "--out", "{ws}/fits"),
        r"1 row\(s\) of 'heldout_ce' lie outside the range it can take \(0 to inf nats/token\): "
        r"de@0/seed 0: value -0.5 \(line 2\); fix or remove them",
        lambda ws: _results(
            ws, "negative-ce.csv", lambda f: f.assign(value=f["value"].where(f.index != 0, -0.5))
        ),
    ),
    BadInput(
        "fit-chrf-above-100",
        "plan-fit",
        ("{ws}/bad/chrf-120.csv", "--metric", "chrf", "--out", "{ws}/fits"),
        r"1 row\(s\) of 'chrf' lie outside the range it can take \(0 to 100 chrF\): "
        r"de@0/seed 0: value 120 \(line 3\)",
        lambda ws: _results(
            ws, "chrf-120.csv", lambda f: f.assign(value=f["value"].where(f.index != 1, 120.0))
        ),
    ),
    BadInput(
        "fit-text-in-value",
        "plan-fit",
        ("{ws}/bad/text.csv", "--out", "{ws}/fits", "--drop-nonfinite"),
        r"column 'value' holds text that is not a number in 1 row\(s\) \(de@0/seed 0: value "
        r"'abc' \(line 2\)\); write a number there",
        lambda ws: _results(
            ws,
            "text.csv",
            lambda f: f.assign(value=f["value"].astype(object).where(f.index != 0, "abc")),
        ),
    ),
    BadInput(
        "fit-duplicate-row",
        "plan-fit",
        ("{ws}/bad/duplicate.csv", "--out", "{ws}/fits"),
        r"1 run\(s\) of 'heldout_ce' appear more than once: de@0/seed 0 of "
        r"sft/SmolLM2-135M-Instruct \(line 2, line \d+: values ([\d.]+), \1\); remove the extra "
        r"rows, or pass --average-duplicates",
        lambda ws: _results(ws, "duplicate.csv", lambda f: pd.concat([f, f.iloc[[0]]])),
    ),
    BadInput(
        "fit-conflicting-row",
        "plan-fit",
        ("{ws}/bad/conflict.csv", "--out", "{ws}/fits"),
        r"1 run\(s\) of 'heldout_ce' appear more than once: de@0/seed 0 .* values [\d.]+, 9.9\)",
        lambda ws: _results(
            ws, "conflict.csv", lambda f: pd.concat([f, f.iloc[[0]].assign(value=9.9)])
        ),
    ),
    BadInput(
        "fit-one-size-per-language",
        "plan-fit",
        ("{ws}/bad/one-size.csv", "--out", "{ws}/fits"),
        r"No language of heldout_ce \(sft/SmolLM2-135M-Instruct\) could be fitted: every law "
        r"needs 2 or more distinct data sizes above 0, and each language has fewer \(de: 64; "
        r"el: 64; hi: 64\); run the sweep at more sizes",
        lambda ws: _results(ws, "one-size.csv", lambda f: f[f["n_examples"].isin([0, 64])]),
    ),
    # The laws file: `fits.read_laws` refuses it, so `plan-allocate` (its reader) says why.
    BadInput(
        "laws-negative-exponent",
        "plan-allocate",
        ("{ws}/bad/negative-exponent.json", "--budget", "10k", "--out", "{ws}/allocate"),
        r"power fit for 'de' is impossible: the power law's beta=-0.45 must be positive; "
        r"re-run plan-fit",
        lambda ws: _laws(
            ws,
            "negative-exponent.json",
            lambda raw: _first_language(raw).update(
                law="power", params={"e": 1.8, "b": 40.0, "beta": -0.45}, draws={}, stderr={}
            ),
        ),
    ),
    BadInput(
        "laws-flipped-slope",
        "plan-allocate",
        ("{ws}/bad/flipped-slope.json", "--budget", "10k", "--out", "{ws}/allocate"),
        r"loglinear fit for 'de' is impossible: the loglinear law \(a=2, b=0.1\) rises with "
        r"data, heldout_ce going from .* the wrong way for a lower-is-better metric; re-run",
        lambda ws: _laws(
            ws,
            "flipped-slope.json",
            lambda raw: _first_language(raw).update(
                law="loglinear", params={"a": 2.0, "b": 0.1}, draws={}, stderr={}, d_min=64.0
            ),
        ),
    ),
    BadInput(
        "laws-parameter-deleted",
        "plan-allocate",
        ("{ws}/bad/deleted.json", "--budget", "10k", "--out", "{ws}/allocate"),
        r"loglinear fit for 'de' is impossible: the loglinear law's parameter a is missing; "
        r"re-run plan-fit",
        lambda ws: _laws(
            ws,
            "deleted.json",
            lambda raw: _first_language(raw).update(
                law="loglinear", params={"b": -0.2}, draws={}, stderr={}, d_min=64.0
            ),
        ),
    ),
    BadInput(
        "laws-parameter-null",
        "plan-allocate",
        ("{ws}/bad/null.json", "--budget", "10k", "--out", "{ws}/allocate"),
        r"power fit for 'de' is impossible: e=nan is not a finite number; re-run plan-fit",
        lambda ws: _laws(
            ws,
            "null.json",
            lambda raw: _first_language(raw).update(
                law="power", params={"e": None, "b": 40.0, "beta": 0.45}, draws={}, stderr={}
            ),
        ),
    ),
    BadInput(
        "fit-two-studies-of-one-objective-and-model",
        "plan-fit",
        ("{ws}/bad/studies.csv", "--out", "{ws}/fits"),
        r"holds 2 sweep studies for sft/.* \(demo-a, demo-b\).*fit one with --study NAME",
        lambda ws: _results(
            ws,
            "studies.csv",
            lambda t: pd.concat([t.assign(study="demo-a"), t.assign(study="demo-b")]),
        ),
    ),
    BadInput(
        "fit-unknown-study",
        "plan-fit",
        ("{ws}/bad/studies.csv", "--out", "{ws}/fits", "--study", "demo-c"),
        r"No runs of --study 'demo-c' in the table; it has: demo-a, demo-b",
        lambda ws: _results(
            ws,
            "studies.csv",
            lambda t: pd.concat([t.assign(study="demo-a"), t.assign(study="demo-b")]),
        ),
    ),
    # --- plan-allocate ----------------------------------------------------------------------
    BadInput(
        "allocate-unknown-reference",
        "plan-allocate",
        (LAWS, "--budget", "10k", "--reference", "best", "--out", "{ws}/allocate"),
        r"Unknown --reference 'best'; choose one of uniform, proportional, .*, or none\.",
    ),
    BadInput(
        "allocate-confidence-out-of-range",
        "plan-allocate",
        (LAWS, "--budget", "10k", "--confidence", "1.5", "--out", "{ws}/allocate"),
        r"--confidence must be a number between 0.5 and 1, e.g. 0.9; got '1.5'\.",
    ),
    BadInput(
        "allocate-confidence-not-a-number",
        "plan-allocate",
        (LAWS, "--budget", "10k", "--confidence", "sure", "--out", "{ws}/allocate"),
        r"--confidence must be a number between 0.5 and 1, e.g. 0.9; got 'sure'\.",
    ),
    BadInput(
        "allocate-budget-below-one-example",
        "plan-allocate",
        (LAWS, "--budget", "0.5", "--out", "{ws}/allocate"),
        r"--budget '0.5' is less than one example",
    ),
    BadInput(
        "allocate-out-is-a-file",
        "plan-allocate",
        (LAWS, "--budget", "10k", "--out", "{ws}/results.csv"),
        r"--out '.*results.csv' is a file, not a folder",
    ),
    BadInput(
        "allocate-out-below-a-file",
        "plan-allocate",
        (LAWS, "--budget", "10k", "--out", "{ws}/results.csv/plan"),
        r"Cannot write to --out '.*results.csv/plan' \('.*results.csv' is not a folder",
    ),
    BadInput(
        "allocate-out-holds-a-folder-named-like-an-output",
        "plan-allocate",
        (LAWS, "--budget", "10k", "--out", "{ws}/bad/plan"),
        r"--out '.*plan' holds a folder named 'mixture.json' where plan-allocate writes a file",
        prepare=lambda ws: (ws / "bad" / "plan" / "mixture.json").mkdir(parents=True),
    ),
    BadInput(
        "allocate-max-epochs-not-a-number",
        "plan-allocate",
        (LAWS, "--budget", "10k", "--max-epochs", "abc", "--out", "{ws}/allocate"),
        r"--max-epochs must be a positive number such as 1 or 4; got 'abc'",
    ),
    BadInput(
        "allocate-quantile-not-a-number",
        "plan-allocate",
        (LAWS, "--budget", "10k", "--quantile", "abc", "--out", "{ws}/allocate"),
        r"--quantile must be a positive number such as 0.1; got 'abc'",
    ),
    BadInput(
        "allocate-seed-negative",
        "plan-allocate",
        (LAWS, "--budget", "10k", "--seed", "-1", "--out", "{ws}/allocate"),
        r"--seed must be a whole number, 0 or more, such as 0; got '-1'",
    ),
    BadInput(
        "allocate-available-zero",
        "plan-allocate",
        (LAWS, "--budget", "10k", "--available", "de=0", "--out", "{ws}/allocate"),
        r"--available de=0 is not a pool size; give the number of training pairs",
    ),
    BadInput(
        "allocate-every-option-problem-at-once",
        "plan-allocate",
        (LAWS, "--budget", "0.5", "--max-epochs", "0", "--out", "{ws}/results.csv"),
        r"less than one example.* --max-epochs must be a positive number.* is a file, not a",
    ),
    BadInput(
        "allocate-every-floor-above-its-cap",
        "plan-allocate",
        (LAWS, "--budget", "10k", "--min-per-language", "de=1M,el=1M", "--out", "{ws}/allocate"),
        r"de=1M is above its cap of 33\.9k.* el=1M is above its cap of 33\.6k",
    ),
    BadInput(
        "allocate-loss-below-zero-before-the-cap",
        "plan-allocate",
        ("{ws}/bad/loss-below-zero.json", "--budget", "5k", "--out", "{ws}/allocate"),
        r"The saturating law for 'de' predicts heldout_ce=-0\.\d+ at [0-9.]+k examples on the "
        r"way to its cap .*, but heldout_ce is at least 0; refit it with plan-fit, or lower "
        r"--max-epochs \(its cap is 33\.9k examples\)",
        # CE = -0.2 + 7.7 (d + 60)**-0.4: 0.08 at the largest fitted size (4096), below 0 from
        # 9.6k examples on, -0.08 at de's pool of 33.9k pairs.
        prepare=lambda ws: _laws(
            ws,
            "loss-below-zero.json",
            lambda raw: raw["languages"]["de"].update(
                law="saturating",
                params={"s_max": -0.2, "a": -1.5 * 60.0**0.4, "d0": 60.0, "alpha": 0.4},
                fixed={},
                stderr={},
                draws={},
                n_draws=0,
                shared=[],
                d_min=64.0,
                d_max=4096.0,
            ),
        ),
    ),
    BadInput(
        "allocate-budget-beyond-max-extrapolation",
        "plan-allocate",
        (LAWS, "--budget", "1M", "--max-extrapolation", "4", "--out", "{ws}/allocate"),
        r"--budget 1M examples cannot be spent within --max-extrapolation 4 .* the largest "
        r"budget that can is .*raise --max-extrapolation",
    ),
    BadInput(
        "allocate-max-extrapolation-zero",
        "plan-allocate",
        (LAWS, "--budget", "10k", "--max-extrapolation", "0", "--out", "{ws}/allocate"),
        r"--max-extrapolation must be a positive number such as 4; got '0'",
    ),
    BadInput(
        "allocate-max-extrapolation-not-a-number",
        "plan-allocate",
        (LAWS, "--budget", "10k", "--max-extrapolation", "far", "--out", "{ws}/allocate"),
        r"--max-extrapolation must be a positive number such as 4; got 'far'",
    ),
    BadInput(
        "allocate-warn-reach-negative",
        "plan-allocate",
        (LAWS, "--budget", "10k", "--warn-reach", "-2", "--out", "{ws}/allocate"),
        r"--warn-reach must be a positive number such as 4; got '-2'",
    ),
    # --- plan-suggest -----------------------------------------------------------------------
    BadInput(
        "suggest-laws-without-draws",
        "plan-suggest",
        ("{ws}/bad/nodraws.json", "--budget", "10k", "--out", "{ws}/allocate"),
        r"has no bootstrap draws, so no cell's value can be weighed; refit with plan-fit "
        r"--bootstrap 200",
        lambda ws: _laws(ws, "nodraws.json", _without_draws),
    ),
    BadInput(
        "suggest-budget-the-pools-cannot-absorb",
        "plan-suggest",
        (LAWS, "--budget", "100M", "--out", "{ws}/allocate"),
        r"budget of 100M examples is .* above what the languages can absorb .*lower --budget",
    ),
    BadInput(
        "suggest-no-cells",
        "plan-suggest",
        (LAWS, "--budget", "10k", "--cells", "0", "--out", "{ws}/allocate"),
        r"--cells must be a whole number, 1 or more, such as 5; got '0'",
    ),
    BadInput(
        "suggest-candidate-size-above-a-pool",
        "plan-suggest",
        (LAWS, "--budget", "10k", "--sizes", "256,10M", "--out", "{ws}/allocate"),
        r"Candidate size 10000000 in --sizes is above the de training pool \(\d+ pairs\); give "
        r"sizes up to \d+",
    ),
    # --- plan-sweep -------------------------------------------------------------------------
    BadInput(
        "sweep-validate-mixture-without-its-sweep-spec",
        "plan-sweep",
        ("validate", "{ws}/allocate/mixture.json", "--out", "{ws}/validate"),
        r"does not carry the sweep's spec .*--spec SPEC",
    ),
    BadInput(
        "sweep-validate-slurm-count-not-a-number",
        "plan-sweep",
        (
            "validate",
            "{ws}/allocate/mixture.json",
            "--spec",
            "smoke",
            "--slurm",
            "workers=eight",
            "--out",
            "{ws}/validate",
        ),
        r"--slurm workers='eight' must be positive whole numbers",
    ),
    BadInput(
        "sweep-validate-random-mixtures-not-a-whole-number",
        "plan-sweep",
        (
            "validate",
            "{ws}/allocate/mixture.json",
            "--spec",
            "smoke",
            "--random-mixtures",
            "2.5",
            "--out",
            "{ws}/validate",
        ),
        r"--random-mixtures '2\.5' is not a whole number",
    ),
    BadInput(
        "sweep-validate-random-mixtures-above-the-cap",
        "plan-sweep",
        (
            "validate",
            "{ws}/allocate/mixture.json",
            "--spec",
            "smoke",
            "--random-mixtures",
            "500",
            "--out",
            "{ws}/validate",
        ),
        r"--random-mixtures 500 is outside 0\.\.50",
    ),
    BadInput(
        "sweep-validate-leave-one-out-the-caps-cannot-hold",
        "plan-sweep",
        (
            "validate",
            "{ws}/bad/tight.json",
            "--spec",
            "smoke",
            "--leave-one-out",
            "--out",
            "{ws}/validate",
        ),
        r"cannot hold the budget of \d+ examples.*drop --leave-one-out",
        lambda ws: _mixture(
            ws,
            "tight.json",
            _edit_json(
                lambda raw: [
                    raw.update(baselines={}),
                    *(e.update(cap=e["examples"]) for e in raw["languages"].values()),
                ]
            ),
        ),
    ),
    BadInput(
        "sweep-validate-truncated-mixture",
        "plan-sweep",
        ("validate", "{ws}/bad/truncated.json", "--out", "{ws}/validate"),
        r"is not valid JSON .*truncated.*re-run plan-allocate",
        lambda ws: _mixture(ws, "truncated.json", lambda text: text[: len(text) // 2]),
    ),
    BadInput(
        "sweep-validate-missing-mixture",
        "plan-sweep",
        ("validate", "{ws}/bad/nope.json", "--out", "{ws}/validate"),
        r"No mixture file at '.*nope.json'",
    ),
    BadInput(
        "sweep-write-data-allocation-above-its-cap",
        "plan-sweep",
        ("write-data", "{ws}/bad/above.json", "--out", "{ws}/data"),
        r"gives de \d+ examples, above its cap of \d+ .*re-run plan-allocate",
        lambda ws: _mixture(
            ws,
            "above.json",
            _edit_json(lambda raw: raw["languages"]["de"].update(examples=10**9)),
        ),
    ),
    BadInput(
        "sweep-write-data-older-mixture-without-a-seed",
        "plan-sweep",
        ("write-data", "{ws}/bad/old.json", "--out", "{ws}/data"),
        r"lacks seed .*re-run plan-allocate",
        lambda ws: _mixture(ws, "old.json", _edit_json(lambda raw: raw.pop("seed"))),
    ),
    BadInput(
        "sweep-write-data-unknown-allocator",
        "plan-sweep",
        ("write-data", "{ws}/allocate/mixture.json", "--allocator", "oracle"),
        r"has no allocator 'oracle'; it has: planner",
    ),
    BadInput(
        "sweep-write-data-general-data-of-another-schema",
        "plan-sweep",
        ("write-data", "{ws}/allocate/mixture.json", "--spec", "{ws}/bad/general.toml"),
        r"general_de.jsonl:1: expected a JSON object with 'instruction' and 'output' strings "
        r"\(found \['answer', 'prompt'\]\); convert the general data to Alpaca records",
        lambda ws: _general_spec(ws, {"de": '{"prompt": "p", "answer": "a"}'}),
    ),
    BadInput(
        "sweep-write-data-language-without-general-data",
        "plan-sweep",
        ("write-data", "{ws}/allocate/mixture.json", "--spec", "{ws}/bad/general.toml"),
        r"No general data for 'el': .*general_el.jsonl \(from data.general_data\) does not "
        r"exist; add that file .* or set data.general_ratio=0 to train without it",
        lambda ws: _general_spec(ws, {"de": '{"instruction": "i", "output": "o"}'}),
    ),
    BadInput(
        "sweep-write-data-out-holds-other-files",
        "plan-sweep",
        ("write-data", "{ws}/allocate/mixture.json", "--out", "{ws}/allocate"),
        r"--out '.*allocate' holds other files \(.*mixture.json.*\); give an empty or new "
        r"folder",
    ),
    BadInput(
        "sweep-launch-negative-workers",
        "plan-sweep",
        ("launch", "smoke", "out_dir='{ws}/sweep-w'", "--workers", "-1"),
        r"--workers=-1 is negative; give 0 to only enqueue the grid",
    ),
    BadInput(
        "sweep-launch-slurm-count-not-a-number",
        "plan-sweep",
        ("launch", "smoke", "out_dir='{ws}/sweep-w'", "--slurm", "partition=gpu,workers=eight"),
        r"--slurm workers='eight' must be positive whole numbers",
    ),
    BadInput(
        "sweep-spec-every-ledger-problem-at-once",
        "plan-sweep",
        (
            "launch",
            "smoke",
            "out_dir='{ws}/sweep-w'",
            "ledger.heartbeat_s=0",
            "ledger.max_retries=-1",
        ),
        r"2 problem\(s\) .*ledger\.heartbeat_s=0 must be positive; "
        r"ledger\.max_retries=-1 must be 0",
    ),
    BadInput(
        "sweep-status-never-launched-spec",
        "plan-sweep",
        ("status", "smoke", "out_dir='{ws}/sweep-new'"),
        r"No study 'smoke-[0-9a-f]{8}': the ledger journal://.*sweep-new/ledger.journal does not "
        r"exist; launch the sweep first",
    ),
    BadInput(
        "sweep-worker-unknown-study-leaves-no-journal",
        "plan-sweep",
        ("worker", "--storage", "journal://{ws}/sweep-none/ledger.journal", "--study", "nope"),
        r"No study 'nope': the ledger journal://.*sweep-none/ledger.journal does not exist",
    ),
    BadInput(
        "sweep-status-unknown-study",
        "plan-sweep",
        ("status", "--storage", "journal://{ws}/bad/sweep/ledger.journal", "--study", "nope"),
        r"No study 'nope' in the ledger journal://.*\(it holds smoke-[0-9a-f]{8} \(objective "
        r"sft\)\); launch it first .* or name one of those with --study",
        # `_launched`, bound here for the rows below: `plan-sweep launch smoke --workers 0`
        # into {ws}/bad/sweep (a ledger holding the SFT study, nothing run).
        prepare=(
            _launched := lambda ws: plan_sweep(
                ["launch", "smoke", f"out_dir={str(ws / 'bad' / 'sweep')!r}", "--workers", "0"]
            )
        ),
    ),
    BadInput(
        "sweep-export-a-study-the-ledger-does-not-hold",
        "plan-sweep",
        (
            "export",
            "smoke",
            "objective='dft'",
            "data.direction='x-en'",
            "out_dir='{ws}/bad/sweep'",
            "--out",
            "{ws}/results.csv",
        ),
        r"No study 'smoke-[0-9a-f]{8}' in the ledger .*it holds smoke-[0-9a-f]{8} \(objective sft",
        prepare=_launched,
    ),
    BadInput(
        "sweep-export-nothing-finished",
        "plan-sweep",
        ("export", "smoke", "out_dir='{ws}/bad/sweep'", "--out", "{ws}/results.csv"),
        r"has no finished runs yet \(8 waiting\), so there is nothing to export and "
        r"'.*results.csv' is left as it is",
        prepare=_launched,
    ),
    BadInput(
        "sweep-export-out-is-a-folder",
        "plan-sweep",
        ("export", "smoke", "out_dir='{ws}/bad/sweep'", "--out", "{ws}/fits"),
        r"--out '.*fits' is a folder; give the CSV file to write",
    ),
    BadInput(
        "sweep-export-out-below-a-file",
        "plan-sweep",
        ("export", "smoke", "out_dir='{ws}/bad/sweep'", "--out", "{ws}/results.csv/r.csv"),
        r"Cannot write --out '.*results.csv/r.csv': '.*results.csv' is not a folder you can write",
    ),
    # --- plan-fit transfer, plan-allocate --transfer ----------------------------------------
    BadInput(
        "transfer-language-the-laws-lack",
        "plan-fit transfer",
        ("{ws}/bad/v-xx.csv", "--laws", LAWS, "--out", "{ws}/fits"),
        r"The mixture runs train xx, which the laws file \(languages .*\) lacks; fit laws",
        prepare=lambda ws: _validation(ws, "v-xx.csv", language="xx"),
    ),
    BadInput(
        "transfer-no-runs-of-the-laws-metric",
        "plan-fit transfer",
        ("{ws}/bad/v-bleu.csv", "--laws", LAWS, "--out", "{ws}/fits"),
        r"has no 'heldout_ce' rows \(it has: bleu\); fit the laws on a metric",
        prepare=lambda ws: _validation(ws, "v-bleu.csv", metric="bleu"),
    ),
    BadInput(
        "transfer-runs-of-another-model",
        "plan-fit transfer",
        ("{ws}/bad/v-model.csv", "--laws", LAWS, "--out", "{ws}/fits"),
        r"have model 'other-model' but the laws were fitted on model .*; fit laws on the same",
        prepare=lambda ws: _validation(ws, "v-model.csv", model="other-model"),
    ),
    BadInput(
        "allocate-transfer-without-a-planned-language",
        "plan-allocate",
        (
            "{ws}/bad/laws-transfer.json",
            "--budget",
            "20k",
            "--out",
            "{ws}/allocate",
        ),
        r"mixture runs did not train el, hi; plan only de with --languages.*--transfer off",
        prepare=lambda ws: _transfer(ws, ("de",)),
    ),
    BadInput(
        "allocate-transfer-on-without-a-transfer-law",
        "plan-allocate",
        (LAWS, "--budget", "20k", "--transfer", "on", "--out", "{ws}/allocate"),
        r"--transfer on, but the laws file .* has no transfer law; fit one with plan-fit transfer",
    ),
    BadInput(
        "transfer-form-with-more-parameters-than-runs",
        "plan-fit transfer",
        ("{ws}/bad/v-two.csv", "--laws", LAWS, "--out", "{ws}/fits", "--form", "receiver"),
        r"the receiver form has 3 parameter\(s\) but there are 2 mixture run\(s\); train more",
        prepare=lambda ws: _validation(ws, "v-two.csv"),
    ),
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A good results table, its laws and a plan: the outputs every case must leave as they are."""
    ws = tmp_path_factory.mktemp("bad-input")
    synthetic_results(languages=("de", "el", "hi")).to_csv(ws / "results.csv", index=False)
    assert plan_fit([str(ws / "results.csv"), "--bootstrap", "40", "--out", str(ws / "fits")]) == 0
    assert (
        plan_allocate(
            [str(ws / "fits" / "laws.json"), "--budget", "20k", "--out", str(ws / "allocate")]
        )
        == 0
    )
    return ws


def _snapshot(ws: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(ws)): p.read_bytes()
        for p in sorted(ws.rglob("*"))
        if p.is_file() and p.parts[len(ws.parts)] != "bad"
    }


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_refused_with_one_sentence_and_nothing_overwritten(
    case: BadInput, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if case.prepare is not None:
        case.prepare(workspace)
    before = _snapshot(workspace)
    capsys.readouterr()
    argv = [arg.replace("{ws}", str(workspace)) for arg in case.argv]
    code = COMMANDS[case.command](argv)
    err = capsys.readouterr().err
    assert code == 1, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith(f"{case.command}: error: ")]
    assert len(errors) == 1, err
    assert re.search(case.sentence, errors[0]), errors[0]
    assert _snapshot(workspace) == before
