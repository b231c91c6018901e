"""`plan-sweep write-data` for trainers: general data by the sweep's recipe, per-language
files, the held-out pairs the sweep scored, and the configs of Hugging Face `datasets`,
LLaMA-Factory and Axolotl.

The `datasets` config is loaded with the `datasets` library (extra `hf`). LLaMA-Factory and
Axolotl do not install here (their dependency trees pin torch/transformers builds and need a
GPU stack), so their configs are checked by shape: every entry names a file that exists, in
the format and with the columns its records have.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_write_data import fake_pools, make_mixture, read_jsonl

from muit_core import ConfigError, DataError
from sweeps import cli
from sweeps.general_data import GeneralRecipe, cell_examples
from sweeps.instructions import heldout_examples, read_general_examples, translation_examples
from sweeps.mixture import Mixture, read_mixture
from sweeps.spec import spec_from_dict
from sweeps.templates import Direction
from sweeps.write_data import choose_pairs, write_training_data

HELDOUT = 3  # eval.heldout_size of these tests (the fake pools hold 4 held-out pairs)


def write_general(folder: Path, language: str, n: int, **extra: Any) -> None:
    """An Alpaca JSONL of `n` general instructions in `language`."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps({"instruction": f"{language} task {i}", "input": "", "output": f"ok {i}"})
        for i in range(n)
    ]
    (folder / f"general_{language}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def recipe(tmp_path: Path, ratio: float = 0.5, ratio_en: float = 0.25) -> GeneralRecipe:
    """General data for el (6 examples), hi (3: the ratio asks for more, so they repeat) and
    English (5)."""
    folder = tmp_path / "general"
    for language, n in (("el", 6), ("hi", 3), ("en", 5)):
        write_general(folder, language, n)
    return GeneralRecipe(
        str(folder / "general_{lang}.jsonl"), ratio, str(folder / "general_en.jsonl"), ratio_en
    )


def write(mixture: Mixture, out: Path, **kw: Any) -> dict[str, Any]:
    kw.setdefault("direction", Direction.EN_TO_X)
    kw.setdefault("heldout_size", HELDOUT)
    return write_training_data(mixture, mixture.allocation("planner"), out, load=fake_pools, **kw)


def test_datasets_config_loads_with_the_exact_per_language_counts(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    mixture = read_mixture(make_mixture(tmp_path, budget=50))
    planned = mixture.allocation("planner").examples
    general = recipe(tmp_path)
    manifest = write(mixture, tmp_path / "out", general=general)
    loaded = datasets.load_dataset(str(tmp_path / "out"), cache_dir=str(tmp_path / "cache"))
    # Each language: its translation examples plus round(0.5 x them) general ones in it;
    # English: round(0.25 x all translation examples).
    expected = {lang: n + round(0.5 * n) for lang, n in planned.items()}
    expected["en"] = round(0.25 * sum(planned.values()))
    assert Counter(loaded["train"]["language"]) == expected
    assert manifest["examples"] == len(loaded["train"]) == sum(expected.values())
    assert manifest["translation_examples"] == sum(planned.values()) == 50
    for lang in planned:
        assert len(loaded[f"eval_{lang}"]) == HELDOUT
        assert manifest["languages"][lang]["eval_examples"] == HELDOUT
    # The shares stated are the files' exact fractions of the training split.
    for entry in manifest["files"]:
        lines = (tmp_path / "out" / entry["path"]).read_text(encoding="utf-8").splitlines()
        assert len(lines) == entry["examples"]
        if entry["split"] == "train":
            assert entry["share"] == pytest.approx(entry["examples"] / len(loaded["train"]))
    # The whole shuffled mixture (train.jsonl) is the union of the per-language files.
    union = Counter(
        json.dumps(r, sort_keys=True) for r in read_jsonl(tmp_path / "out" / "train.jsonl")
    )
    parts: Counter[str] = Counter()
    for entry in manifest["files"]:
        if entry["split"] == "train":
            path = tmp_path / "out" / entry["path"]
            parts.update(json.dumps(r, sort_keys=True) for r in read_jsonl(path))
    assert union == parts


def test_general_data_follows_the_sweeps_recipe_and_repeats_whole_passes(tmp_path: Path) -> None:
    mixture = read_mixture(make_mixture(tmp_path, budget=50))
    planned = mixture.allocation("planner").examples
    general = recipe(tmp_path)
    manifest = write(mixture, tmp_path / "out", general=general)
    for lang, n in planned.items():
        # What a sweep cell of n examples of `lang` with the mixture's seed trains on.
        pairs = choose_pairs(fake_pools("x", lang), n, mixture.seed)
        translation = translation_examples(pairs, lang, Direction.EN_TO_X)
        cell = cell_examples(
            GeneralRecipe(general.in_language, 0.5), translation, lang, mixture.seed
        )
        written = read_jsonl(tmp_path / "out" / "data" / f"general.{lang}.jsonl")
        assert (
            [r["messages"][0]["content"] for r in written]
            == [  # type: ignore[index]
                e.prompt for e in cell[n:]
            ]
        )
        entry = manifest["languages"][lang]["general"]
        assert entry["examples"] == round(0.5 * n)
        assert entry["passes"] == pytest.approx(round(0.5 * n) / entry["pool"])
    hi = Counter(
        r["messages"][0]["content"]
        for r in read_jsonl(tmp_path / "out" / "data" / "general.hi.jsonl")
    )  # type: ignore[index]
    assert max(hi.values()) - min(hi.values()) <= 1  # whole passes over the 3 examples first
    english = manifest["english_general"]
    assert english["examples"] == round(0.25 * 50) and english["pool"] == 5
    assert {r["language"] for r in read_jsonl(tmp_path / "out" / "data" / "general.en.jsonl")} == {
        "en"
    }
    assert manifest["general_recipe"]["general_ratio"] == 0.5
    assert manifest["general_examples"] == manifest["examples"] - 50


def test_eval_files_are_the_heldout_pairs_every_run_is_scored_on(tmp_path: Path) -> None:
    mixture = read_mixture(make_mixture(tmp_path, budget=50))
    manifest = write(mixture, tmp_path / "out", direction=Direction.BOTH)
    assert manifest["eval"]["direction"] == "en-x"  # scored English -> X, as the sweep does
    for lang in mixture.codes:
        scored = heldout_examples(fake_pools("x", lang), HELDOUT, lang, Direction.BOTH)
        written = read_jsonl(tmp_path / "out" / "data" / f"eval.{lang}.jsonl")
        assert [(r["messages"][0]["content"], r["messages"][1]["content"]) for r in written] == [  # type: ignore[index]
            (e.prompt, e.response) for e in scored
        ]
        assert all("HELDOUT" in r["messages"][1]["content"] for r in written)  # type: ignore[index]
        train = (tmp_path / "out" / "data" / f"train.{lang}.jsonl").read_text(encoding="utf-8")
        assert "HELDOUT" not in train


def _records(folder: Path, relative: str) -> list[dict[str, Any]]:
    return read_jsonl(folder / relative)  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("data_format", "system"), [("chat", "Be brief."), ("alpaca", "Be brief."), ("alpaca", None)]
)
def test_llamafactory_config_by_shape(
    tmp_path: Path, data_format: str, system: str | None
) -> None:
    mixture = read_mixture(make_mixture(tmp_path, budget=50))
    out = tmp_path / "out"
    write(mixture, out, general=recipe(tmp_path), data_format=data_format, system_prompt=system)
    info = json.loads((out / "dataset_info.json").read_text(encoding="utf-8"))
    args = yaml.safe_load((out / "llamafactory.yaml").read_text(encoding="utf-8"))
    assert Path(args["dataset_dir"]) == out.resolve()
    assert args["mix_strategy"] == "concat" and args["eval_on_each_dataset"] is True
    train, evals = args["dataset"].split(","), args["eval_dataset"].split(",")
    assert set(train) | set(evals) == set(info)
    assert "muit_general_en" in train and "muit_eval_el" in evals and "muit_train_hi" in train
    for name, entry in info.items():
        records = _records(Path(args["dataset_dir"]), entry["file_name"])
        assert records
        if data_format == "chat":
            assert entry["formatting"] == "sharegpt"
            tags = entry["tags"]
            for r in records:
                roles = [m[tags["role_tag"]] for m in r[entry["columns"]["messages"]]]
                assert roles[-2:] == [tags["user_tag"], tags["assistant_tag"]]
                assert roles[0] == (tags["system_tag"] if system else tags["user_tag"])
        else:
            assert entry["formatting"] == "alpaca"
            assert ("system" in entry["columns"]) == bool(system)
            assert all(set(entry["columns"].values()) <= set(r) for r in records), name


@pytest.mark.parametrize("data_format", ["chat", "alpaca"])
def test_axolotl_config_by_shape(tmp_path: Path, data_format: str) -> None:
    mixture = read_mixture(make_mixture(tmp_path, budget=50))
    out = tmp_path / "out"
    manifest = write(mixture, out, general=recipe(tmp_path), data_format=data_format)
    config = yaml.safe_load((out / "axolotl.yaml").read_text(encoding="utf-8"))
    train = [f for f in manifest["files"] if f["split"] == "train"]
    evals = [f for f in manifest["files"] if f["split"] == "eval"]
    assert [Path(d["path"]) for d in config["datasets"]] == [
        out.resolve() / f["path"] for f in train
    ]
    assert [Path(d["path"]) for d in config["test_datasets"]] == [
        out.resolve() / f["path"] for f in evals
    ]
    assert config["shuffle_merged_datasets"] is True
    for entry in config["datasets"] + config["test_datasets"]:
        assert entry["ds_type"] == "json"
        records = read_jsonl(Path(entry["path"]))
        if data_format == "chat":
            assert entry["type"] == "chat_template"
            assert entry["roles_to_train"] == ["assistant"]
            messages = records[0][entry["field_messages"]]
            assert set(entry["message_property_mappings"].values()) <= set(messages[0])  # type: ignore[index]
        else:
            assert entry["type"] == "alpaca"
            assert {"instruction", "input", "output"} <= set(records[0])
    assert all(d["split"] == "train" for d in config["test_datasets"])


def test_a_saved_hf_dataset_folder_is_general_data(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    rows = [
        {"instruction": f"Task {i}", "input": "x" if i else "", "output": f"A {i}"}
        for i in range(4)
    ]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "general_el"))
    examples = read_general_examples(str(tmp_path / "general_{lang}"), "el")
    assert [e.prompt for e in examples] == ["Task 0", "Task 1\n\nx", "Task 2\n\nx", "Task 3\n\nx"]
    assert {e.kind for e in examples} == {"general"}
    datasets.Dataset.from_list([{"prompt": "p", "answer": "a"}]).save_to_disk(
        str(tmp_path / "bad_el")
    )
    with pytest.raises(DataError, match=r"bad_el\[row 0\]: expected .*'instruction' and 'output'"):
        read_general_examples(str(tmp_path / "bad_{lang}"), "el")


def _nothing_written(out: Path) -> bool:
    return not out.exists() or not any(out.iterdir())


def test_general_data_of_the_wrong_schema_is_refused_and_nothing_written(tmp_path: Path) -> None:
    mixture = read_mixture(make_mixture(tmp_path, budget=50))
    general = recipe(tmp_path)
    (tmp_path / "general" / "general_hi.jsonl").write_text('{"prompt": "p", "answer": "a"}\n')
    with pytest.raises(
        DataError,
        match=r"general_hi.jsonl:1: expected a JSON object with 'instruction' and 'output' "
        r"strings \(found \['answer', 'prompt'\]\); convert the general data to Alpaca",
    ):
        write(mixture, tmp_path / "out", general=general)
    assert _nothing_written(tmp_path / "out")


def test_a_language_without_general_data_is_refused_and_nothing_written(tmp_path: Path) -> None:
    mixture = read_mixture(make_mixture(tmp_path, budget=50))
    general = recipe(tmp_path)
    (tmp_path / "general" / "general_hi.jsonl").unlink()
    with pytest.raises(
        DataError,
        match=r"No general data for 'hi': .*general_hi.jsonl \(from data.general_data\) does not "
        r"exist; add that file .* or set data.general_ratio=0",
    ):
        write(mixture, tmp_path / "out", general=general)
    assert _nothing_written(tmp_path / "out")


def test_foreign_files_are_refused_and_a_rewrite_drops_stale_data_files(tmp_path: Path) -> None:
    mixture = read_mixture(make_mixture(tmp_path, budget=50))
    out = tmp_path / "out"
    write(mixture, out, general=recipe(tmp_path))
    assert (out / "data" / "general.en.jsonl").is_file()
    write(mixture, out)  # the same folder, now without general data
    assert sorted(p.name for p in (out / "data").iterdir()) == sorted(
        [f"train.{lang}.jsonl" for lang in mixture.codes]
        + [f"eval.{lang}.jsonl" for lang in mixture.codes]
    )
    (out / "data" / "mine.csv").write_text("x")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match=r"holds other files \(data/mine.csv\); give an empty"):
        write(mixture, out)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    # A README.md without a manifest beside it is the user's own, not an earlier set's card.
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "README.md").write_text("# my notes")
    with pytest.raises(ConfigError, match=r"holds other files \(README.md\)"):
        write(mixture, tmp_path / "mine")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (
            {"general_ratio": 0.5},
            r"data.general_ratio=0.5 asks for general data but "
            r"data.general_data is ''",
        ),
        (
            {"general_ratio_en": -1.0, "general_data_en": "en.jsonl"},
            r"general_ratio_en=-1.0 must be 0",
        ),
        ({"general_data": "alpaca.jsonl", "general_ratio": 0.5}, r"has no \{lang\}"),
    ],
)
def test_spec_refuses_a_general_recipe_it_cannot_follow(data: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        spec_from_dict({"data": {"languages": ["el", "hi"], **data}})


def test_write_data_command_trains_on_the_specs_general_recipe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """End to end through `plan-sweep write-data --spec`: a real JSONL corpus, the spec's
    general data, its held-out size and direction."""
    corpus = tmp_path / "{lang}.jsonl"
    for lang in ("el", "hi"):
        lines = [
            json.dumps({"en": f"This is test sentence number {i} here.", lang: f"{lang} {i}."})
            for i in range(60)
        ]
        Path(str(corpus).replace("{lang}", lang)).write_text("\n".join(lines) + "\n")
    general = recipe(tmp_path)
    spec = tmp_path / "spec.toml"
    spec.write_text(
        f"[data]\nsource = '{corpus}'\nlanguages = ['el', 'hi']\n"
        f"general_data = '{general.in_language}'\ngeneral_ratio = 0.5\n"
        f"general_data_en = '{general.english}'\ngeneral_ratio_en = 0.25\n"
        "[eval]\nheldout_size = 2\ngenerate_size = 0\n"
    )

    def point_at_corpus(raw: dict[str, Any]) -> None:
        for lang in ("el", "hi"):
            raw["languages"][lang].update(corpus=str(corpus), pair_filter=None, n_available=0)

    path = make_mixture(tmp_path)
    raw = json.loads(path.read_text())
    point_at_corpus(raw)
    path.write_text(json.dumps(raw))
    out = tmp_path / "out"
    argv = ["write-data", str(path), "--spec", str(spec), "--out", str(out)]
    assert cli.main(argv) == 0
    assert "general" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    planned = read_mixture(path).allocation("planner").examples
    assert manifest["general_examples"] == sum(round(0.5 * n) for n in planned.values()) + round(
        0.25 * sum(planned.values())
    )
    assert manifest["eval"]["heldout_size"] == 2
    assert all(len(read_jsonl(out / "data" / f"eval.{lang}.jsonl")) == 2 for lang in planned)
