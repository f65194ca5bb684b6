"""The ``emorec`` command line: thin shells over the Python API.

One module per command group (`data`, `train`, `evaluate`, `predict`, `export`, `serve`), all
built on `_common`; this module only assembles them into ``app``, in the order `--help` lists.
"""

from __future__ import annotations

import logging
import os
from typing import Annotated

import typer

from emorec.cli import data, evaluate, export, predict, serve, train
from emorec.cli._common import (
    AggregateChoice,
    BackendChoice,
    DecisionChoice,
    FormatChoice,
    LongTextChoice,
    MethodChoice,
    PrecisionChoice,
    QuantizeChoice,
    SplitChoice,
    make_app,
)

# Under its former name for the callers that wrap a function of their own in it (a test does).
from emorec.cli._common import friendly_errors as _friendly_errors  # noqa: F401

__all__ = [
    "AggregateChoice",
    "BackendChoice",
    "DecisionChoice",
    "FormatChoice",
    "LongTextChoice",
    "MethodChoice",
    "PrecisionChoice",
    "QuantizeChoice",
    "SplitChoice",
    "app",
]

app = make_app(
    name="emorec",
    help="Text emotion recognition: prepare, train, calibrate, evaluate and predict.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _setup(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s")
    # Quiet the libraries' informational chatter; progress bars stay on.
    for name in ("transformers", "datasets", "httpx", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


app.command()(data.prepare)
app.command()(train.train)
app.command()(train.calibrate)
app.command()(evaluate.evaluate)
app.command()(train.run)
app.command()(train.tune)
app.command()(predict.predict)
app.command()(export.export)
app.command()(predict.explain)
app.command()(export.push)
app.command("setup-wordnet")(data.setup_wordnet)
app.command()(serve.serve)
app.command()(serve.worker)

apikey_app = make_app(help="Create, list and revoke API keys of the service.")
apikey_app.command("create")(serve.apikey_create)
apikey_app.command("list")(serve.apikey_list)
apikey_app.command("revoke")(serve.apikey_revoke)
app.add_typer(apikey_app, name="apikey")
