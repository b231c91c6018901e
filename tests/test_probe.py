"""The logit-lens probe on the tiny random model, and `plan-sweep probe`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from sweeps import cli as sweep_cli
from sweeps.evaluate import heldout_cross_entropy
from sweeps.instructions import translation_examples
from sweeps.model import TINY_MODEL, load_model
from sweeps.pairs import Pair
from sweeps.probe import (
    LensRow,
    ProbeTable,
    format_probe_table,
    layer_states,
    logit_lens,
)
from sweeps.templates import Direction
from sweeps.train import IGNORE_INDEX, collate, encode_example

PAIRS = [
    Pair("Click the button to open the dialog.", "Κάντε κλικ στο κουμπί.", "k0"),
    Pair("The table is sorted by the first column.", "Ο πίνακας ταξινομείται.", "k1"),
    Pair("Enter the name of the new style here.", "Εισάγετε το όνομα του νέου ύφους.", "k2"),
]
EXAMPLES = translation_examples(PAIRS, "el", Direction.X_TO_EN)


@pytest.fixture(scope="module")
def tiny() -> tuple[Any, Any]:
    return load_model(TINY_MODEL)


def test_lens_matches_a_hand_computation_and_the_model_at_the_top(tiny: tuple[Any, Any]) -> None:
    model, tokenizer = tiny
    table = logit_lens(model, tokenizer, EXAMPLES, model_name="tiny", batch_size=2)
    assert [row.layer for row in table.rows] == [1, 2, 3, 4]
    encoded = [encode_example(tokenizer, e, 128) for e in EXAMPLES]
    assert table.n_tokens == sum(e.n_response_tokens for e in encoded)
    ce = heldout_cross_entropy(model, encoded, tokenizer.pad_token_id, batch_size=3)
    assert table.rows[-1].ce_nats == pytest.approx(ce, abs=1e-4)  # the last layer is the model
    probs = []
    with torch.no_grad():
        for e in encoded:
            hidden = model(input_ids=torch.tensor([e.input_ids]), output_hidden_states=True)
            logits = model.lm_head(model.model.norm(hidden.hidden_states[2]))[0]
            probs += [
                torch.softmax(logits[t], -1)[e.labels[t + 1]]
                for t in range(len(e.labels) - 1)
                if e.labels[t + 1] != IGNORE_INDEX
            ]
    assert table.rows[1].p_ref == pytest.approx(float(torch.stack(probs).mean()), rel=1e-4)
    assert all(0 <= row.p_ref <= 1 and 0 <= row.top1 <= 1 for row in table.rows)


def test_layer_states_stop_at_the_deepest_wanted_layer(tiny: tuple[Any, Any]) -> None:
    model, tokenizer = tiny
    batch = collate([encode_example(tokenizer, EXAMPLES[0], 64)], 0, torch.device("cpu"))
    ran: list[int] = []
    hooks = [
        layer.register_forward_hook(lambda m, a, o, k=k: ran.append(k))
        for k, layer in enumerate(model.model.layers, 1)
    ]
    try:
        with torch.no_grad():
            states = layer_states(model.model, batch["input_ids"], batch["attention_mask"], {2})
    finally:
        for hook in hooks:
            hook.remove()
    assert ran == [1, 2] and list(states) == [2]


def test_pivot_layer_and_formats() -> None:
    rows = tuple(LensRow(k, p, p, 1.0) for k, p in enumerate([0.01, 0.1, 0.3, 0.5], 1))
    table = ProbeTable("m", "el", 2, 10, rows)
    assert table.pivot_layer == 3
    assert json.loads(json.dumps(table.to_dict()))["pivot_layer"] == 3
    text = format_probe_table(table)
    assert len(text.splitlines()) == 2 + 4 + 1 and "English pivot" in text


def test_cli_probe_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "el.tsv"
    corpus.write_text("".join(f"{p.en}\t{p.text}\n" for p in PAIRS), encoding="utf-8")
    code = sweep_cli.main(
        [
            "probe",
            TINY_MODEL,
            "--language",
            "el",
            "--source",
            str(corpus),
            "--heldout-fraction",
            "0.99",
            "--n",
            "2",
            "--format",
            "json",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["language"] == "el" and 1 <= result["n_examples"] <= 2
    assert [row["layer"] for row in result["layers"]] == [1, 2, 3, 4]
