"""Folders written by Hugging Face `datasets` `save_to_disk`: the one loader for user corpora
(`sweeps.corpus_user`) and general instruction data (`sweeps.instructions`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from muit_core import DataError


def load_saved_dataset(path: Path, instead: str) -> Any:
    """`datasets.load_from_disk(path)`: a `Dataset`, or a `DatasetDict` (a dict of splits).

    Args:
        path: the folder.
        instead: what the user can give instead, for the messages (e.g. "a .jsonl file").

    Raises:
        DataError: `datasets` is not installed, or the folder is not a saved dataset.
    """
    try:
        import datasets
    except ImportError:
        raise DataError(
            f"Reading the dataset folder {path} needs the `datasets` package; install it with "
            f"`pip install 'muit-planner[hf]'` or give {instead}."
        ) from None
    try:
        return datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as err:
        raise DataError(
            f"{path} is not a saved Hugging Face dataset ({err}); save one with "
            f"`Dataset.save_to_disk` or give {instead}."
        ) from None
