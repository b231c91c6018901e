"""`plan-sweep`: look at the data, check the base model, and run sweeps."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from muit_core.cli import add_common_flags, run_main
from sweeps.corpus import (
    DEFAULT_HELDOUT_FRACTION,
    DEFAULT_MAX_WORDS,
    DEFAULT_MIN_WORDS,
    LIBREOFFICE_SOURCE,
    PairFilter,
    load_pools,
)
from sweeps.model import DEFAULT_MODEL

EPILOG = """\
examples:
  plan-sweep data --languages el,hi,tr,vi,zh-CN
  plan-sweep data --languages de --source libreoffice:/srv/libreoffice/usr/share/libreoffice/help
  plan-sweep data --languages sw --source corpora/{lang}.jsonl --format json
  plan-sweep model                      # load the embedded default model and score one batch
  plan-sweep model ./my-checkpoint
"""


def _split_languages(text: str) -> list[str]:
    return [code.strip() for code in text.split(",") if code.strip()]


def cmd_data(args: argparse.Namespace) -> int:
    """Print per-language pair counts (training and held-out pools) and two sample pairs."""
    pair_filter = PairFilter(args.min_words, args.max_words, args.heldout_fraction)
    rows: list[dict[str, Any]] = []
    for language in _split_languages(args.languages):
        pools = load_pools(args.source, language, pair_filter)
        samples = [{"en": p.en, pools.language: p.text} for p in pools.train[:2]]
        rows.append(
            {
                "language": pools.language,
                "aligned": pools.n_aligned,
                "translated": pools.n_translated,
                "in_length": pools.n_in_length,
                "unique": len(pools.train) + len(pools.heldout),
                "train": len(pools.train),
                "heldout": len(pools.heldout),
                "samples": samples,
            }
        )
    if args.format == "json":
        json.dump({"source": args.source, "languages": rows}, sys.stdout, ensure_ascii=False)
        print()
        return 0
    print(
        f"source: {args.source}; aligned = same file and paragraph id; translated = sides "
        f"differ; in-length = {args.min_words}-{args.max_words} English words; unique = "
        "distinct English sentences, split into train and held-out by a hash of the English"
    )
    columns = ("aligned", "translated", "in_length", "unique", "train", "heldout")
    print(f"{'language':<10}" + "".join(f"{c.replace('_', '-'):>12}" for c in columns))
    for row in rows:
        print(f"{row['language']:<10}" + "".join(f"{row[c]:>12}" for c in columns))
    for row in rows:
        print(f"\n[{row['language']}]")
        for sample in row["samples"]:
            print(f"  en: {sample['en']}")
            print(f"  {row['language']}: {sample[row['language']]}")
    return 0


def cmd_model(args: argparse.Namespace) -> int:
    """Load a base model, report how long it took, and score one sentence (a finite loss)."""
    import math

    import torch

    from sweeps.model import load_model

    started = time.perf_counter()
    model, tokenizer = load_model(args.name)
    load_s = time.perf_counter() - started
    batch = tokenizer(["LibreOffice is a free office suite."], return_tensors="pt")
    with torch.no_grad():
        loss = float(model(**batch, labels=batch["input_ids"]).loss)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {args.name}")
    print(f"layers: {model.config.num_hidden_layers}  parameters: {n_params / 1e6:.1f}M")
    print(f"load time: {load_s:.2f} s")
    print(f"loss on a sample sentence: {loss:.3f} nats/token")
    return 0 if math.isfinite(loss) else 1


def build_parser() -> argparse.ArgumentParser:
    """The `plan-sweep` argument parser."""
    parser = argparse.ArgumentParser(
        prog="plan-sweep",
        description=(
            "Fine-tune a base model per language at several translation-data sizes, score each "
            "run on held-out pairs, and record every run in a shared ledger."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_flags(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser(
        "data",
        help="per-language pair counts and samples",
        description=cmd_data.__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data.add_argument("--languages", required=True, help="comma-separated codes, e.g. el,hi")
    data.add_argument(
        "--source",
        default=LIBREOFFICE_SOURCE,
        help="'libreoffice' (default), 'libreoffice:HELP_DIR', or a .jsonl/.tsv/dataset path "
        "('{lang}' is replaced by the code)",
    )
    data.add_argument("--min-words", type=int, default=DEFAULT_MIN_WORDS, help="English words")
    data.add_argument("--max-words", type=int, default=DEFAULT_MAX_WORDS, help="English words")
    data.add_argument(
        "--heldout-fraction",
        type=float,
        default=DEFAULT_HELDOUT_FRACTION,
        help="share of distinct English sentences held out (default %(default)s)",
    )
    data.add_argument("--format", choices=("table", "json"), default="table")
    add_common_flags(data, subcommand=True)
    data.set_defaults(handler=cmd_data)

    model = commands.add_parser(
        "model",
        help="load a base model and score one batch",
        description=cmd_model.__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    model.add_argument(
        "name",
        nargs="?",
        default=DEFAULT_MODEL,
        help=f"{DEFAULT_MODEL!r} (default), 'tiny-random-llama', a folder, or a hub id",
    )
    add_common_flags(model, subcommand=True)
    model.set_defaults(handler=cmd_model)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `plan-sweep`."""
    parser = build_parser()
    return run_main(parser, lambda args: args.handler(args), argv)


if __name__ == "__main__":
    sys.exit(main())
