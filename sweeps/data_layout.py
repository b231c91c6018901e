"""The layout of a `plan-sweep write-data` folder: which files a MuIT set is written as, the
manifest that describes them, and what counts as an earlier set (so a rewrite may replace it).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from muit_core import ConfigError
from sweeps.general_data import GeneralPart
from sweeps.trainer_formats import SEMANTICS, TEXT_UNITS, DataFile, shares, text_size

if TYPE_CHECKING:
    from sweeps.mixture import Mixture, MixtureAllocation
    from sweeps.mixture_data import MixtureData

log = logging.getLogger(__name__)

OUTPUT_FILES = (
    "train.jsonl",
    "manifest.json",
    "README.md",
    "dataset_info.json",
    "llamafactory.yaml",
    "axolotl.yaml",
)
DATA_DIR = "data"
_DATA_FILE = re.compile(r"(train|general|eval)\.[A-Za-z0-9_-]+\.jsonl")


def check_out_dir(out_dir: Path) -> None:
    """Refuse an output folder that holds files other than an earlier training set's.

    An earlier set is what write-data writes: the files of `OUTPUT_FILES` and, under `data/`,
    `train.*.jsonl`, `general.*.jsonl` and `eval.*.jsonl`. Without a `manifest.json` beside
    them, a `README.md` or trainer config is the user's own (only a lone `train.jsonl`, as the
    first write-data wrote, passes).

    Raises:
        ConfigError: `out_dir` is a file, or a folder with other files in it.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {str(out_dir)!r} is a file, not a folder; give a folder path.")
    if not out_dir.is_dir():
        return
    names = {p.name for p in out_dir.iterdir()}
    known = set(OUTPUT_FILES) if "manifest.json" in names else {"train.jsonl"}
    others = sorted(name for name in names if name not in known and name != DATA_DIR)
    data = out_dir / DATA_DIR
    if data.exists() and not data.is_dir():
        others.append(DATA_DIR)
    elif data.is_dir():
        others += sorted(
            f"{DATA_DIR}/{p.name}"
            for p in data.iterdir()
            if not (p.is_file() and _DATA_FILE.fullmatch(p.name))
        )
    if others:
        raise ConfigError(
            f"--out {str(out_dir)!r} holds other files ({', '.join(others[:3])}); give an "
            "empty or new folder, or one that only holds an earlier write-data output."
        )


def data_files(data: MixtureData) -> list[DataFile]:
    """The per-language files: training ones (translation, general) first, then eval ones."""
    train: list[DataFile] = []
    for part in data.languages:
        if part.examples:
            passes = len(part.examples) / part.pool if part.pool else 0.0
            path = f"{DATA_DIR}/train.{part.language}.jsonl"
            train.append(
                DataFile(path, "train", "translation", part.language, part.examples, passes)
            )
    generals = [part.general for part in data.languages if part.general] + (
        [data.english] if data.english else []
    )
    for general in generals:
        if general.examples:
            path = f"{DATA_DIR}/general.{general.language}.jsonl"
            train.append(
                DataFile(
                    path, "train", "general", general.language, general.examples, general.passes
                )
            )
    evals = [
        DataFile(f"{DATA_DIR}/eval.{p.language}.jsonl", "eval", "heldout", p.language, p.heldout)
        for p in data.languages
        if p.heldout
    ]
    return train + evals


def _general_entry(general: GeneralPart | None) -> dict[str, Any] | None:
    if general is None:
        return None
    return {
        "examples": len(general.examples),
        "pool": general.pool,
        "passes": general.passes,
        "source": general.source,
        **text_size(general.examples),
    }


def build_manifest(
    mixture: Mixture,
    allocation: MixtureAllocation,
    data: MixtureData,
    files: list[DataFile],
    settings: dict[str, Any],
) -> dict[str, Any]:
    """`manifest.json`: totals, per language (examples, pool, passes, corpus, pair filter,
    general part, share, eval examples, text size), the English general part, per file, and
    which config each trainer reads; `settings` (format, direction, recipe, eval rule) as
    given."""
    n_train = len(data.training_examples())
    languages: dict[str, Any] = {}
    for part in data.languages:
        examples = part.training_examples
        languages[part.language] = {
            "examples": len(part.examples),
            "pool": part.pool or None,
            "passes": len(part.examples) / part.pool if part.pool else 0.0,
            "corpus": part.corpus,
            "pair_filter": part.pair_filter or None,
            "general": _general_entry(part.general),
            "share": len(examples) / n_train if n_train else 0.0,
            "eval_examples": len(part.heldout),
            **text_size(examples),
        }
    share = shares(files)
    translation = sum(len(part.examples) for part in data.languages)
    return {
        "file": "train.jsonl",
        "mixture": str(mixture.path),
        "allocator": allocation.allocator,
        "examples": n_train,
        "translation_examples": translation,
        "general_examples": n_train - translation,
        "budget_unit": "translation examples (general examples come on top, by the recipe)",
        **settings,
        "seed": mixture.seed,
        "languages": languages,
        "english_general": _general_entry(data.english),
        "text_units": TEXT_UNITS,
        "files": [
            {
                "path": f.path,
                "split": f.split,
                "kind": f.kind,
                "language": f.language,
                "examples": len(f.examples),
                "share": share.get(f.path),
                "passes": f.passes if f.split == "train" else None,
                **f.text_size(),
            }
            for f in files
        ],
        "semantics": SEMANTICS,
        "trainers": {
            "datasets": "README.md",
            "llamafactory": ["dataset_info.json", "llamafactory.yaml"],
            "axolotl": "axolotl.yaml",
        },
    }


def remove_stale(out_dir: Path, written: set[str]) -> None:
    """Drop data files an earlier write-data left that this one did not write (a language or
    general file the new set does not have), so a glob over `data/` sees only this set."""
    data = out_dir / DATA_DIR
    for path in sorted(data.glob("*.jsonl")) if data.is_dir() else []:
        if f"{DATA_DIR}/{path.name}" not in written and _DATA_FILE.fullmatch(path.name):
            path.unlink()
            log.info("removed %s, left by an earlier write-data", path)
