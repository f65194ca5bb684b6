"""Explanations on tiny random BERTs: word-level scores, conservative LRP, IG, deletion, files."""

from __future__ import annotations

import html
import json
import math
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from emorec.calibration import Calibration
from emorec.cli import app
from emorec.errors import ConfigError, DataError, MissingDependencyError
from emorec.explain import (
    ARTIFACTS,
    METHODS,
    Explanation,
    conservative_backward,
    deletion_curve,
    render_html,
    write_explanation,
)
from emorec.explain.conservative import conservative_attention, conservative_layer_norm
from emorec.inference import EmotionClassifier
from emorec.labels import LabelSpace

from .conftest import LABELS

TEXT = "I'm sooo unbelievably happy today :) @bob"


def _bert(tokenizer, num_labels: int = len(LABELS), seed: int = 0) -> nn.Module:
    """A 2-layer BERT with larger random weights than the default, so attention is peaked."""
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=num_labels,
        initializer_range=0.2,
    )
    torch.manual_seed(seed)
    return BertForSequenceClassification(config).eval()


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


@pytest.fixture(scope="module")
def classifier(tokenizer) -> EmotionClassifier:
    return EmotionClassifier(_bert(tokenizer), tokenizer, LabelSpace(tuple(LABELS)), max_length=32)


def _multi_label(tokenizer, thresholds: list[float] | None = None) -> EmotionClassifier:
    space = LabelSpace(tuple(LABELS), multi_label=True)
    calibration = Calibration(multi_label=True, thresholds=thresholds)
    return EmotionClassifier(_bert(tokenizer), tokenizer, space, calibration=calibration)


# ---- word-level attributions -----------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_every_method_gives_one_score_per_word(classifier: EmotionClassifier, method: str) -> None:
    (e,) = classifier.explain(TEXT, method, n_steps=16)
    clean = classifier.clean([TEXT])[0]
    assert e.clean_text == clean and e.words == clean.split()
    assert len(e.scores) == len(e.words) and all(math.isfinite(s) for s in e.scores)
    assert e.method == method and e.target == classifier.predict(TEXT).label
    probs = classifier.predict_proba(TEXT)
    np.testing.assert_allclose([e.probabilities[n] for n in LABELS], probs, atol=1e-5)
    # Word scores are the sums of their sub-token scores; special tokens belong to no word.
    merged = np.zeros(len(e.words))
    for score, word in zip(e.token_scores, e.token_words, strict=True):
        if word is not None:
            merged[word] += score
    np.testing.assert_allclose(merged, e.scores, atol=1e-6)
    assert e.token_words[0] is None and e.token_words[-1] is None  # [CLS], [SEP]
    assert e.attentions is not None and e.attentions.shape[:2] == (2, 2)
    json.dumps(e.to_dict())


def test_sub_tokens_are_merged_back_to_words(classifier: EmotionClassifier) -> None:
    (e,) = classifier.explain("unbelievably happy", "grad_x_input")
    assert e.words == ["unbelievably", "happy"]
    pieces = [t for t, w in zip(e.tokens, e.token_words, strict=True) if w == 0]
    assert len(pieces) > 1 and "".join(p.removeprefix("##") for p in pieces) == "unbelievably"
    assert e.top(1)[0][1] == max(e.scores)


def test_targets_and_option_errors(classifier: EmotionClassifier) -> None:
    (anger,) = classifier.explain(TEXT, "grad_x_input", target="anger")
    assert (anger.target, anger.target_index) == ("anger", LABELS.index("anger"))
    both = classifier.explain(TEXT, "grad_x_input", target=["fear", "anger"])
    assert [e.target for e in both] == ["fear", "anger"]
    assert not np.allclose(both[0].scores, both[1].scores)
    (lean,) = classifier.explain(TEXT, "lrp", attentions=False)
    assert lean.attentions is None and "attentions" not in lean.to_dict(attentions=True)
    first, again = (classifier.explain(TEXT, "random", seed=3)[0] for _ in range(2))
    assert first.scores == again.scores
    (masked,) = classifier.explain(TEXT, "integrated_gradients", n_steps=4, baseline="mask")
    assert masked.completeness_gap is not None
    with pytest.raises(ConfigError, match="target must be one or more labels"):
        classifier.explain(TEXT, target="love")
    with pytest.raises(ConfigError, match="method must be one of"):
        classifier.explain(TEXT, method="shap")
    with pytest.raises(ConfigError, match="n_steps"):
        classifier.explain(TEXT, "integrated_gradients", n_steps=0)
    with pytest.raises(ConfigError, match="baseline"):
        classifier.explain(TEXT, "integrated_gradients", baseline="noise")
    with pytest.raises(DataError, match="empty after cleaning"):
        classifier.explain("@bob http://x.co")


def test_explain_needs_the_torch_backend(classifier: EmotionClassifier) -> None:
    onnx_like = EmotionClassifier(
        None,
        classifier.tokenizer,
        classifier.label_space,
        backend=classifier.backend,  # any backend without a PyTorch module
    )
    with pytest.raises(ConfigError, match="backend='torch'"):
        onnx_like.explain(TEXT)


# ---- integrated gradients ----------------------------------------------------------------------
def test_integrated_gradients_completeness(classifier: EmotionClassifier) -> None:
    (e,) = classifier.explain(TEXT, "integrated_gradients", n_steps=200, baseline="pad")
    # Independent check: attributions sum to f(x) − f(baseline) for the target logit.
    ids = torch.tensor([classifier.tokenizer(e.clean_text)["input_ids"]])
    words = torch.tensor([w is not None for w in e.token_words])
    base = ids.clone()
    base[0, words] = classifier.tokenizer.pad_token_id
    with torch.no_grad():
        f_x, f_base = classifier.model(input_ids=torch.cat([ids, base])).logits[:, e.target_index]
    difference = float(f_x - f_base)
    assert abs(sum(e.token_scores) - difference) < 1e-3
    assert e.completeness_gap is not None and e.completeness_gap < 1e-3
    (coarse,) = classifier.explain(TEXT, "integrated_gradients", n_steps=2, baseline="zeros")
    assert coarse.completeness_gap is not None and coarse.completeness_gap > e.completeness_gap


def test_missing_captum_gives_an_install_hint(
    classifier: EmotionClassifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "captum.attr", None)  # makes the import fail
    with pytest.raises(MissingDependencyError, match="pip install"):
        classifier.explain(TEXT, "integrated_gradients")


# ---- conservative LRP --------------------------------------------------------------------------
def test_conservative_layer_norm_matches_hand_computation() -> None:
    norm = nn.LayerNorm(3, eps=0.0)
    x = torch.tensor([1.0, 2.0, 4.0], requires_grad=True)
    # mean 7/3, variance ((4/3)² + (1/3)² + (5/3)²) / 3 = 14/9, y0 = (1 − 7/3) / std.
    std = math.sqrt(14 / 9)
    y = conservative_layer_norm(norm, x)
    torch.testing.assert_close(y, norm(x))  # same forward value
    (grad,) = torch.autograd.grad(y[0], x)
    # std constant: ∂y0/∂x = (e0 − 1/3) / std.
    torch.testing.assert_close(grad, torch.tensor([2 / 3, -1 / 3, -1 / 3]) / std)
    # Conservation: Σ grad·x = y0 = −4 / (3 std); plain LayerNorm is scale-invariant: Σ = 0.
    assert float((grad * x).sum().detach()) == pytest.approx(-4 / (3 * std), abs=1e-6)
    (plain,) = torch.autograd.grad(norm(x)[0], x)
    assert float((plain * x).sum().detach()) == pytest.approx(0.0, abs=1e-6)


def test_conservative_attention_matches_hand_computation() -> None:
    from transformers import BertConfig
    from transformers.models.bert.modeling_bert import BertSelfAttention, eager_attention_forward

    module = BertSelfAttention(BertConfig(hidden_size=4, num_attention_heads=1)).eval()
    # One head, two tokens, head size 1: q0·k = [0, 1] → A0 = softmax([0, 1]) = [a, b].
    q = torch.tensor([1.0, 0.0]).view(1, 1, 2, 1).requires_grad_(True)
    k = torch.tensor([0.0, 1.0]).view(1, 1, 2, 1).requires_grad_(True)
    v = torch.tensor([2.0, 4.0]).view(1, 1, 2, 1).requires_grad_(True)
    a, b = 1 / (1 + math.e), math.e / (1 + math.e)
    out, weights = conservative_attention(module, q, k, v, None, scaling=1.0, dropout=0.0)
    assert out.shape == (1, 2, 1, 1)  # (B, T, heads, d)
    assert float(out[0, 0, 0, 0].detach()) == pytest.approx(2 * a + 4 * b)
    torch.testing.assert_close(weights[0, 0, 0], torch.tensor([a, b]))
    dq, dk, dv = torch.autograd.grad(out[0, 0, 0, 0], (q, k, v), allow_unused=True)
    # A constant: o0 = a v0 + b v1 is linear in v, and q, k are cut off from the output.
    torch.testing.assert_close(dv.flatten(), torch.tensor([a, b]))
    assert dq is None and dk is None
    # Plain softmax attention: ∂o0/∂q0 = Σ_j A0j (v_j − o0) k_j = b (4 − o0) = 2ab.
    plain, _ = eager_attention_forward(module, q, k, v, None, scaling=1.0)
    (dq_plain,) = torch.autograd.grad(plain[0, 0, 0, 0], q)
    assert float(dq_plain.flatten()[0]) == pytest.approx(2 * a * b, rel=1e-5)


def test_lrp_on_a_model_changes_gradients_only_and_restores(
    classifier: EmotionClassifier,
) -> None:
    model = classifier.model
    implementation = model.config._attn_implementation
    ids = torch.tensor([classifier.tokenizer(TEXT.lower())["input_ids"]])

    def logits_and_grad() -> tuple[torch.Tensor, torch.Tensor]:
        embeds = model.get_input_embeddings()(ids).detach().requires_grad_(True)
        logits = model(inputs_embeds=embeds).logits
        (grad,) = torch.autograd.grad(logits[0, 1], embeds)
        return logits.detach(), grad

    plain_logits, plain_grad = logits_and_grad()
    with conservative_backward(model) as calls:
        lrp_logits, lrp_grad = logits_and_grad()
        assert calls.count == model.config.num_hidden_layers and not calls.mismatch
    torch.testing.assert_close(lrp_logits, plain_logits, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(lrp_grad, plain_grad, atol=1e-4)
    # Restored: attention implementation and the LayerNorm forwards.
    assert model.config._attn_implementation == implementation
    norms = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
    assert norms and all("forward" not in m.__dict__ for m in norms)
    with pytest.raises(RuntimeError, match="boom"), conservative_backward(model):
        raise RuntimeError("boom")
    assert model.config._attn_implementation == implementation
    assert all("forward" not in m.__dict__ for m in norms)

    (lrp,) = classifier.explain(TEXT, "lrp")
    (gxi,) = classifier.explain(TEXT, "grad_x_input")
    assert lrp.target == gxi.target and not np.allclose(lrp.scores, gxi.scores, atol=1e-4)


class _ToyClassifier(nn.Module):
    """Not a transformers model: no attention interface to make conservative."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.embeddings = nn.Embedding(vocab_size, 8)
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, len(LABELS))

    def get_input_embeddings(self) -> nn.Module:
        return self.embeddings

    def forward(self, input_ids=None, inputs_embeds=None, output_attentions=None, **_):
        from transformers.modeling_outputs import SequenceClassifierOutput

        embeds = self.embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        return SequenceClassifierOutput(logits=self.head(self.norm(embeds).mean(1)))


def test_lrp_fails_clearly_on_unsupported_models(classifier: EmotionClassifier) -> None:
    toy = EmotionClassifier(
        _ToyClassifier(classifier.tokenizer.vocab_size),
        classifier.tokenizer,
        classifier.label_space,
    )
    (e,) = toy.explain(TEXT, "grad_x_input")  # gradient × input needs no transformers model
    assert len(e.scores) == len(e.words) and e.attentions is None
    with pytest.raises(ConfigError, match="grad_x_input"):
        toy.explain(TEXT, "lrp")
    with pytest.raises(ConfigError, match="attention weights"):
        toy.explain(TEXT, "attention")


def test_first_token_head_is_explained(classifier: EmotionClassifier) -> None:
    from emorec.modeling import FirstTokenClassifier

    encoder = _bert(classifier.tokenizer).bert
    model = FirstTokenClassifier(encoder, "pre_classifier").eval()
    other = EmotionClassifier(model, classifier.tokenizer, classifier.label_space)
    (e,) = other.explain(TEXT, "lrp")
    assert len(e.scores) == len(e.words)
    np.testing.assert_allclose(
        [e.probabilities[n] for n in LABELS], other.predict_proba(TEXT), atol=1e-5
    )


# ---- multi-label -------------------------------------------------------------------------------
def test_multi_label_explains_each_predicted_label(tokenizer) -> None:
    probs = _multi_label(tokenizer).predict_proba(TEXT)
    top_two = sorted(np.argsort(-probs)[:2].tolist())
    thresholds = [float(probs[i]) - 1e-3 if i in top_two else 0.999 for i in range(len(LABELS))]
    classifier = _multi_label(tokenizer, thresholds)
    assert set(classifier.predict(TEXT).labels) == {LABELS[i] for i in top_two}

    explanations = classifier.explain(TEXT, "lrp")
    assert [e.target for e in explanations] == [LABELS[i] for i in top_two]
    assert all(len(e.scores) == len(e.words) for e in explanations)
    assert not np.allclose(explanations[0].scores, explanations[1].scores)
    curve = deletion_curve(classifier, explanations[1])
    assert curve.threshold == pytest.approx(thresholds[top_two[1]])
    assert curve.most_first[0] == pytest.approx(probs[top_two[1]], abs=1e-5)

    # No label passes its threshold: the most probable one is explained.
    none = _multi_label(tokenizer, [0.999] * len(LABELS))
    (e,) = none.explain(TEXT, "grad_x_input")
    assert e.target == LABELS[int(np.argmax(probs))]


# ---- the user's words --------------------------------------------------------------------------
EMOJI_TEXT = "i loooove this song 😍 ... so nervous about tomorrow :("


def test_explained_words_carry_the_users_substring_and_span(
    classifier: EmotionClassifier,
) -> None:
    (e,) = classifier.explain(EMOJI_TEXT, "grad_x_input")
    assert e.words == e.clean_text.split() and len(e.spans) == len(e.words)
    # Slicing the original text by a word's span gives the word as the user typed it.
    assert e.sources == [EMOJI_TEXT[start:end] for start, end in e.spans]
    typed = dict(zip(e.words, e.sources, strict=True))
    assert typed["love"] == "loooove" and typed["sad"] == ":(" and typed["heart-eyes"] == "😍"
    assert typed["nervous"] == "nervous" and typed["tomorrow"] == "tomorrow"
    # Segments are the user's words: each whitespace token of this text, once, in order,
    # with the scores of the cleaned words made from it summed.
    segments = e.segments()
    assert [s.text for s in segments] == EMOJI_TEXT.split()
    assert all(EMOJI_TEXT[s.start : s.end] == s.text for s in segments)
    emoji = segments[EMOJI_TEXT.split().index("😍")]
    assert emoji.clean == "smiling face with heart-eyes"
    assert emoji.score == pytest.approx(sum(e.scores[i] for i in emoji.words))
    assert sum(s.score for s in segments) == pytest.approx(sum(e.scores))
    assert {word for word, _ in e.top(len(segments))} == set(EMOJI_TEXT.split())
    record = e.to_dict()
    assert record["sources"] == e.sources and record["spans"][-1] == [
        len(EMOJI_TEXT) - 2,
        len(EMOJI_TEXT),
    ]
    assert [s["text"] for s in record["segments"]] == EMOJI_TEXT.split()
    json.dumps(record)


def test_plots_and_html_show_the_users_words(classifier: EmotionClassifier) -> None:
    from emorec.explain.render import _token_labels, _word_importance_figure

    (e,) = classifier.explain(EMOJI_TEXT, "lrp")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a glyph missing from the font would warn
        fig = _word_importance_figure([e], max_words=30)
        fig.canvas.draw()
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()] == EMOJI_TEXT.split()
    # An emoji the font cannot draw is labelled by its cleaned name instead of a box.
    (hug,) = classifier.explain("so happy 🥰", "grad_x_input")
    labels = [t.get_text() for t in _word_importance_figure([hug], 30).axes[0].get_yticklabels()]
    assert labels == ["so", "happy", "[smiling face with hearts]"]
    # The heatmap's tokens point at what the user typed where cleaning rewrote a word.
    tokens = _token_labels(e)
    first_of_sad = e.token_words.index(e.words.index("sad"))
    assert tokens[first_of_sad] == f"{e.tokens[first_of_sad]} ← :("
    first_of_nervous = e.token_words.index(e.words.index("nervous"))
    assert tokens[first_of_nervous] == e.tokens[first_of_nervous]  # unchanged: plain token

    page = render_html([e])
    words = page.split('<p class="words">')[1].split("</p>")[0]
    assert html.unescape(re.sub(r"<[^>]+>", "", words)) == EMOJI_TEXT  # the text as typed
    assert ">:(</span>" in page and "read as: sad" in page and ">loooove</span>" in page


# ---- faithfulness ------------------------------------------------------------------------------
def test_deletion_curve_starts_at_the_full_text_probability(
    classifier: EmotionClassifier,
) -> None:
    (e,) = classifier.explain(TEXT, "lrp")
    curve = deletion_curve(classifier, e)
    n = len(e.words)
    assert curve.removed == list(range(n + 1)) and curve.fractions[-1] == 1.0
    assert curve.full_probability == pytest.approx(e.target_probability, abs=1e-5)
    assert curve.least_first[0] == pytest.approx(e.target_probability, abs=1e-5)
    # Everything masked is the same text whichever order the words went in.
    assert curve.most_first[-1] == pytest.approx(curve.least_first[-1], abs=1e-6)
    most, least = np.asarray(curve.most_first), np.asarray(curve.least_first)
    assert curve.aopc == pytest.approx(np.mean(most[0] - most))
    assert curve.area_between == pytest.approx(np.mean(least - most))
    assert curve.area_between == pytest.approx(curve.aopc - curve.aopc_least_first)

    # Step 1 masks every sub-token of the top word, and nothing else.
    top = int(np.argmax(e.scores))
    ids = torch.tensor([classifier.tokenizer(e.clean_text)["input_ids"]])
    ids[0, [w == top for w in e.token_words]] = classifier.tokenizer.mask_token_id
    with torch.no_grad():
        logits = classifier.model(input_ids=ids).logits.numpy()
    expected = classifier.calibration.probabilities(logits)[0, e.target_index]
    assert curve.most_first[1] == pytest.approx(expected, abs=1e-5)

    coarse = deletion_curve(classifier, e, max_steps=3)
    assert coarse.removed[0] == 0 and coarse.removed[-1] == n and len(coarse.removed) == 4


def _threshold_lines(curve) -> list[float]:
    from emorec.explain.render import LARGE_DROP, _deletion_figure

    (ax,) = _deletion_figure([curve], LARGE_DROP).axes
    return [
        float(line.get_ydata()[0])
        for line in ax.get_lines()
        if str(line.get_label()).startswith("threshold")
    ]


def test_deletion_plot_draws_the_decisions_real_threshold(
    classifier: EmotionClassifier, tokenizer
) -> None:
    # Single-label decides by argmax (here with offsets too): no probability threshold to draw.
    for model in (
        classifier,
        EmotionClassifier(
            classifier.model,
            tokenizer,
            classifier.label_space,
            calibration=Calibration(decision="bias", biases=[0.3, -0.1, 0.0, -0.2]),
        ),
    ):
        (e,) = model.explain(TEXT, "grad_x_input")
        curve = deletion_curve(model, e)
        assert curve.threshold is None and _threshold_lines(curve) == []
    # Multi-label: the explained label's tuned threshold, or the default rule's when untuned.
    tuned = _multi_label(tokenizer, [0.2, 0.35, 0.6, 0.8])
    for e in tuned.explain(TEXT, "grad_x_input", target=["sadness", "fear"]):
        curve = deletion_curve(tuned, e)
        expected = [0.2, 0.35, 0.6, 0.8][e.target_index]
        assert curve.threshold == expected and _threshold_lines(curve) == [expected]
    untuned = _multi_label(tokenizer)
    (e,) = untuned.explain(TEXT, "grad_x_input", target="joy")
    assert _threshold_lines(deletion_curve(untuned, e)) == [0.5]


# ---- rendering ---------------------------------------------------------------------------------
def test_html_escapes_the_text() -> None:
    e = Explanation(
        text="<script>alert('x')</script> so happy",
        clean_text="<script>alert('x')</script> so happy",
        words=["<script>alert('x')</script>", "so", "happy"],
        scores=[0.5, -0.2, 1.0],
        target="<b>joy</b>",
        target_index=0,
        probabilities={"<b>joy</b>": 0.9, "sadness": 0.1},
        method="lrp",
    )
    page = render_html([e])
    assert "<script>" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "&lt;b&gt;joy&lt;/b&gt;" in page and 'title="+1.0000"' in page


def test_write_explanation_writes_non_empty_files(
    classifier: EmotionClassifier, tmp_path: Path
) -> None:
    (e,) = classifier.explain("i paid $5 and $6 for <this> :(", "lrp")
    curve = deletion_curve(classifier, e)
    paths = write_explanation([e], tmp_path, [curve], layer=1, head=0)
    assert set(paths) == set(ARTIFACTS)
    for name, path in paths.items():
        assert path.is_file() and path.stat().st_size > 0, name
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    record = json.loads(paths["json"].read_text())["explanations"][0]
    assert record["words"] == e.words and record["deletion_curve"]["aopc"] == curve.aopc
    with pytest.raises(ConfigError, match="layer must be in"):
        write_explanation([e], tmp_path, layer=5)


def test_cli_explain(classifier: EmotionClassifier, tmp_path: Path) -> None:
    model_dir = classifier.save_pretrained(tmp_path / "model")
    out = tmp_path / "explained"
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "explain",
            str(model_dir),
            "i feel so happy today",
            "--method",
            "grad_x_input",
            "--output",
            str(out),
            "--top-k",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "AOPC" in result.output and "happy" in result.output
    assert all((out / name).is_file() for name in ARTIFACTS.values())

    result = runner.invoke(app, ["explain", str(model_dir), "so happy", "--target", "love"])
    assert result.exit_code == 2 and "target must be" in result.output
