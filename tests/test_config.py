import subprocess
import sys
from pathlib import Path

import pytest

from emorec.config import config_reference, load_config, parse_yaml
from emorec.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


BASE = "data:\n  path: some/dir\n"


def test_scientific_notation_is_a_float() -> None:
    assert parse_yaml("lr: 1e-5") == {"lr": 1e-5}
    assert parse_yaml("lr: 2.128e-5") == {"lr": 2.128e-5}


def test_unknown_key_names_key_and_valid_choices(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "training:\n  learnin_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown key `training.learnin_rate`") as info:
        load_config(path)
    message = str(info.value)
    assert "Did you mean `learning_rate`?" in message
    assert "weight_decay" in message  # lists the valid keys of the section


def test_unknown_section(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key `trainig`.*Valid keys here: .*training"):
        load_config(write(tmp_path, BASE + "trainig: {}\n"))


def test_wrong_type_names_field_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "training:\n  learning_rate: fast\n")
    with pytest.raises(ConfigError, match=r"`training.learning_rate`.*'fast'"):
        load_config(path)


def test_invalid_choice_lists_choices(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "training:\n  loss_type: hinge\n")
    with pytest.raises(ConfigError, match=r"training.loss_type.*cross_entropy"):
        load_config(path)


def test_missing_data_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data.path"):
        load_config(write(tmp_path, "data: {}\n"))


def test_overrides_are_validated(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    config = load_config(path, ["training.learning_rate=3e-5", "model.labels=[a, b]"])
    assert config.training.learning_rate == pytest.approx(3e-5)
    assert config.model.labels == ["a", "b"]
    with pytest.raises(ConfigError, match=r"training.num_epochs"):
        load_config(path, ["training.num_epochs=-1"])
    with pytest.raises(ConfigError, match="must look like"):
        load_config(path, ["training.learning_rate"])
    with pytest.raises(ConfigError, match=r"unknown key `training.lr`"):
        load_config(path, ["training.lr=1"])


def test_override_files_merge(tmp_path: Path) -> None:
    best = tmp_path / "best.yaml"
    best.write_text("training:\n  learning_rate: 4.0e-5\n  seed: 7\n")
    config = load_config(write(tmp_path, BASE + "training:\n  num_epochs: 2\n"), [], [best])
    assert (config.training.learning_rate, config.training.seed, config.training.num_epochs) == (
        4e-5,
        7,
        2.0,
    )


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_output_paths_use_run_name(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "run_name: abc\n" + BASE))
    assert config.output_path("model_dir") == Path("models/abc")
    assert config.output_path("results_dir") == Path("results/abc")


# Sweep files (configs/sweep-*.yaml) are validated against their configs in test_tune.py.
TRAINING_CONFIGS = sorted(
    p for p in (REPO / "configs").glob("*.yaml") if not p.name.startswith("sweep-")
)


@pytest.mark.parametrize("path", TRAINING_CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_validate(path: Path) -> None:
    config = load_config(path)
    assert config.run_name


def test_config_reference_documents_every_field() -> None:
    rows = config_reference()
    keys = {key for key, _, _ in rows}
    assert {"training.learning_rate", "data.cleaning.normalize_slang", "model.name"} <= keys
    undocumented = [key for key, _, description in rows if not description]
    assert undocumented == []


def test_readme_config_reference_is_current() -> None:
    from emorec.config import config_reference_markdown

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index("<!-- config-reference:start -->") + len("<!-- config-reference:start -->")
    end = readme.index("<!-- config-reference:end -->")
    assert readme[start:end].strip() == config_reference_markdown().strip(), (
        "README's config reference is stale: paste emorec.config.config_reference_markdown()"
    )


def test_ci_runs_the_readme_test_command() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    test_command = ".venv/bin/python -m pytest"
    assert test_command in readme
    assert any(line.strip() == test_command for line in ci.splitlines())


def test_label_errors_say_null_infers_the_labels(tmp_path: Path) -> None:
    from emorec.errors import DataError
    from emorec.labels import LabelSpace

    with pytest.raises(DataError, match=r"Add them to `model.labels`, set `model.labels: null`"):
        LabelSpace.from_labels(["joy", "fear"], order=["joy", "sadness"])
    with pytest.raises(DataError, match=r"`null` infers the labels"):
        LabelSpace.from_labels(["joy"], order=["joy"])
    # An empty list used to fall back to inference silently; a repeat would shift every label id.
    for labels in ("[]", "[joy]", "[joy, joy]"):
        with pytest.raises(ConfigError, match=r"`model.labels`.*or be `null` to infer"):
            load_config(write(tmp_path, BASE + f"model:\n  labels: {labels}\n"))


def test_override_errors_name_the_override_not_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    with pytest.raises(ConfigError) as info:
        load_config(path, ["training.learning_rate=abc"])
    message = str(info.value)
    assert "--set training.learning_rate=abc: `training.learning_rate`" in message
    assert str(path) not in message
    with pytest.raises(ConfigError, match=r"--set training.lr=1: unknown key `training.lr`"):
        load_config(path, ["training.lr=1"])
    # A section's own check names the override that broke it.
    with pytest.raises(ConfigError, match=r"--set data.train_file=a: `data`: give either"):
        load_config(path, ["data.train_file=a"])
    with pytest.raises(ConfigError, match=r"--set training: must look like"):
        load_config(path, ["training"])
    # An override file's value is named by its file; a --set on the same key replaces it.
    best = tmp_path / "best.yaml"
    best.write_text("training:\n  seed: abc\n")
    with pytest.raises(ConfigError, match=rf"{best}: `training.seed`"):
        load_config(path, [], [best])
    assert load_config(path, ["training.seed=3"], [best]).training.seed == 3
    # Errors in the YAML file itself still name the file, each error by its own source.
    broken = write(tmp_path, BASE + "training:\n  learning_rate: fast\n")
    with pytest.raises(ConfigError, match=rf"Invalid {broken}:"):
        load_config(broken)
    with pytest.raises(ConfigError) as info:
        load_config(broken, ["training.seed=x"])
    assert f"{broken}: `training.learning_rate`" in str(info.value)
    assert "--set training.seed=x: `training.seed`" in str(info.value)


def test_config_is_a_pure_schema_package() -> None:
    # The config is read by every stage and by light tools (the CLI's help, the service's
    # settings): it must not pull in the training stack.
    code = (
        "import sys, emorec.config; "
        "heavy = [m for m in ('torch', 'scipy', 'sklearn', 'transformers', 'datasets') "
        "if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
