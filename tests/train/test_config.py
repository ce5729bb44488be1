import tomllib

import pytest

from meshgdl.cli import main
from meshgdl.train import MODELS, register_model
from meshgdl.train.config import ConfigError, complete_config, config_template

from .conftest import ising_config


@pytest.mark.parametrize("model, data", [("GemResNet", None), ("HealSwinUNet", None), ("HealSwin", None), ("LCNN", None),
                                         ("GemUNet", None), ("CNGroupCNN", None), ("HealSwinUNet", "spherical_images"),
                                         ("GemUNet", "spherical_images")])
def test_print_config_is_a_complete_config_with_every_default(model, data, capsys):
    assert main(["train", "--print-config", model] + (["--data", data] if data else [])) == 0
    text = capsys.readouterr().out
    raw = tomllib.loads(text)
    assert raw["model"]["name"] == model and raw["data"]["name"] == (data or MODELS.get(model).data)
    assert complete_config(raw) == complete_config({"model": {"name": model}, "data": raw["data"]} | {"output": raw["output"]})
    assert text.count("#") > 20  # every option carries its comment


def test_unknown_options_and_names_are_refused_with_what_is_known():
    with pytest.raises(ConfigError, match="unknown option widht in \\[model\\] of GemResNet; known: hidden_copies"):
        complete_config({"model": {"name": "GemResNet", "widht": 3}, "data": {"name": "ising"}})
    with pytest.raises(ValueError, match="no model named 'Nope'; known: .*GemResNet.*LCNN"):
        complete_config({"model": {"name": "Nope"}, "data": {"name": "ising"}})
    with pytest.raises(ConfigError, match="unknown section \\[optimiser\\]"):
        complete_config({"model": {"name": "LCNN"}, "data": {"name": "ising"}, "optimiser": {}})


def test_a_users_model_is_found_by_name():
    @register_model("TinyTestNet", defaults={"width": 3})
    def build(info, width):
        raise NotImplementedError

    assert "TinyTestNet" in MODELS.names() and MODELS.get("tinytestnet").defaults == {"width": 3}
    with pytest.raises(ValueError, match="already registered"):
        register_model("TinyTestNet")(build)


def test_a_run_folder_is_never_replaced_without_force(tmp_path, ising_root, capsys):
    config = ising_config(tmp_path, ising_root, train={"val_fraction": 0.0})
    assert main(["train", config, "-q", "--stop-after", "1"]) == 0
    assert main(["train", config, "-q", "--stop-after", "1"]) == 2
    err = capsys.readouterr().err
    assert "run folder" in err and "pass --force to replace it" in err and "--resume" in err
    assert main(["train", config, "-q", "--stop-after", "1", "--force"]) == 0
    other = tmp_path / "data"
    (other / "keep.txt").parent.mkdir()
    (other / "keep.txt").write_text("precious")
    assert main(["train", config, "-q", "--output", str(other), "--force"]) == 2
    assert "not a run folder" in capsys.readouterr().err and (other / "keep.txt").exists()


def test_imports_register_the_users_model_before_names_are_looked_up(tmp_path, monkeypatch):
    (tmp_path / "my_train_plugin.py").write_text(
        "from meshgdl.train import register_model\n"
        "@register_model('PluginNet', defaults={'depth': 1})\n"
        "def build(info, depth):\n    raise NotImplementedError\n")
    monkeypatch.chdir(tmp_path)
    config = complete_config({"imports": ["my_train_plugin"], "model": {"name": "PluginNet"}, "data": {"name": "ising"}})
    assert config["model"] == {"name": "PluginNet", "depth": 1}
    with pytest.raises(ImportError, match="cannot import 'no_such_plugin'"):
        complete_config({"imports": ["no_such_plugin"], "model": {"name": "LCNN"}, "data": {"name": "ising"}})


def test_the_command_line_parser_imports_no_torch():
    """`meshgdl --help` stays fast: the trainer is imported only when a training runs."""
    import subprocess
    import sys

    code = "import sys, meshgdl.cli; meshgdl.cli.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_train_needs_a_config_or_a_run_and_a_positive_stop(capsys):
    assert main(["train"]) == 2
    assert "give a CONFIG.toml to start a run, or --resume RUN" in capsys.readouterr().err
    assert main(["train", "c.toml", "--stop-after", "0"]) == 2
    assert "--stop-after must be a step of 1 or more" in capsys.readouterr().err
