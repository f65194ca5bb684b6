"""Renderers of explanations: bar chart, attention heatmap, deletion curve, HTML and JSON.

``explanation.json`` is the source of truth; the PNGs and the HTML page are drawn from the same
:class:`~emorec.explain.core.Explanation` and :class:`~emorec.explain.faithfulness.DeletionCurve`
objects. Figures use an explicit Agg canvas (no pyplot, no global backend switch); every file is
written atomically.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import numpy as np

from emorec._io import atomic_path, atomic_write_json, atomic_write_text
from emorec.errors import ConfigError
from emorec.explain.core import Explanation, Segment
from emorec.explain.faithfulness import DeletionCurve

__all__ = [
    "ARTIFACTS",
    "plot_attention",
    "plot_deletion_curves",
    "plot_word_importance",
    "render_html",
    "write_explanation",
]

ARTIFACTS = {
    "json": "explanation.json",
    "word_importance": "word_importance.png",
    "attention_heatmap": "attention_heatmap.png",
    "deletion_curve": "deletion_curve.png",
    "html": "explanation.html",
}
# A one-step fall of the target probability by at least this much is shaded on the curve.
LARGE_DROP = 0.1
_DPI = 150
_POSITIVE, _NEGATIVE = (214, 39, 40), (31, 119, 180)  # red supports the target, blue opposes


def _figure(width: float, height: float, nrows: int = 1) -> tuple[Any, Any]:
    """A figure on an explicit Agg canvas and its (nrows,) axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, 1, squeeze=False)[:, 0]


def _save(fig: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=_DPI)
    return path


def _text(label: str) -> str:
    """Matplotlib text without mathtext: ``$5 and $6`` stays literal."""
    return label.replace("$", r"\$")


@lru_cache(maxsize=1)
def _drawable() -> frozenset[int]:
    """Code points the figures' font has glyphs for (DejaVu Sans: some emoji, not all)."""
    from matplotlib.font_manager import FontProperties, findfont
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(findfont(FontProperties())).get_charmap())


def _can_draw(text: str) -> bool:
    drawable = _drawable()
    return bool(text.strip()) and all(ord(c) in drawable or c.isspace() for c in text)


def _rewritten(segment: Segment) -> bool:
    """Whether cleaning did more to the segment than lowercase it."""
    return segment.text.casefold() != segment.clean.casefold()


def _segment_label(segment: Segment) -> str:
    """The user's word; its cleaned form in brackets where the font cannot draw it (🥰)."""
    return _text(segment.text if _can_draw(segment.text) else f"[{segment.clean}]")


def _title(explanation: Explanation) -> str:
    return _text(
        f"{explanation.method}: {explanation.target} (p = {explanation.target_probability:.3f})"
    )


def plot_word_importance(
    explanations: Sequence[Explanation], path: str | Path, max_words: int = 30
) -> Path:
    """Horizontal bars, one panel per explanation, the user's words (:meth:`~Explanation.
    segments`: ``:(`` rather than its cleaned ``sad``) in text order (the ``max_words``
    largest by |score| for longer texts)."""
    return _save(_word_importance_figure(explanations, max_words), Path(path))


def _word_importance_figure(explanations: Sequence[Explanation], max_words: int) -> Any:
    panels = []
    for e in explanations:
        segments = e.segments()
        scores = np.asarray([s.score for s in segments])
        top = np.sort(np.argsort(-np.abs(scores), kind="stable")[:max_words])
        panels.append([segments[i] for i in top])
    height = sum(0.28 * len(p) + 0.9 for p in panels)
    fig, axes = _figure(7.0, max(2.5, height), nrows=len(explanations))
    for ax, e, segments in zip(axes, explanations, panels, strict=True):
        scores = np.asarray([s.score for s in segments])
        colours = [np.array(_POSITIVE if s >= 0 else _NEGATIVE) / 255 for s in scores]
        ax.barh(np.arange(len(segments)), scores, color=colours)
        ax.set_yticks(np.arange(len(segments)), [_segment_label(s) for s in segments])
        ax.invert_yaxis()  # first word on top
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set(title=_title(e), xlabel="relevance")
    return fig


def plot_attention(
    explanation: Explanation,
    path: str | Path,
    layer: int | None = None,
    head: int | None = None,
) -> Path:
    """Token × token attention of ``layer`` and ``head`` (None: averaged over all of them)."""
    if explanation.attentions is None:
        raise ConfigError(
            "This explanation has no attention weights; explain with attentions=True."
        )
    weights = explanation.attentions  # (layers, heads, T, T)
    n_layers, n_heads = weights.shape[:2]
    if layer is not None and not -n_layers <= layer < n_layers:
        raise ConfigError(f"layer must be in [0, {n_layers}) or None; got {layer}.")
    if head is not None and not -n_heads <= head < n_heads:
        raise ConfigError(f"head must be in [0, {n_heads}) or None; got {head}.")
    per_layer = weights.mean(axis=0) if layer is None else weights[layer]  # (heads, T, T)
    matrix = per_layer.mean(axis=0) if head is None else per_layer[head]  # (T, T)
    tokens = _token_labels(explanation)
    side = max(4.0, 0.3 * len(tokens) + 2.0)
    fig, (ax,) = _figure(side + 1.0, side)
    image = ax.imshow(matrix, cmap="viridis", vmin=0.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ticks = np.arange(len(tokens))
    font = max(5.0, min(9.0, 240.0 / len(tokens)))
    ax.set_xticks(ticks, tokens, rotation=90, fontsize=font)
    ax.set_yticks(ticks, tokens, fontsize=font)
    where = f"layer {layer}" if layer is not None else f"mean of {n_layers} layers"
    which = f"head {head}" if head is not None else f"mean of {n_heads} heads"
    ax.set(title=f"Attention ({where}, {which})", xlabel="attended token", ylabel="query token")
    return _save(fig, Path(path))


def _token_labels(explanation: Explanation) -> list[str]:
    """The tokens, the first one of a word cleaning changed marked with the user's word
    (``sad ← :(``), so the heatmap reads against the text that was typed."""
    labels = [_text(t) for t in explanation.tokens]
    if not explanation.spans:
        return labels
    marked: set[int | None] = set()
    owner = {w: s for s in explanation.segments() for w in s.words}  # word → its segment
    for i, word in enumerate(explanation.token_words):
        if word is None or owner[word].start in marked:
            continue
        segment = owner[word]
        marked.add(segment.start)
        if _rewritten(segment) and _can_draw(segment.text):
            labels[i] = f"{labels[i]} ← {_text(segment.text)}"
    return labels


def plot_deletion_curves(
    curves: Sequence[DeletionCurve], path: str | Path, large_drop: float = LARGE_DROP
) -> Path:
    """Target probability vs share of words removed, one panel per curve.

    A red line marks the decision threshold where one decides (multi-label: the label's
    threshold; single-label decides by argmax, so none is drawn); steps where the
    most-important-first curve falls by at least ``large_drop`` are shaded.
    """
    return _save(_deletion_figure(curves, large_drop), Path(path))


def _deletion_figure(curves: Sequence[DeletionCurve], large_drop: float) -> Any:
    fig, axes = _figure(6.5, 3.6 * len(curves), nrows=len(curves))
    for ax, curve in zip(axes, curves, strict=True):
        x, most = np.asarray(curve.fractions), np.asarray(curve.most_first)
        for i in np.flatnonzero(most[:-1] - most[1:] >= large_drop):
            ax.axvspan(x[i], x[i + 1], color="tab:red", alpha=0.15, linewidth=0)
        ax.plot(
            x, most, marker="o", markersize=3, label=f"most important first (AOPC {curve.aopc:.3f})"
        )
        ax.plot(
            x,
            curve.least_first,
            marker="o",
            markersize=3,
            label=f"least important first (AOPC {curve.aopc_least_first:.3f})",
        )
        if curve.threshold is not None:
            ax.axhline(
                curve.threshold, color="red", linewidth=1.2, label=f"threshold {curve.threshold:g}"
            )
        ax.set(
            xlim=(0, 1),
            ylim=(0, 1.02),
            xlabel="share of words removed",
            ylabel=_text(f"p({curve.target})"),
            title=_text(
                f"Deletion test, {curve.method}: area between curves {curve.area_between:.3f}"
            ),
        )
        ax.legend(fontsize=8, loc="best")
    return fig


def _colour(score: float, scale: float) -> str:
    rgb = _POSITIVE if score >= 0 else _NEGATIVE
    alpha = min(1.0, abs(score) / scale) if scale > 0 else 0.0
    return f"rgba({rgb[0]}, {rgb[1]}, {rgb[2]}, {alpha:.3f})"


def _highlighted(e: Explanation) -> str:
    """HTML of the user's text, each segment in a span coloured by its score."""
    segments = e.segments()
    scale = max((abs(s.score) for s in segments), default=0.0)

    def span(segment: Segment) -> str:
        title = f"{segment.score:+.4f}"
        if _rewritten(segment):
            title += f" (read as: {segment.clean})"
        return (
            f'<span style="background:{_colour(segment.score, scale)}" '
            f'title="{html.escape(title)}">{html.escape(segment.text)}</span>'
        )

    if not e.spans:  # no alignment: the cleaned words, one after the other
        return " ".join(span(segment) for segment in segments)
    parts, position = [], 0
    for segment in segments:
        start, end = cast(int, segment.start), cast(int, segment.end)  # known with spans
        parts += [html.escape(e.text[position:start]), span(segment)]
        position = end
    parts.append(html.escape(e.text[position:]))
    return "".join(parts)


def render_html(
    explanations: Sequence[Explanation], curves: Sequence[DeletionCurve] | None = None
) -> str:
    """A standalone page: the user's text with each word's background coloured by its
    relevance (all text escaped). Words cleaning rewrote show as typed (``:(``), their
    cleaned form (``sad``) in the hover title."""
    sections = []
    for i, e in enumerate(explanations):
        words = _highlighted(e)
        facts = [f"p = {e.target_probability:.3f}", f"method: {html.escape(e.method)}"]
        if e.completeness_gap is not None:
            facts.append(f"completeness gap {e.completeness_gap:.3g}")
        if curves is not None:
            c = curves[i]
            facts.append(f"AOPC {c.aopc:.3f}, area between curves {c.area_between:.3f}")
        sections.append(
            f'<section><h2>{html.escape(e.target)}</h2><p class="facts">{"; ".join(facts)}</p>'
            f'<p class="words">{words}</p></section>'
        )
    text = html.escape(explanations[0].text) if explanations else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>emorec explanation</title><style>"
        "body{font-family:sans-serif;max-width:50em;margin:2em auto;line-height:1.6}"
        ".words span{padding:0.1em 0.2em;border-radius:0.2em}.facts{color:#555}"
        "</style></head><body><h1>Which words drive the emotion</h1>"
        f"<p>Text: <q>{text}</q></p>"
        "<p>Red supports the emotion, blue speaks against it; hover a word for its score.</p>"
        f"{''.join(sections)}</body></html>\n"
    )


def write_explanation(
    explanations: Sequence[Explanation],
    directory: str | Path,
    curves: Sequence[DeletionCurve] | None = None,
    *,
    layer: int | None = None,
    head: int | None = None,
) -> dict[str, Path]:
    """Write the artifacts of :data:`ARTIFACTS` into ``directory``; returns their paths.

    The heatmap needs attention weights and the deletion plot ``curves`` (one per
    explanation); without them those files are skipped.
    """
    if not explanations:
        raise ConfigError("write_explanation needs at least one explanation; got none.")
    if curves is not None and len(curves) != len(explanations):
        raise ConfigError(
            f"Give one deletion curve per explanation: {len(explanations)} explanations, "
            f"{len(curves)} curves."
        )
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / filename for name, filename in ARTIFACTS.items()}
    records = [
        {**e.to_dict(), "deletion_curve": None if curves is None else curves[i].to_dict()}
        for i, e in enumerate(explanations)
    ]
    atomic_write_json(paths["json"], {"explanations": records})
    plot_word_importance(explanations, paths["word_importance"])
    if explanations[0].attentions is not None:
        plot_attention(explanations[0], paths["attention_heatmap"], layer, head)
    else:
        del paths["attention_heatmap"]
    if curves is not None:
        plot_deletion_curves(curves, paths["deletion_curve"])
    else:
        del paths["deletion_curve"]
    atomic_write_text(paths["html"], render_html(explanations, curves))
    return paths
