"""What `plan-sweep write-data` writes beside the data, so common trainers read it as planned.

Pure functions from the list of data files (`DataFile`) to file texts:

- `README.md`: a Hugging Face dataset card whose `configs:` make `datasets.load_dataset(DIR)`
  return a `train` split (every training file, concatenated) and one `eval_<lang>` split per
  language (its held-out pairs), with a table of exact counts, shares, passes and text sizes;
- `dataset_info.json` + `llamafactory.yaml`: LLaMA-Factory dataset entries (`formatting` and
  `columns` for the chosen format) and the data arguments that use them;
- `axolotl.yaml`: Axolotl `datasets:` and `test_datasets:` entries, one per file.

Counts are met by construction: every file holds exactly its planned examples, repeated passes
included, so each trainer is told to concatenate the files and shuffle, never to re-sample
them (Hugging Face `interleave_datasets` with `stopping_strategy='all_exhausted'` keeps
drawing until the last file is used up, which oversamples small languages whatever the
probabilities say).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sweeps.instructions import Example

DATA_FORMATS = ("chat", "alpaca")
TEXT_UNITS = (
    "characters and whitespace-separated words of prompt + response (no tokenizer is loaded; "
    "words undercount scripts written without spaces, such as Chinese or Japanese)"
)
SEMANTICS = (
    "Each file holds exactly its planned examples (repeated passes included), so the counts "
    "are met by construction: concatenate the training files and shuffle (one epoch over the "
    "concatenation trains on each planned example once). `share` is a file's fraction of the "
    "training examples: the probability that a uniformly shuffled example comes from it. Do "
    "not re-sample the files with these shares (Hugging Face interleave_datasets with "
    "stopping_strategy='all_exhausted' oversamples small files; 'first_exhausted' stops at "
    "the first one used up)."
)


@dataclass(frozen=True)
class DataFile:
    """One JSONL file of the training set.

    Attributes:
        path: its path inside the output folder (`data/train.el.jsonl`).
        split: `train` or `eval`.
        kind: `translation`, `general` or `heldout`.
        language: the language code (`en` for English general data).
        examples: what it holds, in file order.
        passes: passes over the pool it was drawn from (training files; 0 for eval ones).
    """

    path: str
    split: str
    kind: str
    language: str
    examples: tuple[Example, ...]
    passes: float = 0.0

    @property
    def name(self) -> str:
        """A dataset name for trainers' registries, from the file name: `muit_train_el`."""
        return "muit_" + Path(self.path).name.removesuffix(".jsonl").replace(".", "_")

    def text_size(self) -> dict[str, int]:
        """Characters and whitespace-separated words of prompts + responses (`TEXT_UNITS`)."""
        return text_size(self.examples)


def text_size(examples: Sequence[Example]) -> dict[str, int]:
    """Characters and whitespace-separated words of the examples' prompts and responses."""
    return {
        "characters": sum(len(e.prompt) + len(e.response) for e in examples),
        "words": sum(len(e.prompt.split()) + len(e.response.split()) for e in examples),
    }


def record(example: Example, data_format: str, system_prompt: str | None) -> dict[str, Any]:
    """One JSONL record: chat (`messages`, `language`) or Alpaca (`instruction`, `input`,
    `output`, `language`, and `system` when there is a system prompt)."""
    if data_format == "alpaca":
        out: dict[str, Any] = {
            "instruction": example.prompt,
            "input": "",
            "output": example.response,
            "language": example.language,
        }
        if system_prompt:
            out["system"] = system_prompt
        return out
    messages = [
        {"role": "user", "content": example.prompt},
        {"role": "assistant", "content": example.response},
    ]
    if system_prompt:
        messages.insert(0, {"role": "system", "content": system_prompt})
    return {"messages": messages, "language": example.language}


def jsonl(examples: Sequence[Example], data_format: str, system_prompt: str | None) -> str:
    """The examples as JSONL lines in `data_format`."""
    return "".join(
        json.dumps(record(e, data_format, system_prompt), ensure_ascii=False) + "\n"
        for e in examples
    )


def eval_split(language: str) -> str:
    """The `datasets` split name of a language's eval file (split names are word characters)."""
    return "eval_" + re.sub(r"\W", "_", language)


def shares(files: Sequence[DataFile]) -> dict[str, float]:
    """Each training file's share of the training examples, by path."""
    train = [f for f in files if f.split == "train"]
    total = sum(len(f.examples) for f in train)
    return {f.path: len(f.examples) / total if total else 0.0 for f in train}


def _card(files: Sequence[DataFile], title: str) -> str:
    train = [f.path for f in files if f.split == "train"]
    data_files: list[dict[str, Any]] = [{"split": "train", "path": train}]
    data_files += [
        {"split": eval_split(f.language), "path": f.path} for f in files if f.split == "eval"
    ]
    header = yaml.safe_dump(
        {"configs": [{"config_name": "default", "data_files": data_files}]}, sort_keys=False
    )
    share = shares(files)
    rows = [
        "| file | split | kind | language | examples | share | passes | characters | words |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in files:
        size = f.text_size()
        split = "train" if f.split == "train" else eval_split(f.language)
        share_text = f"{share[f.path]:.4f}" if f.path in share else "-"
        passes = f"{f.passes:.3f}" if f.split == "train" else "-"
        rows.append(
            f"| {f.path} | {split} | {f.kind} | {f.language} | {len(f.examples)} | "
            f"{share_text} | {passes} | {size['characters']} | {size['words']} |"
        )
    body = [
        f"# {title}",
        "",
        'Load with `datasets.load_dataset("THIS_FOLDER")`: split `train` is every training file '
        "below concatenated; `eval_<lang>` is a language's held-out pairs, the very ones each "
        "sweep run was scored on. Shuffle `train` (`ds['train'].shuffle(seed=0)`) or let the "
        "trainer shuffle it.",
        "",
        SEMANTICS,
        "",
        f"Text sizes: {TEXT_UNITS}.",
        "",
        *rows,
    ]
    return f"---\n{header}---\n\n" + "\n".join(body) + "\n"


def _llamafactory_entry(f: DataFile, data_format: str, has_system: bool) -> dict[str, Any]:
    if data_format == "alpaca":
        columns = {"prompt": "instruction", "query": "input", "response": "output"}
        if has_system:
            columns["system"] = "system"
        return {"file_name": f.path, "formatting": "alpaca", "columns": columns}
    return {
        "file_name": f.path,
        "formatting": "sharegpt",
        "columns": {"messages": "messages"},
        "tags": {
            "role_tag": "role",
            "content_tag": "content",
            "user_tag": "user",
            "assistant_tag": "assistant",
            "system_tag": "system",
        },
    }


def _comment(lines: Sequence[str]) -> str:
    return "".join(f"# {line}\n" if line else "#\n" for line in lines)


def _llamafactory(
    files: Sequence[DataFile], data_format: str, has_system: bool, folder: Path
) -> dict[str, str]:
    info = {f.name: _llamafactory_entry(f, data_format, has_system) for f in files}
    args = {
        "dataset_dir": str(folder),
        "dataset": ",".join(f.name for f in files if f.split == "train"),
        "eval_dataset": ",".join(f.name for f in files if f.split == "eval"),
        "eval_on_each_dataset": True,
        "mix_strategy": "concat",
    }
    header = _comment(
        [
            "LLaMA-Factory data arguments: merge into your `llamafactory-cli train` YAML (model,",
            "template, finetuning_type, ...). The datasets are the entries of dataset_info.json",
            "in dataset_dir (move the folder: change dataset_dir).",
            "mix_strategy concat: every example of each file once per epoch, the planned counts",
            "exactly; do not switch to interleave_* with interleave_probs (interleave_over",
            "oversamples small files). eval_on_each_dataset: one eval loss per language.",
        ]
    )
    return {
        "dataset_info.json": json.dumps(info, indent=2, ensure_ascii=False) + "\n",
        "llamafactory.yaml": header + yaml.safe_dump(args, sort_keys=False, allow_unicode=True),
    }


def _axolotl_entry(f: DataFile, data_format: str, folder: Path) -> dict[str, Any]:
    entry: dict[str, Any] = {"path": str(folder / f.path), "ds_type": "json"}
    if f.split == "eval":
        entry["split"] = "train"  # a local JSON file loads as one 'train' split
    if data_format == "alpaca":
        entry["type"] = "alpaca"
        return entry
    entry.update(
        type="chat_template",
        field_messages="messages",
        message_property_mappings={"role": "role", "content": "content"},
        roles_to_train=["assistant"],
    )
    return entry


def _axolotl(files: Sequence[DataFile], data_format: str, folder: Path) -> str:
    config = {
        "datasets": [_axolotl_entry(f, data_format, folder) for f in files if f.split == "train"],
        "test_datasets": [
            _axolotl_entry(f, data_format, folder) for f in files if f.split == "eval"
        ],
        "shuffle_merged_datasets": True,
    }
    notes = [
        "Axolotl datasets: merge into your axolotl config (base_model, chat_template, ...).",
        "Axolotl has no per-dataset weights; none are needed: each file holds exactly its",
        "planned examples (README.md lists counts and shares), and the merged set is shuffled.",
        "test_datasets are merged into one eval loss; for one per language, evaluate with one",
        "entry at a time (or use the LLaMA-Factory config, which reports each).",
    ]
    if data_format == "alpaca":
        notes.append("type alpaca ignores the 'system' field; write --format chat to keep it.")
    return _comment(notes) + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


def trainer_configs(
    files: Sequence[DataFile],
    data_format: str,
    system_prompt: str | None,
    folder: Path,
    title: str,
) -> dict[str, str]:
    """Every trainer's config for `files`, by file name.

    Args:
        files: the data files, training ones first.
        data_format: `chat` or `alpaca` (the files' record format).
        system_prompt: the records' system prompt, if any.
        folder: the output folder as trainers should find it (absolute).
        title: the dataset card's heading.
    """
    return {
        "README.md": _card(files, title),
        **_llamafactory(files, data_format, bool(system_prompt), folder),
        "axolotl.yaml": _axolotl(files, data_format, folder),
    }
