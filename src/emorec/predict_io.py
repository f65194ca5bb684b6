"""The former name of :mod:`emorec.inference.files`, kept so that imports keep working."""

from emorec.inference.files import (  # noqa: F401
    INPUT_FORMATS,
    OUTPUT_FORMATS,
    AnnotatedWriter,
    annotate_row,
    check_input,
    iter_rows,
    predict_file,
    predict_rows,
)
