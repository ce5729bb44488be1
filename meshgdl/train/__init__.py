"""Training from a config file: ``meshgdl train``, exact resume, evaluation, prediction and
data-parallel runs under ``torchrun``. See ``docs/training.md``."""
from .._lazy import lazy_module

_EXPORTS = {
    "register_model": ".registry",
    "register_dataset": ".registry",
    "MODELS": ".registry",
    "DATASETS": ".registry",
    "DataInfo": ".data",
    "TrainData": ".data",
    "read_config": ".config",
    "complete_config": ".config",
    "config_template": ".config",
    "Trainer": ".trainer",
    "load_checkpoint": ".checkpoint",
    "load_run": ".predict",
    "evaluate_run": ".predict",
    "predict_file": ".predict",
}

__getattr__, __dir__ = lazy_module(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
