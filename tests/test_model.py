"""Base model resolution, the tiny random model, and the real default model offline."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
import torch

from muit_core import ModelError
from sweeps.model import (
    DEFAULT_MODEL,
    TINY_MODEL,
    converted_default_dir,
    load_model,
    resolve_model,
)


def test_resolve_kinds(tmp_path: Path) -> None:
    assert resolve_model(DEFAULT_MODEL).kind == "default"
    assert resolve_model(TINY_MODEL).kind == "tiny"
    assert resolve_model("HuggingFaceTB/SmolLM2-360M-Instruct").kind == "hub"
    (tmp_path / "config.json").write_text("{}")
    assert resolve_model(str(tmp_path)).kind == "local"


def test_folder_without_config_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="is not a model folder"):
        resolve_model(str(tmp_path))


def test_name_that_is_nothing() -> None:
    with pytest.raises(ModelError, match="neither an existing folder nor a hub id"):
        resolve_model("no-such-model")


def test_hub_id_offline_is_one_clear_error() -> None:
    with pytest.raises(ModelError, match="Could not load model 'nobody-here/no-such-model'"):
        load_model("nobody-here/no-such-model")


def test_tiny_model_is_deterministic_and_small() -> None:
    first, tokenizer = load_model(TINY_MODEL)
    second, _ = load_model(TINY_MODEL)
    assert first.config.num_hidden_layers == 4
    assert sum(p.numel() for p in first.parameters()) < 5_000_000
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)
    batch = tokenizer(["Hello world"], return_tensors="pt")
    with torch.no_grad():
        loss = float(first(**batch, labels=batch["input_ids"]).loss)
    # A random model's loss sits near log(vocabulary size).
    assert abs(loss - math.log(len(tokenizer))) < 1.0


def test_default_model_loads_offline_and_scores_a_batch() -> None:
    load_model(DEFAULT_MODEL)  # converts once if the cache is empty
    assert (converted_default_dir() / "config.json").is_file()
    started = time.perf_counter()
    model, tokenizer = load_model(DEFAULT_MODEL)
    cached_load_s = time.perf_counter() - started
    assert model.config.num_hidden_layers == 30
    texts = ["The document is saved in the folder.", "Click the icon on the toolbar."]
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    with torch.no_grad():
        loss = float(model(**batch, labels=labels).loss)
    # A trained 135M model reads plain English well: finite and far below log(49152) ~ 10.8.
    assert math.isfinite(loss) and loss < 6.0
    print(f"cached load {cached_load_s:.2f} s, loss {loss:.3f}")
