"""DFT on the tiny random model: each term against a hand computation, SFT equivalence at
zero weights, where gradients go, and the errors for bad layers and data without English."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from muit_core import ConfigError
from sweeps.dft import DftLoss, default_layers, dft_terms, make_dft_loss, pool, resolve_layers
from sweeps.dft_data import (
    DftEncoded,
    collate_dft,
    encode_dft_examples,
    english_parallel,
    read_english_parallels,
)
from sweeps.instructions import Example, read_general_examples, translation_examples
from sweeps.model import TINY_MODEL, load_model
from sweeps.pairs import Pair
from sweeps.spec import DftSpec, TrainSpec
from sweeps.templates import Direction
from sweeps.train import IGNORE_INDEX, collate, encode_example, sft_loss, train, wrap_lora

SYSTEM = "You are a helpful translator."
PAIRS = [
    Pair("Click the button to open the dialog.", "Κάντε κλικ στο κουμπί.", "k0"),
    Pair("Choose Format - Cells and open the Numbers tab page.", "Επιλέξτε Μορφή - Κελιά.", "k1"),
    Pair("The table is sorted by the first column.", "Ο πίνακας ταξινομείται.", "k2"),
    Pair("Enter the name of the new style here.", "Εισάγετε το όνομα του νέου ύφους εδώ.", "k3"),
]
EXAMPLES = [
    *translation_examples(PAIRS[:3], "el", Direction.X_TO_EN),
    *translation_examples(PAIRS[3:], "el", Direction.EN_TO_X),  # English query: SFT only
]
LAYER_I, LAYER_J = 1, 2  # the tiny model's default layers (4 layers)
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny() -> tuple[Any, Any]:
    return load_model(TINY_MODEL)


@pytest.fixture(scope="module")
def encoded(tiny: tuple[Any, Any]) -> list[DftEncoded]:
    return encode_dft_examples(tiny[1], EXAMPLES, 128, SYSTEM)


def _batch(encoded: list[DftEncoded], tokenizer: Any) -> dict[str, torch.Tensor]:
    return collate_dft(encoded, tokenizer.pad_token_id, CPU)


def _states(model: Any, ids: tuple[int, ...]) -> list[torch.Tensor]:
    """h_0..h_L of one unpadded sequence by a plain forward; h_L before the final norm."""
    last: dict[str, torch.Tensor] = {}
    hook = model.model.layers[-1].register_forward_hook(lambda m, a, out: last.update(h=out))
    try:
        out = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
    finally:
        hook.remove()
    return [*out.hidden_states[:-1], last["h"]]


def _token_nats(model: Any, hidden: torch.Tensor, ids: tuple[int, ...], labels: tuple[int, ...]):  # type: ignore[no-untyped-def]
    logits = model.lm_head(model.model.norm(hidden))[0]
    return [
        -torch.log_softmax(logits[t], -1)[labels[t + 1]]
        for t in range(len(ids) - 1)
        if labels[t + 1] != IGNORE_INDEX
    ]


def test_default_layers_follow_the_depth() -> None:
    assert default_layers(32) == (2, 15)
    assert default_layers(30) == (2, 14)
    assert default_layers(4) == (1, 2)
    assert resolve_layers(DftSpec(conversion_layer=3, thinking_layer=20), 30) == (3, 20)


@pytest.mark.parametrize(("i", "j"), [(0, 2), (2, 2), (3, 1), (1, 4), (-1, 9)])
def test_bad_layers_name_the_depth(i: int, j: int) -> None:
    with pytest.raises(ConfigError, match=r"depth of 4 layers.*<= 3"):
        resolve_layers(DftSpec(conversion_layer=i, thinking_layer=j), 4)


def test_make_dft_loss_checks_layers_against_the_model(tiny: tuple[Any, Any]) -> None:
    loss = make_dft_loss(DftSpec(), tiny[0])
    assert (loss.conversion_layer, loss.thinking_layer) == (LAYER_I, LAYER_J)
    with pytest.raises(ConfigError, match="depth of 4 layers"):
        make_dft_loss(DftSpec(thinking_layer=15), tiny[0])
    with pytest.raises(ConfigError, match="weights must be finite"):
        make_dft_loss(DftSpec(conversion_weight=-1.0), tiny[0])


def test_data_without_parallel_english_is_rejected(tiny: tuple[Any, Any]) -> None:
    only_en_x = translation_examples(PAIRS, "el", Direction.EN_TO_X)
    with pytest.raises(ConfigError, match=r"\(directions: en-x\).*direction='x-en' or 'both'"):
        encode_dft_examples(tiny[1], only_en_x, 128, SYSTEM)


def test_english_parallel_swaps_only_the_text() -> None:
    x_en = english_parallel(EXAMPLES[0])
    assert x_en is not None
    assert x_en.query == EXAMPLES[0].prompt.replace(PAIRS[0].text, PAIRS[0].en)
    assert x_en.answer == PAIRS[0].en == EXAMPLES[0].response
    assert english_parallel(EXAMPLES[3]) is None  # English -> X: the query is English
    assert english_parallel(Example("Hi", "Γεια", "el", "general")) is None


def test_encoding_keeps_the_sft_sequence(tiny: tuple[Any, Any], encoded: list[DftEncoded]) -> None:
    tokenizer = tiny[1]
    for example, record in zip(EXAMPLES, encoded, strict=True):
        sft = encode_example(tokenizer, example, 128, SYSTEM)
        assert (record.input_ids, record.labels) == (sft.input_ids, sft.labels)
    assert [r.has_parallel for r in encoded] == [True, True, True, False]
    first = encoded[0]
    assert tokenizer.decode(first.input_ids[slice(*first.query_span)]) == EXAMPLES[0].prompt
    english = tokenizer.decode(first.english_ids[slice(*first.english_span)])
    assert english == english_parallel(EXAMPLES[0]).query  # type: ignore[union-attr]
    assert first.conversion is not None and first.thinking is None


def test_logits_terms_match_a_hand_computation(
    tiny: tuple[Any, Any], encoded: list[DftEncoded]
) -> None:
    model, tokenizer = tiny
    with torch.no_grad():
        terms = dft_terms(DftLoss("logits", LAYER_I, LAYER_J), model, _batch(encoded, tokenizer))
        sft, conversion, thinking = [], [], []
        for record in encoded:
            states = _states(model, record.input_ids)
            sft += _token_nats(model, states[-1], record.input_ids, record.labels)
            if record.conversion is not None:
                c = record.conversion
                h_i = _states(model, c.input_ids)[LAYER_I]
                conversion += _token_nats(model, h_i, c.input_ids, c.labels)
                thinking += _token_nats(model, states[LAYER_J], record.input_ids, record.labels)
    for name, nats in (("sft", sft), ("conversion", conversion), ("thinking", thinking)):
        assert float(terms[name]) == pytest.approx(float(torch.stack(nats).mean()), abs=1e-4)


@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_feature_terms_match_a_hand_computation(
    tiny: tuple[Any, Any], encoded: list[DftEncoded], pooling: str
) -> None:
    model, tokenizer = tiny
    with torch.no_grad():
        terms = dft_terms(
            DftLoss("feature", LAYER_I, LAYER_J, pooling=pooling),
            model,
            _batch(encoded, tokenizer),
        )
        conversion, thinking = [], []
        for record in encoded[:3]:
            x_states, en_states = (
                _states(model, record.input_ids),
                _states(model, record.english_ids),
            )
            q, e = slice(*record.query_span), slice(*record.english_span)

            def pooled(h: torch.Tensor, span: slice) -> torch.Tensor:
                return h[0, span].mean(0) if pooling == "mean" else h[0, span][-1]

            conversion.append(
                1
                - F.cosine_similarity(
                    pooled(en_states[LAYER_I], e), pooled(x_states[LAYER_I], q), dim=0
                )
            )
            thinking.append(
                1
                - F.cosine_similarity(
                    pooled(en_states[-1], e), pooled(x_states[LAYER_J], q), dim=0
                )
            )
    assert float(terms["conversion"]) == pytest.approx(
        float(torch.stack(conversion).mean()), abs=1e-5
    )
    assert float(terms["thinking"]) == pytest.approx(float(torch.stack(thinking).mean()), abs=1e-5)
    assert 0 < float(terms["conversion"]) < float(terms["thinking"]) < 2


def test_feature_conversion_trains_both_sides(
    tiny: tuple[Any, Any], encoded: list[DftEncoded]
) -> None:
    ours, hand = copy.deepcopy(tiny[0]), copy.deepcopy(tiny[0])
    loss = DftLoss("feature", LAYER_I, LAYER_J, thinking_weight=0)
    dft_terms(loss, ours, _batch(encoded, tiny[1]))["conversion"].backward()
    distances = []
    for record in encoded[:3]:  # 1 - cos(h_i(x_en), h_i(x_X)), gradient through both
        x_x = hand(input_ids=torch.tensor([record.input_ids]), output_hidden_states=True)
        x_en = hand(input_ids=torch.tensor([record.english_ids]), output_hidden_states=True)
        pooled_x = x_x.hidden_states[LAYER_I][0, slice(*record.query_span)].mean(0)
        pooled_en = x_en.hidden_states[LAYER_I][0, slice(*record.english_span)].mean(0)
        distances.append(1 - F.cosine_similarity(pooled_en, pooled_x, dim=0))
    torch.stack(distances).mean().backward()
    layer, reference = ours.model.layers[0], hand.model.layers[0]
    for (name, a), b in zip(layer.named_parameters(), reference.parameters(), strict=True):
        assert a.grad is not None and b.grad is not None
        assert torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-7), name


def test_pool_takes_the_mean_or_the_last_masked_token() -> None:
    states = torch.arange(12.0).reshape(2, 3, 2)
    mask = torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    assert pool(states, mask, "mean").tolist() == [[3.0, 4.0], [6.0, 7.0]]
    assert pool(states, mask, "last").tolist() == [[4.0, 5.0], [6.0, 7.0]]


def test_zero_weights_are_exactly_sft(tiny: tuple[Any, Any], encoded: list[DftEncoded]) -> None:
    model, tokenizer = tiny
    dft = make_dft_loss(DftSpec(conversion_weight=0, thinking_weight=0), model)
    spec = TrainSpec(method="full", learning_rate=1e-3, batch_size=2, epochs=1.0)
    sft_records = [encode_example(tokenizer, e, 128, SYSTEM) for e in EXAMPLES]
    runs = []
    for loss_fn, collate_fn, records in (
        (sft_loss, collate, sft_records),
        (dft, collate_dft, encoded),
    ):
        trained = copy.deepcopy(model)
        report = train(
            trained,
            records,
            spec,
            seed=0,
            pad_id=tokenizer.pad_token_id,
            loss_fn=loss_fn,
            collate_fn=collate_fn,
        )
        runs.append((report.loss_parts, report.loss_curve, trained.lm_head.weight.detach()))
    (sft_parts, sft_curve, sft_head), (dft_parts, dft_curve, dft_head) = runs
    assert sft_parts == dft_parts and list(dft_parts) == ["sft"]
    assert sft_curve == dft_curve
    assert torch.equal(sft_head, dft_head)


def _extra_gradients(model: Any, loss: DftLoss, batch: dict[str, torch.Tensor]) -> None:
    terms = dft_terms(loss, model, batch)
    (terms["conversion"] + terms["thinking"]).backward()


def _grad_norm(params: list[torch.nn.Parameter]) -> float:
    return sum(float(p.grad.abs().sum()) for p in params if p.grad is not None)


@pytest.mark.parametrize("variant", ["logits", "feature"])
def test_extra_terms_never_reach_the_head_or_layers_above_j(
    tiny: tuple[Any, Any], encoded: list[DftEncoded], variant: str
) -> None:
    model = copy.deepcopy(tiny[0])  # full fine-tune, head tied to the input embeddings
    _extra_gradients(model, DftLoss(variant, LAYER_I, LAYER_J), _batch(encoded, tiny[1]))
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert _grad_norm([model.lm_head.weight, model.model.norm.weight]) == 0
    assert _grad_norm(list(model.model.layers[LAYER_J:].parameters())) == 0
    assert _grad_norm(list(model.model.layers[:LAYER_I].parameters())) > 0


@pytest.mark.parametrize("variant", ["logits", "feature"])
def test_lora_shares_the_sft_forward_and_stays_below_j(
    tiny: tuple[Any, Any], encoded: list[DftEncoded], variant: str
) -> None:
    batch = _batch(encoded, tiny[1])
    wrapped = wrap_lora(copy.deepcopy(tiny[0]), TrainSpec(lora_r=4))
    for name, param in wrapped.named_parameters():  # make every adapter active
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.02)
    terms = dft_terms(DftLoss(variant, LAYER_I, LAYER_J), wrapped, batch)
    layers = wrapped.get_base_model().model.layers
    (terms["conversion"] + terms["thinking"]).backward()
    assert _grad_norm(list(layers[LAYER_J:].parameters())) == 0
    assert _grad_norm(list(layers[:LAYER_J].parameters())) > 0


def test_shared_and_isolated_forwards_agree(
    tiny: tuple[Any, Any], encoded: list[DftEncoded]
) -> None:
    model, tokenizer = tiny
    batch = _batch(encoded, tokenizer)
    frozen = copy.deepcopy(model)
    frozen.model.embed_tokens.weight.requires_grad_(False)  # no isolation needed
    for variant in ("logits", "feature"):
        with torch.no_grad():
            isolated = dft_terms(DftLoss(variant, LAYER_I, LAYER_J), model, batch)
            shared = dft_terms(DftLoss(variant, LAYER_I, LAYER_J), frozen, batch)
        for name in isolated:
            assert float(isolated[name]) == pytest.approx(float(shared[name]), abs=1e-5)


def test_translated_general_data_supervises_its_english_answer(
    tmp_path: Path, tiny: tuple[Any, Any]
) -> None:
    path = tmp_path / "general_el.jsonl"
    lines = [
        {"instruction": "Γράψε ένα ποίημα.", "output": "Ένα ποίημα.",
         "instruction_en": "Write a poem.", "output_en": "A poem."},
        {"instruction": "Πες ένα αστείο.", "input": "για γάτες", "output": "Ένα αστείο.",
         "instruction_en": "Tell a joke.", "input_en": "about cats", "output_en": "A joke."},
        {"instruction": "Μόνο ελληνικά.", "output": "Ναι."},
    ]  # fmt: skip
    path.write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in lines))
    general = read_general_examples(str(tmp_path / "general_{lang}.jsonl"), "el")
    parallels = read_english_parallels(str(tmp_path / "general_{lang}.jsonl"), "el")
    assert english_parallel(general[1], parallels).query == "Tell a joke.\n\nabout cats"  # type: ignore[union-attr]
    records = encode_dft_examples(tiny[1], general, 128, SYSTEM, parallels)
    assert [r.has_parallel for r in records] == [True, True, False]
    assert records[0].thinking is not None
    assert tiny[1].decode(records[0].thinking.input_ids).endswith("A poem.<|im_end|>")
    batch = _batch(records, tiny[1])
    assert batch["thinking_rows"].numel() == 0 and batch["thinking_ids"].shape[0] == 2
    with torch.no_grad():
        terms = dft_terms(DftLoss("logits", LAYER_I, LAYER_J), tiny[0], batch)
        nats = []
        for record in records[:2]:
            t = record.thinking
            assert t is not None
            nats += _token_nats(
                tiny[0], _states(tiny[0], t.input_ids)[LAYER_J], t.input_ids, t.labels
            )
    assert float(terms["thinking"]) == pytest.approx(float(torch.stack(nats).mean()), abs=1e-4)


def test_a_batch_without_parallel_english_adds_nothing(
    tiny: tuple[Any, Any], encoded: list[DftEncoded]
) -> None:
    batch = _batch(encoded[3:], tiny[1])
    loss, parts = DftLoss("logits", LAYER_I, LAYER_J)(tiny[0], batch)
    assert parts["conversion"] == parts["thinking"] == 0.0
    assert float(loss) == parts["sft"]
