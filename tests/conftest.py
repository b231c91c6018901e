"""Test-wide settings: offline hub access, the `gpu` marker's skip, and the smoke sweep."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The default tests must never reach a model or dataset hub; everything comes from registries.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip `gpu` tests where no CUDA device is present (they never count as passing)."""
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in gpu_items:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def smoke_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run the real smoke spec once (`plan-sweep launch smoke`, about a minute on CPU) into a
    temporary folder; return the sweep folder, which holds results.csv."""
    from sweeps import cli

    out = tmp_path_factory.mktemp("smoke")
    assert cli.main(["launch", "smoke", f"out_dir={str(out / 'runs')!r}"]) == 0
    return out / "runs"
