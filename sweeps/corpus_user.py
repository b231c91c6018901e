"""Users' own parallel corpora: JSONL, TSV, or a saved Hugging Face dataset folder.

Accepted shapes (the English side is always the source):
- JSONL, one object per line: `{"en": ..., "<lang>": ...}` or `{"source": ..., "target": ...}`,
  or the Hugging Face translation shape `{"translation": {"en": ..., "<lang>": ...}}`.
- TSV: `english<TAB>translation` per line; a first line `en<TAB><lang>` is read as a header.
- A folder written by `datasets.Dataset.save_to_disk` (or a `DatasetDict`; its splits are
  concatenated and re-split by the project's own held-out rule), with the same columns.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from muit_core import DataError
from sweeps.pairs import CorpusEntry, Pair
from sweeps.saved_datasets import load_saved_dataset


def _pair_from_record(record: Mapping[str, Any], language: str, where: str) -> Pair:
    """Read one record in any accepted shape; `where` names the file and line for errors."""
    if isinstance(record.get("translation"), Mapping):
        record = record["translation"]
    if "en" in record and language in record:
        en, text = record["en"], record[language]
    elif "source" in record and "target" in record:
        en, text = record["source"], record["target"]
    else:
        raise DataError(
            f"{where}: expected keys 'en' and {language!r} (or 'source' and 'target'), "
            f"found {sorted(record)}."
        )
    if not isinstance(en, str) or not isinstance(text, str):
        raise DataError(f"{where}: both sides of a pair must be strings.")
    return Pair(en=en, text=text, key=where)


def read_jsonl(path: Path, language: str) -> list[Pair]:
    """Pairs from a JSONL file; a malformed line is an error naming the file and line."""
    pairs: list[Pair] = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(
                    f"{where}: not valid JSON ({err.msg}); fix or remove the line."
                ) from None
            if not isinstance(record, dict):
                raise DataError(f"{where}: expected a JSON object per line.")
            pairs.append(_pair_from_record(record, language, where))
    return pairs


def read_tsv(path: Path, language: str) -> list[Pair]:
    """Pairs from a two-column TSV file (English first); an optional `en<TAB>lang` header."""
    pairs: list[Pair] = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            columns = line.rstrip("\n").split("\t")
            if len(columns) != 2:
                raise DataError(
                    f"{path}:{line_number}: expected 2 tab-separated columns (English, "
                    f"{language}), found {len(columns)}."
                )
            if line_number == 1 and columns[0].strip().lower() in {"en", "english", "source"}:
                continue
            pairs.append(Pair(en=columns[0], text=columns[1], key=f"{path}:{line_number}"))
    return pairs


def read_hf_dataset(path: Path, language: str) -> list[Pair]:
    """Pairs from a saved Hugging Face dataset folder (needs the `datasets` package)."""
    loaded = load_saved_dataset(path, "a .jsonl or .tsv file")
    splits = list(loaded.values()) if isinstance(loaded, dict) else [loaded]  # DatasetDict
    pairs: list[Pair] = []
    for split_index, split in enumerate(splits):
        for row_index, row in enumerate(split):
            pairs.append(_pair_from_record(row, language, f"{path}[{split_index}:{row_index}]"))
    return pairs


def read_pairs(path: Path, language: str) -> list[Pair]:
    """Read a user's corpus file or folder, choosing the reader by its shape.

    Raises:
        DataError: the path is missing, empty, of an unknown kind, or malformed.
    """
    if not path.exists():
        raise DataError(
            f"Corpus path {path} does not exist; give a .jsonl or .tsv file, a saved Hugging "
            "Face dataset folder, or the source 'libreoffice'."
        )
    if path.is_dir():
        if not any(path.iterdir()):
            raise DataError(f"Corpus folder {path} is empty; it should hold a saved dataset.")
        pairs = read_hf_dataset(path, language)
    elif path.suffix.lower() in {".jsonl", ".json"}:
        pairs = read_jsonl(path, language)
    elif path.suffix.lower() in {".tsv", ".txt"}:
        pairs = read_tsv(path, language)
    else:
        raise DataError(
            f"Cannot tell the format of {path} from its suffix {path.suffix!r}; "
            "use .jsonl, .tsv or a saved Hugging Face dataset folder."
        )
    if not pairs:
        raise DataError(f"Corpus {path} holds no pairs; add some lines or pick another file.")
    return pairs


def read_source(source: str, language: str) -> list[Pair]:
    """`read_pairs` for a source string: a path, with `{lang}` replaced by the language code."""
    return read_pairs(Path(source.replace("{lang}", language)), language)


CORPUS = CorpusEntry(
    name="user",
    source_help="a .jsonl/.tsv/dataset path ('{lang}' is replaced by the code)",
    claims=lambda source: True,  # any source no other corpus claims is a path
    read_pairs=read_source,
)
