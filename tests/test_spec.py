"""Sweep specs: defaults, overrides, every problem at once, and every shipped spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from muit_core import ConfigError
from sweeps.spec import SPECS_DIR, SweepSpec, load_spec, parse_override, spec_from_dict

SHIPPED = sorted(p.stem for p in SPECS_DIR.glob("*.toml"))


def test_shipped_specs_are_found() -> None:
    assert {"demo", "smoke", "gpu_1b"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_spec_loads_and_names_its_command(name: str) -> None:
    spec = load_spec(name)
    assert spec.name == name
    first_line = (SPECS_DIR / f"{name}.toml").read_text().splitlines()[0]
    assert first_line.startswith("# Run: plan-sweep launch ")


def test_defaults_are_complete() -> None:
    spec = spec_from_dict({})
    assert spec == SweepSpec()
    assert spec.train.method == "lora" and spec.objective == "sft"


def test_overrides_are_typed_and_applied() -> None:
    spec = load_spec("smoke", ["train.epochs=2", "grid.sizes=[8, 16]", "data.source=x/{lang}.tsv"])
    assert spec.train.epochs == 2.0 and isinstance(spec.train.epochs, float)
    assert spec.grid.sizes == (8, 16)
    assert spec.data.source == "x/{lang}.tsv"


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load_spec(
            "smoke",
            ["train.lr=1", "train.epochs='x'", "grid.sizes=[0]", "objective='ppo'"],
        )
    message = str(caught.value)
    assert message.startswith("4 problem(s)")
    for fragment in (
        "unknown key 'train.lr'",
        "train.epochs='x'",
        "objective='ppo'",
        "grid.sizes",
    ):
        assert fragment in message


def test_bad_override_syntax_and_unknown_spec(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not key=value"):
        parse_override("train.epochs")
    with pytest.raises(ConfigError, match=r"built-in: .*demo.*smoke"):
        load_spec("no-such-spec")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_spec(str(bad))


def test_study_name_ignores_grid_and_ledger_but_not_training() -> None:
    base = load_spec("smoke")
    assert load_spec("smoke", ["grid.sizes=[8]", "ledger.workers=3"]).study_name() == (
        base.study_name()
    )
    assert load_spec("smoke", ["train.learning_rate=0.1"]).study_name() != base.study_name()


def test_dft_with_english_queries_only_is_rejected_at_load() -> None:
    with pytest.raises(ConfigError, match=r"set data\.direction to 'x-en' or 'both'"):
        load_spec("smoke", ["objective='dft'"])
    assert load_spec("smoke", ["objective='dft'", "data.direction='x-en'"]).objective == "dft"


def test_every_ledger_problem_is_reported_at_once() -> None:
    """`ledger.heartbeat_s=0 ledger.max_retries=-1` once reported only the first (the retries
    were checked later, by the ledger); a negative seed failed later still, at the grid."""
    with pytest.raises(ConfigError) as caught:
        load_spec("smoke", ["ledger.heartbeat_s=0", "ledger.max_retries=-1", "grid.seeds=[-1]"])
    message = str(caught.value)
    assert message.startswith("3 problem(s)")
    for fragment in ("ledger.heartbeat_s=0", "ledger.max_retries=-1", "grid.seeds=[-1]"):
        assert fragment in message
    assert load_spec("smoke", ["ledger.max_retries=0"]).ledger.max_retries == 0
