"""Training on the tiny model: learning, resume after an interruption, loss selection."""

import json

import numpy as np
import pytest
from transformers import TrainerCallback

from emorec.errors import ConfigError
from emorec.train import train


class Interrupt(TrainerCallback):
    """Simulates a crash right after the checkpoint of step ``at`` was written."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_save(self, args, state, control, **kwargs):
        if state.global_step >= self.at:
            raise KeyboardInterrupt


def test_tiny_model_learns_the_keyword_task(make_config) -> None:
    config = make_config(
        "training.max_steps=60",
        "training.eval_steps=30",
        "training.learning_rate=3e-3",
        "training.warmup_ratio=0.0",
        "training.early_stopping_patience=null",
    )
    result = train(config, progress=False)
    assert result.metrics["global_steps"] == 60
    # Four balanced classes: chance is 0.25.
    assert result.metrics["best_validation_accuracy"] >= 0.5
    saved = json.loads((result.model_dir / "train_metrics.json").read_text())
    assert saved["best_validation_macro_f1"] == pytest.approx(
        result.metrics["best_validation_macro_f1"]
    )


def test_resume_after_interruption(make_config) -> None:
    config = make_config(
        "training.max_steps=4", "training.eval_steps=2", "training.early_stopping_patience=null"
    )
    with pytest.raises(KeyboardInterrupt):
        train(config, progress=False, callbacks=[Interrupt(at=2)])
    checkpoints = config.output_path("work_dir") / "checkpoints"
    assert (checkpoints / "checkpoint-2").is_dir()

    result = train(config, progress=False)
    assert result.metrics["resumed"] is True
    assert result.metrics["global_steps"] == 4
    assert not checkpoints.exists()


def test_checkpoints_of_another_config_are_not_resumed(make_config) -> None:
    config = make_config(
        "training.max_steps=4", "training.eval_steps=2", "training.early_stopping_patience=null"
    )
    with pytest.raises(KeyboardInterrupt):
        train(config, progress=False, callbacks=[Interrupt(at=2)])
    changed = make_config(
        "training.max_steps=4",
        "training.eval_steps=2",
        "training.early_stopping_patience=null",
        "training.seed=7",
    )
    result = train(changed, progress=False)
    assert result.metrics["resumed"] is False


@pytest.mark.parametrize("loss", ["cross_entropy", "weighted_cross_entropy", "focal"])
def test_losses_train_and_fp16_falls_back_on_cpu(make_config, loss: str) -> None:
    config = make_config(
        f"training.loss_type={loss}",
        "training.label_smoothing=0.1",
        "training.fp16=true",
        "training.gradient_accumulation_steps=2",
    )
    result = train(config, progress=False)
    assert np.isfinite(result.metrics["train_loss"])


def test_multi_label_loss_on_single_label_data_is_a_config_error(make_config) -> None:
    with pytest.raises(ConfigError, match="bce"):
        train(make_config("training.loss_type=bce"), progress=False)


@pytest.mark.parametrize("head", ["linear", "pre_classifier"])
def test_first_token_heads_train_save_and_reload(make_config, head: str) -> None:
    from emorec.inference import EmotionClassifier
    from emorec.modeling import FirstTokenClassifier

    result = train(make_config(f"model.head={head}", "model.dropout=0.2"), progress=False)
    model = result.classifier.model
    assert isinstance(model, FirstTokenClassifier)
    assert (model.pre_classifier is not None) == (head == "pre_classifier")
    assert model.dropout.p == pytest.approx(0.2)
    assert (result.model_dir / "head.safetensors").is_file()
    texts = ["i feel so happy", "so scared and nervous today"]
    reloaded = EmotionClassifier.from_pretrained(result.model_dir)
    assert isinstance(reloaded.model, FirstTokenClassifier)
    np.testing.assert_allclose(result.classifier.logits(texts), reloaded.logits(texts), atol=1e-5)


def test_first_token_head_is_what_the_docs_say() -> None:
    import torch
    from transformers import BertConfig, BertModel

    from emorec.modeling import FirstTokenClassifier

    config = BertConfig(
        vocab_size=50,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        num_labels=3,
    )
    model = FirstTokenClassifier(BertModel(config, add_pooling_layer=False), "pre_classifier", 0.0)
    model.eval()
    ids = torch.tensor([[1, 5, 7, 2]])
    first = model.encoder(input_ids=ids).last_hidden_state[:, 0]
    expected = model.classifier(torch.tanh(model.pre_classifier(first)))
    torch.testing.assert_close(model(input_ids=ids).logits, expected)


def test_fp16_only_when_cuda_is_available(make_config, tmp_path) -> None:
    import torch

    from emorec.train import training_arguments

    args = training_arguments(make_config("training.fp16=true"), tmp_path, progress=False)
    assert args.fp16 is torch.cuda.is_available()
    assert args.use_cpu is not torch.cuda.is_available()
    assert training_arguments(make_config(), tmp_path, progress=False).fp16 is False


def test_half_precision_checkpoints_train_in_float32(tiny_model_dir, tmp_path) -> None:
    # A checkpoint saved in fp16 must not give fp16 master weights (mixed precision cannot
    # unscale fp16 gradients): emorec always builds the model in float32.
    import shutil

    import torch
    from transformers import AutoModel

    from emorec.labels import LabelSpace
    from emorec.modeling import build_model

    half = tmp_path / "half"
    AutoModel.from_pretrained(tiny_model_dir).half().save_pretrained(half)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_model_dir / name, half / name)
    for head in ("auto", "linear"):
        model = build_model(str(half), LabelSpace(("a", "b")), head=head)
        assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_progress_display_shows_steps_and_changes_no_weight(make_config, monkeypatch) -> None:
    import io

    from rich.console import Console

    import emorec.train as train_module
    from emorec.progress import TrainingProgress

    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=150)
    monkeypatch.setattr(train_module, "TrainingProgress", lambda: TrainingProgress(terminal))
    config = make_config(
        "training.max_steps=4", "training.eval_steps=2", "training.early_stopping_patience=null"
    )
    texts = ["i feel so happy", "so scared and nervous today"]
    shown = train(config, progress=True)
    shown_logits = shown.classifier.logits(texts)
    quiet = train(config, progress=False).classifier.logits(texts)
    # The display is a callback that only reads the Trainer's state: same seed, same weights.
    np.testing.assert_array_equal(shown_logits, quiet)
    drawn = screen.getvalue()
    assert "\x1b[" in drawn  # a terminal gets the live bar
    history = shown.metrics["log_history"]
    for evaluation in (e for e in history if "eval_macro_f1" in e):
        assert f"step {evaluation['step']}/4" in drawn
        assert f"val macro-F1 {evaluation['eval_macro_f1']:.4f}" in drawn
