"""Sweep specs: TOML files loaded into nested frozen dataclasses, with `key=value` overrides.

Every field has a default, documented at its definition. Unknown keys and wrong types are
errors, and every problem of a spec is reported at once in one `ConfigError`. Built-in specs
(`sweeps/specs/*.toml`) are found by name (`demo`, `smoke`) as well as by path.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import tomllib
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from muit_core import ConfigError
from sweeps.pairs import PairFilter

SPECS_DIR = Path(__file__).parent / "specs"


@dataclass(frozen=True)
class DataSpec:
    """Where the pairs come from and how instructions are made of them."""

    source: str = "libreoffice"  # 'libreoffice', 'libreoffice:HELP_DIR', or a path ({lang})
    languages: tuple[str, ...] = ("el", "hi")  # language codes, the same keys everywhere
    direction: str = "en-x"  # 'en-x' (English -> X), 'x-en', or 'both'
    min_words: int = 4  # fewest English words in a pair
    max_words: int = 80  # most English words in a pair
    heldout_fraction: float = 0.1  # share of distinct English sentences held out
    general_data: str = ""  # general instructions in each language X: Alpaca JSONL or saved
    #   Hugging Face dataset folder, '{lang}' for one per language; '' = none
    general_ratio: float = 0.0  # X general examples mixed in per X translation example
    general_data_en: str = ""  # English general instructions (same schema); '' = none
    general_ratio_en: float = 0.0  # English general examples mixed in per translation example
    system_prompt: str | None = None  # None = the chat template's default system prompt

    def pair_filter(self) -> PairFilter:
        """The corpus filter these settings ask for (length limits, held-out share)."""
        return PairFilter(self.min_words, self.max_words, self.heldout_fraction)


@dataclass(frozen=True)
class CellSpec:
    """One explicit cell (`[[grid.cells]]`), run besides the product grid; `plan-suggest`
    writes them."""

    language: str = ""  # a code of data.languages
    size: int = 0  # translation examples of the run (positive)
    seed: int = 0  # data order, subset and initialisation
    model: str = ""  # one of grid.models; '' = every model of grid.models


@dataclass(frozen=True)
class GridSpec:
    """The sweep's cells: languages x sizes x seeds x models, plus explicit `cells`.

    Like the rest of the grid, `cells` never enters the study name: cells added later (an
    adaptive design's rounds) extend the same study.
    """

    sizes: tuple[int, ...] = (64, 128, 256)  # translation examples per run; [] = cells only
    seeds: tuple[int, ...] = (0,)  # data order, subset and initialisation
    models: tuple[str, ...] = ("smollm2-135m-instruct",)  # names, folders or hub ids
    include_base: bool = True  # score each untuned model once per language (n_examples = 0)
    cells: tuple[CellSpec, ...] = ()  # explicit cells ([[grid.cells]]), run besides the product


@dataclass(frozen=True)
class TrainSpec:
    """How each run fine-tunes."""

    method: str = "lora"  # 'lora' (peft) or 'full'
    epochs: float = 1.0  # passes over the run's examples
    learning_rate: float = 2e-4  # peak, after warmup
    schedule: str = "cosine"  # 'cosine', 'linear' or 'constant' (after warmup)
    warmup_ratio: float = 0.03  # share of optimiser steps spent warming up
    batch_size: int = 8  # examples per forward pass
    grad_accum: int = 1  # forward passes per optimiser step
    max_length: int = 128  # tokens per example; longer ones are truncated
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    max_grad_norm: float = 1.0  # gradient clipping; 0 turns it off
    lora_r: int = 16  # LoRA rank
    lora_alpha: int = 32  # LoRA scale numerator (scale = alpha / r)
    lora_dropout: float = 0.0  # LoRA dropout
    lora_targets: tuple[str, ...] = (  # modules that get adapters (all linear projections)
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    )
    dtype: str = "auto"  # 'auto' (bf16 on GPU, fp32 on CPU), 'float32' or 'bfloat16'
    threads: int = 0  # torch CPU threads per worker; 0 = torch's default


@dataclass(frozen=True)
class EvalSpec:
    """How each run is scored on the language's held-out pool (the same pairs for every run)."""

    heldout_size: int = 64  # held-out pairs scored by cross-entropy
    generate_size: int = 16  # of those, pairs translated greedily for chrF and BLEU; 0 = none
    max_new_tokens: int = 96  # generation limit per pair
    batch_size: int = 16  # pairs per forward pass


@dataclass(frozen=True)
class DftSpec:
    """Deep supervision fine-tuning (objective 'dft'); ignored for 'sft'."""

    variant: str = "logits"  # 'logits' (frozen LM head on layer states) or 'feature' (cosine)
    conversion_layer: int = -1  # layer i; -1 = about 1/16 of the depth (2 of 32)
    thinking_layer: int = -1  # layer j; -1 = about 15/32 of the depth
    conversion_weight: float = 1.0  # weight of the language-conversion loss
    thinking_weight: float = 1.0  # weight of the thinking-in-English loss
    pooling: str = "mean"  # feature variant: 'mean' over query tokens, or 'last'


@dataclass(frozen=True)
class LedgerSpec:
    """Where runs are recorded and who runs them."""

    storage: str = ""  # '' = a journal file in the sweep folder; or sqlite:/postgresql:// URL
    workers: int = 1  # local worker processes for `launch` (one per GPU where there are GPUs)
    heartbeat_s: int = 30  # seconds between heartbeats; a run is stale after 3 missed beats
    max_retries: int = 2  # reruns of a failed cell (exception, NaN, dead worker, interrupt)


@dataclass(frozen=True)
class SweepSpec:
    """A whole sweep; see the field classes for every default."""

    name: str = "sweep"  # names the output folder and, with a config hash, the study
    objective: str = "sft"  # 'sft' (cross-lingual instruction tuning) or 'dft'
    out_dir: str = "runs/{name}"  # the sweep folder; relative to the current folder
    data: DataSpec = field(default_factory=DataSpec)
    grid: GridSpec = field(default_factory=GridSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    eval: EvalSpec = field(default_factory=EvalSpec)
    dft: DftSpec = field(default_factory=DftSpec)
    ledger: LedgerSpec = field(default_factory=LedgerSpec)

    @property
    def sweep_dir(self) -> Path:
        """The folder holding the ledger, results and plots of this sweep."""
        return Path(self.out_dir.format(name=self.name))

    def study_name(self) -> str:
        """`name-<hash>`: the hash covers what changes a run's result, not the grid or ledger,
        so adding sizes or seeds extends the same study and relaunching is idempotent."""
        digest = hashlib.sha1(json.dumps(result_payload(self), sort_keys=True).encode())
        return f"{self.name}-{digest.hexdigest()[:8]}"


# Fields added after studies were named: left out of the hash while at their default, so a
# spec that does not use them keeps its study (and its ledger) under the name it had.
_HASHED_WHEN_SET = {"general_data_en": "", "general_ratio_en": 0.0}


def result_payload(spec: SweepSpec) -> dict[str, Any]:
    """The part of a spec that changes a run's result (not the grid, ledger or out_dir), as a
    plain dict: what study names hash."""
    payload = spec_to_dict(spec)
    for key in ("grid", "ledger", "out_dir"):
        payload.pop(key)
    for key, default in _HASHED_WHEN_SET.items():
        if payload["data"][key] == default:
            payload["data"].pop(key)
    return payload


_CHOICES: dict[str, tuple[str, ...]] = {
    "objective": ("sft", "dft"),
    "data.direction": ("en-x", "x-en", "both"),
    "train.method": ("lora", "full"),
    "train.schedule": ("cosine", "linear", "constant"),
    "train.dtype": ("auto", "float32", "bfloat16"),
    "dft.variant": ("logits", "feature"),
    "dft.pooling": ("mean", "last"),
}
_POSITIVE = (
    "train.epochs", "train.learning_rate", "train.batch_size", "train.grad_accum",
    "train.max_length", "train.lora_r", "eval.heldout_size", "eval.batch_size",
    "eval.max_new_tokens", "ledger.workers", "ledger.heartbeat_s",
)  # fmt: skip


def spec_to_dict(spec: Any) -> dict[str, Any]:
    """A JSON-able dict of a spec (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(spec)))


def _type_ok(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is tuple:
        (item,) = typing.get_args(hint)[:1]
        return isinstance(value, list | tuple) and all(_type_ok(v, item) for v in value)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _coerce(value: Any, hint: Any) -> Any:
    if typing.get_origin(hint) is tuple:
        return tuple(value)
    if hint is float:
        return float(value)
    return value


def _build(cls: type, raw: dict[str, Any], prefix: str, problems: list[str]) -> Any:
    """Build dataclass `cls` from `raw`, appending every problem to `problems`."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if key not in hints:
            known = ", ".join(sorted(hints))
            problems.append(f"unknown key {dotted!r} (known here: {known})")
            continue
        hint = hints[key]
        item = _dataclass_item(hint)
        if item is not None:
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                problems.append(f"{dotted!r} must be a list of tables, got {value!r}")
                continue
            kwargs[key] = tuple(
                _build(item, v, f"{dotted}[{j}].", problems) for j, v in enumerate(value)
            )
        elif dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                problems.append(f"{dotted!r} must be a table, got {value!r}")
                continue
            kwargs[key] = _build(hint, value, f"{dotted}.", problems)  # type: ignore[arg-type]
        elif _type_ok(value, hint):
            kwargs[key] = _coerce(value, hint)
        else:
            problems.append(f"{dotted}={value!r} should be of type {_hint_name(hint)}")
    return cls(**kwargs)


def _dataclass_item(hint: Any) -> type | None:
    """The item class of a `tuple[SomeDataclass, ...]` hint (a list of tables), else None."""
    if typing.get_origin(hint) is not tuple:
        return None
    item = typing.get_args(hint)[0]
    return item if isinstance(item, type) and dataclasses.is_dataclass(item) else None


def _hint_name(hint: Any) -> str:
    return str(hint).replace("typing.", "") if typing.get_origin(hint) else hint.__name__


def _check_values(spec: SweepSpec, problems: list[str]) -> None:
    flat = _flatten(spec_to_dict(spec))
    for key, choices in _CHOICES.items():
        if flat[key] not in choices:
            problems.append(f"{key}={flat[key]!r} must be one of {', '.join(choices)}")
    for key in _POSITIVE:
        if not flat[key] > 0:
            problems.append(f"{key}={flat[key]!r} must be positive")
    if not spec.data.languages:
        problems.append("data.languages is empty; list at least one code, e.g. ['el']")
    if (not spec.grid.sizes and not spec.grid.cells) or any(s <= 0 for s in spec.grid.sizes):
        problems.append(f"grid.sizes={list(spec.grid.sizes)} must be positive whole numbers")
    _check_cells(spec, problems)
    if not spec.grid.seeds or not spec.grid.models:
        problems.append("grid.seeds and grid.models must each list at least one value")
    if any(seed < 0 for seed in spec.grid.seeds):
        problems.append(f"grid.seeds={list(spec.grid.seeds)} must be non-negative whole numbers")
    if spec.ledger.max_retries < 0:
        problems.append(
            f"ledger.max_retries={spec.ledger.max_retries!r} must be 0 (no retries) or more"
        )
    if spec.objective == "dft" and spec.data.direction == "en-x" and not spec.data.general_data:
        problems.append(
            "objective='dft' needs X -> English examples (a query in X with its English "
            "parallel), but data.direction='en-x'; set data.direction to 'x-en' or 'both'"
        )
    _check_general(spec.data, problems)
    if spec.eval.generate_size > spec.eval.heldout_size:
        problems.append(
            f"eval.generate_size={spec.eval.generate_size} exceeds eval.heldout_size="
            f"{spec.eval.heldout_size}; generations are drawn from the scored pairs"
        )


def _check_cells(spec: SweepSpec, problems: list[str]) -> None:
    """Each explicit cell names a sweep language, a positive size, a seed and a grid model."""
    for j, cell in enumerate(spec.grid.cells):
        where = f"grid.cells[{j}]"
        if cell.language not in spec.data.languages:
            known = ", ".join(spec.data.languages)
            problems.append(
                f"{where}.language={cell.language!r} is not in data.languages ({known})"
            )
        if cell.size <= 0:
            problems.append(f"{where}.size={cell.size!r} must be a positive whole number")
        if cell.seed < 0:
            problems.append(f"{where}.seed={cell.seed!r} must be 0 or more")
        if cell.model and cell.model not in spec.grid.models:
            models = ", ".join(spec.grid.models)
            problems.append(
                f"{where}.model={cell.model!r} is not in grid.models ({models}); give one of "
                "them or '' for all"
            )


def _check_general(data: DataSpec, problems: list[str]) -> None:
    for path_key, ratio_key in (
        ("general_data", "general_ratio"),
        ("general_data_en", "general_ratio_en"),
    ):
        path, ratio = getattr(data, path_key), getattr(data, ratio_key)
        if ratio < 0:
            problems.append(f"data.{ratio_key}={ratio!r} must be 0 (no general data) or more")
        elif ratio > 0 and not path:
            problems.append(
                f"data.{ratio_key}={ratio!r} asks for general data but data.{path_key} is ''; "
                f"name the file or set data.{ratio_key}=0"
            )
    if data.general_data and "{lang}" not in data.general_data and len(data.languages) > 1:
        problems.append(
            f"data.general_data={data.general_data!r} has no {{lang}}, so every language would "
            "get the same general data; put {lang} in the path for one file per language "
            "(English general data goes in data.general_data_en)"
        )


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def parse_override(text: str) -> tuple[list[str], Any]:
    """`train.learning_rate=1e-4` -> (['train', 'learning_rate'], 1e-4).

    The value is read with `ast.literal_eval`; a bare word that is not a literal stays a
    string (`data.source=corpora/{lang}.jsonl`).
    """
    key, sep, value_text = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"Override {text!r} is not key=value; write e.g. train.epochs=2.")
    try:
        value = ast.literal_eval(value_text.strip())
    except (ValueError, SyntaxError):
        value = value_text.strip()
    return key.strip().split("."), value


def resolve_spec_path(name_or_path: str) -> Path:
    """A built-in spec by name (`demo`), or a TOML path; raise listing the built-in ones."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    builtin = SPECS_DIR / f"{name_or_path}.toml"
    if builtin.is_file():
        return builtin
    names = ", ".join(sorted(p.stem for p in SPECS_DIR.glob("*.toml")))
    raise ConfigError(
        f"Spec {name_or_path!r} is neither a file nor a built-in spec; built-in: {names}."
    )


def load_spec(
    name_or_path: str,
    overrides: list[str] | None = None,
    cell_files: Sequence[str | Path] = (),
) -> SweepSpec:
    """Load a spec file (or built-in name), apply `key=value` overrides, add the explicit cells
    of `cell_files` (`read_cell_fragment`) to `grid.cells`, and validate it.

    Raises:
        ConfigError: listing every problem found (unknown keys, wrong types, bad values).
    """
    path = resolve_spec_path(name_or_path)
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"Spec {path} is not valid TOML ({err}); fix the line named.") from None
    raw = apply_overrides(raw, overrides or [])
    extra = [cell for file in cell_files for cell in read_cell_fragment(file)]
    if extra:
        grid = raw.setdefault("grid", {})
        if not isinstance(grid, dict):
            raise ConfigError(f"Spec {path}: 'grid' must be a table to take --cells.")
        grid["cells"] = [*grid.get("cells", []), *extra]
    return spec_from_dict(raw, where=str(path))


def read_cell_fragment(path: str | Path) -> list[dict[str, Any]]:
    """The `[[grid.cells]]` tables of a spec fragment (what `plan-suggest` writes), unchecked
    (the spec they join checks them).

    Raises:
        ConfigError: the file is missing, not TOML, or holds anything but `[[grid.cells]]`.
    """
    file = Path(path)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(
            f"Cannot read the cells file {str(file)!r} ({err.strerror}); give the cells.toml "
            "plan-suggest wrote."
        ) from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(
            f"The cells file {str(file)!r} is not valid TOML ({err}); fix the line named."
        ) from None
    grid = raw.get("grid", {})
    cells = grid.get("cells", []) if isinstance(grid, dict) else None
    if set(raw) - {"grid"} or not isinstance(grid, dict) or set(grid) - {"cells"}:
        raise ConfigError(
            f"The cells file {str(file)!r} holds more than [[grid.cells]] tables; put other "
            "settings in the spec itself."
        )
    if not isinstance(cells, list):
        raise ConfigError(f"The cells file {str(file)!r}: grid.cells must be [[grid.cells]].")
    return list(cells)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of a spec's plain dict with `key=value` overrides applied (not yet validated).

    Raises:
        ConfigError: an override is malformed or names a value as if it were a table.
    """
    out: dict[str, Any] = json.loads(json.dumps(raw))
    for text in overrides:
        keys, value = parse_override(text)
        node = out
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"Override {text!r}: {key!r} is a value, not a table.")
            node = child
        node[keys[-1]] = value
    return out


def spec_from_dict(raw: dict[str, Any], where: str = "spec") -> SweepSpec:
    """Build and validate a spec from a plain dict (as read from TOML)."""
    problems: list[str] = []
    spec = _build(SweepSpec, raw, "", problems)
    # Fields with a wrong type were left at their (valid) defaults, so values can be checked
    # too, and every problem is reported at once.
    _check_values(spec, problems)
    if problems:
        listing = "; ".join(problems)
        raise ConfigError(f"{len(problems)} problem(s) in {where}: {listing}.")
    assert isinstance(spec, SweepSpec)
    return spec
