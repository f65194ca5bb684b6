"""Word-level attributions for an :class:`~emorec.inference.EmotionClassifier`.

Every method scores the tokens of the cleaned text for one target emotion; sub-token scores are
summed back to the whitespace-separated words of ``classifier.clean(text)`` (special tokens
left out). Gradient methods work on ``inputs_embeds``, the output of the word-embedding table;
position and token-type embeddings stay inside the model. The attributed quantity is the target
*logit* (additive, so completeness is meaningful); the reported probabilities are the calibrated
ones the classifier decides with.

* ``grad_x_input``: ∂logit/∂e · e, summed over the hidden dimension.
* ``integrated_gradients``: Captum's IG from a baseline (``[PAD]``/``[MASK]`` embeddings or zeros
  at the word positions, special tokens kept) in ``n_steps`` steps; ``completeness_gap`` is
  |Σ attributions − (f(x) − f(baseline))|.
* ``lrp``: gradient × input under :func:`~emorec.explain.conservative.conservative_backward`
  (attention weights and LayerNorm normalisers constant; Ali et al. 2022).
* ``attention``: attention rollout (Abnar & Zuidema 2020) from the first token;
  ``attention_raw``: the last layer's first-token attention, averaged over heads. Neither
  depends on the target.
* ``random``: seeded random scores, the baseline of the faithfulness test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from emorec.errors import ConfigError, MissingDependencyError
from emorec.explain.conservative import (
    check_conservative_calls,
    conservative_backward,
    eager_attention,
)
from emorec.explain.words import EncodedWords, ExplainableClassifier, _word_scores, encode_words
from emorec.text import check_text

__all__ = [
    "BASELINES",
    "METHODS",
    "Explanation",
    "Segment",
    "attention_rollout",
    "encode_words",
    "explain",
]

Method = Literal[
    "grad_x_input", "integrated_gradients", "lrp", "attention", "attention_raw", "random"
]
Baseline = Literal["pad", "mask", "zeros"]
METHODS: tuple[str, ...] = (
    "grad_x_input",
    "integrated_gradients",
    "lrp",
    "attention",
    "attention_raw",
    "random",
)
BASELINES: tuple[str, ...] = ("pad", "mask", "zeros")
GRADIENT_METHODS = ("grad_x_input", "lrp")
CAPTUM_INSTALL_HINT = 'pip install "emorec[explain]" (or: pip install captum)'
# Interpolation points per IG forward pass: bounds memory for long texts and many steps.
_IG_BATCH = 64


@dataclass(frozen=True)
class Segment:
    """One word of the user's text and the summed score of the cleaned words made from it.

    ``text`` is the user's substring (``':('``, ``'😍'``, ``'loooove'``) at code-point offsets
    ``start:end`` of :attr:`Explanation.text` (None when the explanation has no spans);
    ``words`` are the indices of the cleaned words it covers and ``clean`` those words
    (``'sad'``, ``'smiling face with heart-eyes'``, ``'love'``).
    """

    text: str
    start: int | None
    end: int | None
    score: float
    words: tuple[int, ...]
    clean: str


@dataclass
class Explanation:
    """Which words of one text drive one emotion.

    ``words`` are the whitespace-separated words of ``clean_text`` (what the model saw) and
    ``scores`` one relevance per word (positive: supports ``target``); words past the model's
    ``max_length`` tokens were cut and score 0. ``probabilities`` are the calibrated
    probabilities of every label. ``tokens`` / ``token_words`` / ``token_scores`` give the
    sub-token view (``token_words[i]`` is the word of token i, None for special tokens);
    ``attentions`` (layers, heads, T, T) are the model's attention weights over ``tokens``.
    ``completeness_gap`` is set by ``integrated_gradients`` only.

    ``spans[i]`` is the part of the user's ``text`` that word i was cleaned from, as
    ``(start, end)`` code-point offsets (Python ``str`` indices, end exclusive):
    ``text[slice(*spans[i])]`` is ``sources[i]`` (``':('`` for the word ``'sad'``,
    ``'loooove'`` for ``'love'``). Several words can share one span (an emoji's name, an
    expanded abbreviation); :meth:`segments` merges them into the user's words. Empty when
    unknown (an Explanation built by hand): the words stand for themselves.
    """

    text: str
    clean_text: str
    words: list[str]
    scores: list[float]
    target: str
    target_index: int
    probabilities: dict[str, float]
    method: str
    completeness_gap: float | None = None
    tokens: list[str] = field(default_factory=list)
    token_words: list[int | None] = field(default_factory=list)
    token_scores: list[float] = field(default_factory=list)
    attentions: np.ndarray | None = field(default=None, repr=False)
    spans: list[tuple[int, int]] = field(default_factory=list)

    @property
    def target_probability(self) -> float:
        return self.probabilities[self.target]

    @property
    def sources(self) -> list[str]:
        """For each word, the substring of ``text`` it was cleaned from (the word when unknown)."""
        if not self.spans:
            return list(self.words)
        return [self.text[start:end] for start, end in self.spans]

    def segments(self) -> list[Segment]:
        """The user's words: runs of words cleaned from overlapping parts of ``text`` merged,
        their scores summed (scores are additive, as sub-token scores are summed to words).

        ``'so nervous :('`` cleaned to ``'so nervous sad'`` gives segments ``so``,
        ``nervous`` and ``:(``; an emoji whose name is four words is one segment.
        """
        if not self.spans:
            return [
                Segment(word, None, None, score, (i,), word)
                for i, (word, score) in enumerate(zip(self.words, self.scores, strict=True))
            ]
        groups: list[list[int]] = []
        end = -1
        for i, (start, stop) in enumerate(self.spans):
            if groups and start < end:
                groups[-1].append(i)
                end = max(end, stop)
            else:
                groups.append([i])
                end = stop
        segments = []
        for group in groups:
            start = min(self.spans[i][0] for i in group)
            stop = max(self.spans[i][1] for i in group)
            segments.append(
                Segment(
                    text=self.text[start:stop],
                    start=start,
                    end=stop,
                    score=float(sum(self.scores[i] for i in group)),
                    words=tuple(group),
                    clean=" ".join(self.words[i] for i in group),
                )
            )
        return segments

    def top(self, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` highest-scoring words of the user's text (:meth:`segments`), highest first."""
        segments = self.segments()
        order = np.argsort(
            -np.asarray([s.score for s in segments], dtype=np.float64), kind="stable"
        )
        return [(segments[i].text, segments[i].score) for i in order[:k]]

    def to_dict(self, attentions: bool = False) -> dict[str, Any]:
        """JSON-ready fields; the attention tensor only when ``attentions`` is true."""
        data = {
            "text": self.text,
            "clean_text": self.clean_text,
            "method": self.method,
            "target": self.target,
            "target_index": self.target_index,
            "target_probability": self.target_probability,
            "probabilities": self.probabilities,
            "words": self.words,
            "scores": self.scores,
            "spans": [list(span) for span in self.spans],
            "sources": self.sources,
            "segments": [dataclasses.asdict(segment) for segment in self.segments()],
            "completeness_gap": self.completeness_gap,
            "tokens": self.tokens,
            "token_words": self.token_words,
            "token_scores": self.token_scores,
        }
        if attentions and self.attentions is not None:
            data["attentions"] = self.attentions.tolist()
        return data


# ---- the methods -----------------------------------------------------------------------------
def attention_rollout(attentions: np.ndarray) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020): (layers, heads, T, T) → (T, T).

    Heads are averaged, the residual connection added as ½(A + I) with rows renormalised, and
    the layers multiplied from the first up: row i says how much each input token flows into
    position i of the last layer.
    """
    mixed = 0.5 * attentions.mean(axis=1) + 0.5 * np.eye(attentions.shape[-1])  # (L, T, T)
    mixed /= mixed.sum(axis=-1, keepdims=True)
    rollout = mixed[0]
    for layer in mixed[1:]:
        rollout = layer @ rollout
    return rollout


def _import_captum() -> Any:
    try:
        from captum.attr import IntegratedGradients
    except ImportError:
        raise MissingDependencyError(
            f"method='integrated_gradients' needs Captum, which is not installed: "
            f"{CAPTUM_INSTALL_HINT}."
        ) from None
    return IntegratedGradients


def _baseline_embeddings(
    classifier: ExplainableClassifier,
    embedding: torch.nn.Module,
    ids: torch.Tensor,
    token_words: list[int | None],
    baseline: str,
) -> torch.Tensor:
    """IG baseline (1, T, H): word positions set to [PAD]/[MASK] embeddings or zeros."""
    words = torch.tensor([w is not None for w in token_words], device=ids.device)
    if baseline == "zeros":
        base = embedding(ids).detach().clone()
        base[0, words] = 0.0
        return base
    token_id = getattr(classifier.tokenizer, f"{baseline}_token_id", None)
    if token_id is None:
        raise ConfigError(
            f"baseline={baseline!r} needs a {baseline} token, which this tokenizer lacks; "
            "use baseline='zeros'."
        )
    base_ids = ids.clone()
    base_ids[0, words] = token_id
    return embedding(base_ids).detach()


def _targets(
    classifier: ExplainableClassifier, logits: np.ndarray, target: str | Sequence[str] | None
) -> list[int]:
    """Label indices to explain: the given ones, else the calibrated decision."""
    space = classifier.label_space
    if target is None:
        # A multi-label text no threshold passes is explained for its most probable label.
        decided = classifier.calibration.decide_at_least_one(logits)[0]
        return space.task.decided_indices(decided)
    names = [target] if isinstance(target, str) else list(target)
    unknown = [name for name in names if name not in space.label2id]
    if unknown or not names:
        raise ConfigError(
            f"target must be one or more labels of this model {list(space.names)}; got {target!r}."
        )
    return [space.label2id[name] for name in dict.fromkeys(names)]


def _check_options(method: str, n_steps: int, baseline: str) -> None:
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}; got {method!r}.")
    if baseline not in BASELINES:
        raise ConfigError(f"baseline must be one of {', '.join(BASELINES)}; got {baseline!r}.")
    if not isinstance(n_steps, int) or isinstance(n_steps, bool) or n_steps < 1:
        raise ConfigError(f"n_steps must be a positive integer; got {n_steps!r}.")


def _torch_model(classifier: ExplainableClassifier) -> torch.nn.Module:
    if classifier.model is None:
        raise ConfigError(
            f"Explanations need the PyTorch model, but this classifier runs "
            f"{classifier.backend.name}. Load it with "
            "EmotionClassifier.from_pretrained(path, backend='torch')."
        )
    return classifier.model


def explain(
    classifier: ExplainableClassifier,
    text: str,
    method: Method | str = "lrp",
    target: str | Sequence[str] | None = None,
    *,
    n_steps: int = 50,
    baseline: Baseline | str = "pad",
    seed: int = 0,
    attentions: bool = True,
) -> list[Explanation]:
    """Explain ``text``: one :class:`Explanation` per target emotion, in target order.

    ``method`` is one of :data:`METHODS`. ``target``: a label name or several; default the
    calibrated decision (single-label: the predicted label; multi-label: every predicted label,
    or the most probable one when none passes its threshold). ``n_steps`` and ``baseline``
    (``pad``, ``mask`` or ``zeros``) configure ``integrated_gradients``; ``seed`` the
    ``random`` baseline; ``attentions`` keeps the attention weights for the heatmap. Needs the
    PyTorch backend; long texts are truncated to ``max_length`` tokens.
    """
    _check_options(method, n_steps, baseline)
    model = _torch_model(classifier)
    check_text(text)  # the same rule as predict: a str with words, no lone surrogate
    clean_text = classifier.clean([text])[0]
    # Where each cleaned word came from in the user's text ('sad' from ':(', 'love' from
    # 'loooove'), so that plots and highlights show the user's words.
    aligned = classifier.cleaner.align(text)
    if aligned.text != clean_text:
        raise RuntimeError(
            "TextCleaner.align and TextCleaner.clean disagree on this text "
            f"({aligned.text!r} vs {clean_text!r}); please report this as a bug in emorec.text."
        )
    encoded = encode_words(classifier, clean_text)
    device = next(model.parameters()).device
    inputs = {name: torch.from_numpy(ids).to(device) for name, ids in encoded.inputs.items()}
    extra = {name: ids for name, ids in inputs.items() if name != "input_ids"}
    embedding = model.get_input_embeddings()
    gradient = method in GRADIENT_METHODS
    need_weights = attentions or method in ("attention", "attention_raw")

    def forward(embeds: torch.Tensor, output_attentions: bool = False) -> Any:
        # Captum calls this with a batch of interpolated inputs: widen the masks to match.
        rows = embeds.shape[0]
        batch = {name: ids.expand(rows, -1) for name, ids in extra.items()}
        return model(inputs_embeds=embeds, output_attentions=output_attentions, **batch)

    with ExitStack() as stack:
        calls = stack.enter_context(conservative_backward(model)) if method == "lrp" else None
        if calls is None and need_weights:
            stack.enter_context(eager_attention(model))  # eager: the only one returning weights
        embeds = embedding(inputs["input_ids"]).detach().requires_grad_(gradient)  # (1, T, H)
        with torch.set_grad_enabled(gradient):
            output = forward(embeds, output_attentions=need_weights)
        if calls is not None:
            check_conservative_calls(model, calls)
        logits = output.logits  # (1, C)
        logits_np = logits.detach().float().cpu().numpy()
        probs = classifier.calibration.probabilities(logits_np)[0]
        weights = None
        if output.attentions:  # layers × (1, heads, T, T) → (layers, heads, T, T)
            weights = torch.cat([a.detach() for a in output.attentions]).float().cpu().numpy()
        targets = _targets(classifier, logits_np, target)

        label_probs = {
            name: float(p) for name, p in zip(classifier.label_space.names, probs, strict=True)
        }
        results = []
        for k, index in enumerate(targets):
            gap = None
            if gradient:
                (grad,) = torch.autograd.grad(
                    logits[0, index], embeds, retain_graph=k < len(targets) - 1
                )
                token_scores = (grad * embeds).sum(-1)[0].detach().cpu().numpy()  # (T,)
            elif method == "integrated_gradients":
                token_scores, gap = _integrated_gradients(
                    classifier,
                    forward,
                    embedding,
                    inputs["input_ids"],
                    encoded,
                    index,
                    n_steps,
                    baseline,
                )
            elif method == "random":
                token_scores = _random_scores(encoded, seed)
            else:
                token_scores = _attention_scores(method, weights, model)
            words = _word_scores(token_scores, encoded.token_words, len(encoded.words))
            results.append(
                Explanation(
                    text=text,
                    clean_text=clean_text,
                    words=encoded.words,
                    scores=[float(s) for s in words],
                    target=classifier.label_space.names[index],
                    target_index=index,
                    probabilities=label_probs,
                    method=method,
                    completeness_gap=gap,
                    tokens=encoded.tokens,
                    token_words=encoded.token_words,
                    token_scores=[float(s) for s in token_scores],
                    attentions=weights if attentions else None,
                    spans=aligned.word_spans(),
                )
            )
    return results


def _attention_scores(
    method: str, weights: np.ndarray | None, model: torch.nn.Module
) -> np.ndarray:
    """First-token attention (T,): rollout (``attention``) or the last layer (``attention_raw``)."""
    if weights is None:
        raise ConfigError(
            f"method={method!r} needs attention weights, which {type(model).__name__} did not "
            "return; use method='grad_x_input'."
        )
    if method == "attention":
        return attention_rollout(weights)[0]
    return weights[-1].mean(axis=0)[0]  # (heads, T, T) → first query row, mean over heads


def _random_scores(encoded: EncodedWords, seed: int) -> np.ndarray:
    """Seeded uniform scores per word, split evenly over the word's tokens: (T,)."""
    per_word = np.random.default_rng(seed).random(len(encoded.words))
    tokens_per_word = np.bincount(
        [w for w in encoded.token_words if w is not None], minlength=len(per_word)
    )
    return np.array(
        [0.0 if w is None else per_word[w] / tokens_per_word[w] for w in encoded.token_words]
    )


def _integrated_gradients(
    classifier: ExplainableClassifier,
    forward: Any,
    embedding: torch.nn.Module,
    ids: torch.Tensor,
    encoded: EncodedWords,
    index: int,
    n_steps: int,
    baseline: str,
) -> tuple[np.ndarray, float]:
    """Token attributions (T,) of the ``index`` logit and the completeness gap."""
    integrated_gradients = _import_captum()
    inputs = embedding(ids).detach()  # (1, T, H)
    base = _baseline_embeddings(classifier, embedding, ids, encoded.token_words, baseline)
    attributions, delta = integrated_gradients(lambda e: forward(e).logits).attribute(
        inputs,
        baselines=base,
        target=index,
        n_steps=n_steps,
        internal_batch_size=_IG_BATCH,
        return_convergence_delta=True,
    )
    token_scores = attributions.sum(-1)[0].detach().float().cpu().numpy()  # (T,)
    return token_scores, float(delta.abs().max())
