"""Explanations: which words drive each emotion, and how faithful the explanation is.

>>> from emorec.inference import EmotionClassifier
>>> from emorec.explain import deletion_curve, write_explanation
>>> clf = EmotionClassifier.from_pretrained("models/dair-emotion", backend="torch")
>>> (e,) = clf.explain("i feel so alone tonight", method="lrp")
>>> e.target, e.top(3)
('sadness', [('alone', 2.1), ...])
>>> curve = deletion_curve(clf, e)          # AOPC of removing words most-important first
>>> write_explanation([e], "out", [curve])  # JSON, bar chart, heatmap, curve, HTML

Methods (:data:`METHODS`): ``grad_x_input``, ``integrated_gradients`` (Captum, optional
dependency), ``lrp`` (conservative propagation, Ali et al. 2022), ``attention`` (rollout),
``attention_raw`` and the ``random`` baseline. See :mod:`emorec.explain.core`,
:mod:`emorec.explain.conservative`, :mod:`emorec.explain.faithfulness` and
:mod:`emorec.explain.render`.
"""

from emorec.explain.conservative import conservative_backward
from emorec.explain.core import (
    BASELINES,
    METHODS,
    Explanation,
    Segment,
    attention_rollout,
    encode_words,
    explain,
)
from emorec.explain.faithfulness import DeletionCurve, deletion_curve
from emorec.explain.render import (
    ARTIFACTS,
    plot_attention,
    plot_deletion_curves,
    plot_word_importance,
    render_html,
    write_explanation,
)

__all__ = [
    "ARTIFACTS",
    "BASELINES",
    "METHODS",
    "DeletionCurve",
    "Explanation",
    "Segment",
    "attention_rollout",
    "conservative_backward",
    "deletion_curve",
    "encode_words",
    "explain",
    "plot_attention",
    "plot_deletion_curves",
    "plot_word_importance",
    "render_html",
    "write_explanation",
]
