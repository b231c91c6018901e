"""The trainer on the tiny random model: masking, batching, loss, determinism, LoRA."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sweeps.instructions import Example, translation_examples
from sweeps.model import TINY_MODEL, load_model
from sweeps.pairs import Pair
from sweeps.spec import TrainSpec
from sweeps.templates import Direction
from sweeps.train import (
    IGNORE_INDEX,
    TrainingError,
    collate,
    encode_example,
    length_grouped_batches,
    response_token_losses,
    train,
    wrap_lora,
)

PAIRS = [
    Pair(
        f"Click the button number {i} to open dialog {i}.", f"Κάντε κλικ στο κουμπί {i}.", f"k{i}"
    )
    for i in range(24)
]
EXAMPLES = translation_examples(PAIRS, "el", Direction.EN_TO_X)


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    return load_model(TINY_MODEL)[1]


def test_loss_falls_only_on_the_response(tokenizer) -> None:  # type: ignore[no-untyped-def]
    encoded = encode_example(tokenizer, EXAMPLES[0], max_length=256)
    n_prompt = sum(1 for label in encoded.labels if label == IGNORE_INDEX)
    response_text = tokenizer.decode(encoded.input_ids[n_prompt:])
    assert response_text == EXAMPLES[0].response + "<|im_end|>"
    assert "<|im_start|>assistant" in tokenizer.decode(encoded.input_ids[:n_prompt])
    assert len(encoded.input_ids) == len(encoded.labels)


def test_truncation_respects_max_length(tokenizer) -> None:  # type: ignore[no-untyped-def]
    long = Example("Translate: " + "word " * 200, "λέξη " * 200, "el")
    encoded = encode_example(tokenizer, long, max_length=64)
    assert len(encoded.input_ids) == 64
    assert encoded.n_response_tokens >= 1


def test_length_grouped_batches_cover_every_example_once() -> None:
    lengths = [5, 50, 7, 48, 9, 46, 11, 44, 13, 42, 15]
    batches = length_grouped_batches(lengths, 3, torch.Generator().manual_seed(0))
    flat = sorted(i for batch in batches for i in batch)
    assert flat == list(range(len(lengths)))
    assert all(len(b) <= 3 for b in batches)


def test_response_losses_match_a_full_forward(tokenizer) -> None:  # type: ignore[no-untyped-def]
    model, _ = load_model(TINY_MODEL)
    encoded = [encode_example(tokenizer, e, 128) for e in EXAMPLES[:4]]
    batch = collate(encoded, tokenizer.pad_token_id, torch.device("cpu"))
    with torch.no_grad():
        ours, _ = response_token_losses(model, batch)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    targets = batch["labels"][:, 1:]
    keep = targets != IGNORE_INDEX
    reference = F.cross_entropy(logits[:, :-1][keep].float(), targets[keep], reduction="none")
    assert ours.shape == reference.shape
    assert torch.allclose(ours, reference, atol=1e-5)


def _train_tiny(seed: int, **overrides: object) -> tuple[float, float]:
    model, tokenizer = load_model(TINY_MODEL)
    encoded = [encode_example(tokenizer, e, 96) for e in EXAMPLES]
    spec = TrainSpec(method="full", learning_rate=3e-3, batch_size=4, epochs=3.0, **overrides)  # type: ignore[arg-type]
    report = train(model, encoded, spec, seed=seed, pad_id=tokenizer.pad_token_id)
    assert report.n_steps == 18 and report.train_tokens > 0
    assert report.loss_parts["sft"] and len(report.loss_parts["sft"]) == 18
    return report.first_loss_nats, report.last_loss_nats


def test_training_lowers_the_loss_and_is_deterministic() -> None:
    first, last = _train_tiny(seed=0)
    assert last < first - 0.5
    assert _train_tiny(seed=0) == (first, last)
    assert _train_tiny(seed=1) != (first, last)


def test_nan_loss_is_a_training_error(tokenizer) -> None:  # type: ignore[no-untyped-def]
    model, _ = load_model(TINY_MODEL)
    encoded = [encode_example(tokenizer, e, 96) for e in EXAMPLES[:8]]

    def nan_loss(
        model: object, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        return torch.tensor(math.nan, requires_grad=True), {}

    with pytest.raises(TrainingError, match="loss became nan at step 1"):
        train(model, encoded, TrainSpec(), seed=0, pad_id=0, loss_fn=nan_loss)


def test_lora_trains_adapters_only(tokenizer) -> None:  # type: ignore[no-untyped-def]
    model, _ = load_model(TINY_MODEL)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    spec = TrainSpec(method="lora", lora_r=4, learning_rate=1e-2, batch_size=4)
    wrapped = wrap_lora(model, spec)
    trainable = [n for n, p in wrapped.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    encoded = [encode_example(tokenizer, e, 96) for e in EXAMPLES[:8]]
    train(wrapped, encoded, spec, seed=0, pad_id=tokenizer.pad_token_id)
    for name, param in model.named_parameters():
        if "lora_" not in name and name.replace("base_layer.", "") in before:
            assert torch.equal(param, before[name.replace("base_layer.", "")]), name
