"""The TOML configuration of ``meshgdl train``: defaults, checks, and the commented template."""
from __future__ import annotations

import copy
import os

# section -> option -> (default, comment). Model and data options come from their registry entries.
SECTIONS: dict[str, dict[str, tuple]] = {
    "": {
        "seed": (0, "seeds python, numpy and torch, the data order and the train/validation split"),
        "output": ("runs/{model}", "the run folder: config, checkpoints, metrics.csv (never reused without --force)"),
        "imports": ([], "python modules to import first, which register your own models and data sets"),
    },
    "optimizer": {
        "name": ("adam", "adam, adamw or sgd"),
        "lr": (1e-3, "learning rate (the peak, after warm-up)"),
        "weight_decay": (0.0, "L2 penalty (decoupled for adamw)"),
        "momentum": (0.9, "sgd only"),
    },
    "schedule": {
        "epochs": (10, "passes over the training set"),
        "warmup_steps": (0, "linear warm-up from 0 to lr"),
        "decay": ("cosine", "constant or cosine (to 0 at the last step)"),
    },
    "loss": {
        "name": ("auto", "cross_entropy, mse, l1, or auto (cross_entropy for labels, mse for values)"),
        "ignore_index": (-1, "labels equal to this take no part in the loss or the metrics"),
    },
    "metrics": {
        "names": (["auto"], "accuracy, miou, mse, mae; auto: accuracy and miou for labels, mse and mae for values"),
    },
    "train": {
        "batch_size": (4, "graphs per step (per process under torchrun)"),
        "val_fraction": (0.2, "share of the graphs held out for validation (0 for none)"),
        "dtype": ("float32", "float32 or float64"),
        "device": ("auto", "auto (cuda if available), cpu, cuda, cuda:1, ..."),
        "checkpoint_every": (100, "steps between checkpoints (and one at the end)"),
        "keep_checkpoints": (3, "how many step checkpoints to keep (0 keeps all)"),
        "log_every": (1, "steps between rows of metrics.csv"),
        "input_dropout": (0.0, "dropout on the input features (0 for none)"),
        "noise_std": (0.0, "random augmentation: Gaussian noise added to floating inputs"),
        "deterministic": (True, "on GPU: deterministic aggregation (meshgdl.ops), for exact resume (CPU always is)"),
    },
}


class ConfigError(ValueError):
    pass


def read_config(path) -> dict:
    """Read a TOML file and return the complete config (defaults filled in, options checked)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: the same parser, from PyPI
        try:
            import tomli as tomllib
        except ImportError:
            raise ImportError("reading a TOML config needs Python 3.11 or later, or `pip install tomli`") from None

    if not os.path.isfile(path):
        raise FileNotFoundError(f"no config file at {path} (write one with `meshgdl train --print-config MODEL`)")
    with open(path, "rb") as f:
        try:
            raw = tomllib.load(f)
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path} is not valid TOML: {err}") from None
    return complete_config(raw)


def complete_config(raw: dict) -> dict:
    """Fill in defaults and check every option; unknown sections and options are errors."""
    from .registry import DATASETS, MODELS

    raw = copy.deepcopy(raw)
    import_modules(raw.get("imports", []))
    config = {}
    known = set(SECTIONS) | {"model", "data"}
    for key, value in raw.items():
        if isinstance(value, dict) and key not in known:
            raise ConfigError(f"unknown section [{key}]; the sections are "
                              + ", ".join(f"[{s}]" for s in sorted(known - {""})))
    for section, options in SECTIONS.items():
        given = raw if section == "" else raw.get(section, {})
        given = {k: v for k, v in given.items() if not (section == "" and isinstance(v, dict))}
        config_section = config if section == "" else config.setdefault(section, {})
        _fill(config_section, given, {k: v[0] for k, v in options.items()}, f"[{section}]" if section else "top level")
    for section, registry in (("model", MODELS), ("data", DATASETS)):
        given = dict(raw.get(section, {}))
        if "name" not in given:
            raise ConfigError(f"[{section}] needs a name; known: {', '.join(registry.names())}")
        entry = registry.get(given.pop("name"))
        config[section] = {"name": entry.name}
        _fill(config[section], given, entry.defaults, f"[{section}] of {entry.name}")
    config["output"] = str(config["output"]).replace("{model}", config["model"]["name"].lower())
    _check(config)
    return config


def import_modules(names) -> None:
    """Import the user's modules (from the working folder too), so that their registrations run."""
    import importlib
    import sys

    if not isinstance(names, list):
        raise ConfigError(f"imports must be a list of module names, got {names!r}")
    if names and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise ImportError(f"cannot import {name!r} from imports = [...]: {err}") from None


def _fill(out: dict, given: dict, defaults: dict, where: str) -> None:
    unknown = set(given) - set(defaults)
    if unknown:
        raise ConfigError(f"unknown option {', '.join(sorted(unknown))} in {where}; known: {', '.join(defaults)}")
    for key, default in defaults.items():
        out[key] = copy.deepcopy(given.get(key, default))


def _check(config: dict) -> None:
    t, s = config["train"], config["schedule"]
    if t["dtype"] not in ("float32", "float64"):
        raise ConfigError(f"[train] dtype must be 'float32' or 'float64', got {t['dtype']!r}")
    for key, section in (("batch_size", t), ("epochs", s), ("checkpoint_every", t), ("log_every", t)):
        if not isinstance(section[key], int) or section[key] < 1:
            raise ConfigError(f"{key} must be a positive integer, got {section[key]!r}")
    if not 0.0 <= t["val_fraction"] < 1.0:
        raise ConfigError(f"[train] val_fraction must lie in [0, 1), got {t['val_fraction']}")
    if s["decay"] not in ("constant", "cosine"):
        raise ConfigError(f"[schedule] decay must be 'constant' or 'cosine', got {s['decay']!r}")
    if config["optimizer"]["name"] not in ("adam", "adamw", "sgd"):
        raise ConfigError(f"[optimizer] name must be adam, adamw or sgd, got {config['optimizer']['name']!r}")


def config_template(model: str, data: str | None = None) -> str:
    """A complete TOML config for ``model`` (and its usual data set), every option commented."""
    from .registry import DATASETS, MODELS

    entry = MODELS.get(model)
    dataset = DATASETS.get(data or entry.data or "mesh_folder")
    lines = [f"# meshgdl train config: {entry.name} on {dataset.name}.",
             "# Run with `meshgdl train THIS.toml`; every option is shown with its default.", ""]
    for key, (default, comment) in SECTIONS[""].items():
        value = default.replace("{model}", entry.name.lower()) if isinstance(default, str) else default
        lines.append(_line(key, value, comment))
    blocks = [("model", entry, entry.summary), ("data", dataset, dataset.summary)]
    for section, e, summary in blocks:
        lines += ["", f"[{section}]" + (f"  # {summary}" if summary else ""), _line("name", e.name, "")]
        lines += [_line(k, v, e.help.get(k, "")) for k, v in e.defaults.items()]
    for section, options in SECTIONS.items():
        if section:
            lines += ["", f"[{section}]"] + [_line(k, v[0], v[1]) for k, v in options.items()]
    return "\n".join(lines) + "\n"


def _line(key, value, comment) -> str:
    text = f"{key} = {toml_value(value)}"
    return f"{text:<34} # {comment}" if comment else text


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if value is None:
        raise ConfigError("TOML has no null; use a value")
    return repr(value)


def dump_config(config: dict) -> str:
    """The config as TOML (written into the run folder, read back by ``--resume``)."""
    lines = [f"{k} = {toml_value(v)}" for k, v in config.items() if not isinstance(v, dict)]
    for section, options in config.items():
        if isinstance(options, dict):
            lines += ["", f"[{section}]"] + [f"{k} = {toml_value(v)}" for k, v in options.items()]
    return "\n".join(lines) + "\n"
