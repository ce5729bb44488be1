import pytest

from meshgdl.train.config import toml_value


def write_config(path, **sections) -> str:
    """A TOML file from ``{section: {option: value}}`` (``top`` for the top-level options)."""
    lines = [f"{k} = {toml_value(v)}" for k, v in sections.pop("top", {}).items()]
    for name, options in sections.items():
        lines += [f"[{name}]"] + [f"{k} = {toml_value(v)}" for k, v in options.items()]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


TINY_GEM = {"name": "GemResNet", "hidden_copies": 2, "max_frequency": 1, "num_blocks": 1, "norm": "none"}


@pytest.fixture(scope="session")
def ising_root(tmp_path_factory):
    """A cache folder shared by the tests, so that the Ising configurations are simulated once."""
    return str(tmp_path_factory.mktemp("ising"))


def ising_config(tmp_path, ising_root, run="run", train=None):
    data = {"name": "ising", "root": ising_root, "shape": [4, 4], "temperatures": [1.5, 3.5], "num_configs": 6,
            "n_therm": 20, "n_decor": 2}
    return write_config(tmp_path / "config.toml", top={"seed": 3, "output": str(tmp_path / run)},
                        model=TINY_GEM, data=data, schedule={"epochs": 2},
                        train={"batch_size": 2, "val_fraction": 0.25, "checkpoint_every": 2,
                               "input_dropout": 0.2, "noise_std": 0.1, "device": "cpu"} | (train or {}))
