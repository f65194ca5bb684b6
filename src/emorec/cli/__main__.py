"""``python -m emorec.cli``: the same command line as the ``emorec`` entry point."""

from emorec.cli import app

app()
