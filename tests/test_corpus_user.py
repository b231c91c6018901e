"""Users' own corpora: JSONL, TSV and saved Hugging Face datasets, and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from muit_core import DataError
from sweeps.corpus import load_pools
from sweeps.pairs import PairFilter

ROWS = [
    ("The document is saved in the folder.", "Das Dokument wird im Ordner gespeichert."),
    ("Click the icon on the toolbar.", "Klicken Sie auf das Symbol in der Symbolleiste."),
    (
        "Select the cells you want to format.",
        "Wählen Sie die Zellen aus, die Sie formatieren möchten.",
    ),
]
NO_HOLDOUT = PairFilter(heldout_fraction=0.0)


def _texts(source: str, language: str = "de") -> set[tuple[str, str]]:
    pools = load_pools(source, language, NO_HOLDOUT)
    return {(p.en, p.text) for p in pools.train}


def test_jsonl_language_keys_and_source_target(tmp_path: Path) -> None:
    path = tmp_path / "de.jsonl"
    lines = [json.dumps({"en": en, "de": de}) for en, de in ROWS[:2]]
    lines.append(json.dumps({"source": ROWS[2][0], "target": ROWS[2][1]}))
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    assert _texts(str(path)) == set(ROWS)


def test_jsonl_path_template_per_language(tmp_path: Path) -> None:
    (tmp_path / "de.jsonl").write_text(
        "".join(json.dumps({"translation": {"en": en, "de": de}}) + "\n" for en, de in ROWS)
    )
    assert _texts(str(tmp_path / "{lang}.jsonl")) == set(ROWS)


def test_tsv_with_header(tmp_path: Path) -> None:
    path = tmp_path / "de.tsv"
    path.write_text("en\tde\n" + "".join(f"{en}\t{de}\n" for en, de in ROWS), encoding="utf-8")
    assert _texts(str(path)) == set(ROWS)


def test_saved_hf_dataset(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "ds"
    datasets.Dataset.from_dict(
        {"en": [en for en, _ in ROWS], "de": [de for _, de in ROWS]}
    ).save_to_disk(str(folder))
    assert _texts(str(folder)) == set(ROWS)


def test_malformed_jsonl_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"en": "a b c d", "de": "e f g h"}) + "\n{not json\n")
    with pytest.raises(DataError, match=r"bad\.jsonl:2: not valid JSON"):
        load_pools(str(path), "de")


def test_jsonl_with_wrong_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys.jsonl"
    path.write_text(json.dumps({"english": "a b c d", "german": "e f g h"}) + "\n")
    with pytest.raises(DataError, match=r"keys\.jsonl:1: expected keys 'en' and 'de'"):
        load_pools(str(path), "de")


def test_missing_and_empty_sources(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_pools(str(tmp_path / "nope.jsonl"), "de")
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(DataError, match="is empty"):
        load_pools(str(empty_dir), "de")
    empty_file = tmp_path / "empty.jsonl"
    empty_file.write_text("\n")
    with pytest.raises(DataError, match="holds no pairs"):
        load_pools(str(empty_file), "de")
    odd = tmp_path / "pairs.csv"
    odd.write_text("a,b\n")
    with pytest.raises(DataError, match="Cannot tell the format"):
        load_pools(str(odd), "de")


def test_tsv_with_wrong_column_count(tmp_path: Path) -> None:
    path = tmp_path / "de.tsv"
    path.write_text("one column only\n")
    with pytest.raises(DataError, match=r"de\.tsv:1: expected 2 tab-separated columns"):
        load_pools(str(path), "de")
