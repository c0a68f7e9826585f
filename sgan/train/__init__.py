"""Training StyleGAN (progressive growing) and StyleGAN2: `train(TrainConfig, data, out)`.

    from sgan.train import configure, train
    cfg, given = configure("cpu", {})          # a preset with options, as `sgan train` applies them
    train(cfg, "data/shapes.lmdb", "runs/shapes", resume_overrides=given)
"""

from sgan.train.api import train
from sgan.train.config import TrainConfig
from sgan.train.hooks import Hooks, TrainResult
from sgan.train.loop import Trainer
from sgan.train.presets import configure, preset_config
from sgan.train.run import TrainingDiverged, TrainingInterrupted

__all__ = ["TrainConfig", "configure", "preset_config", "Hooks", "TrainResult", "Trainer", "train",
           "TrainingDiverged", "TrainingInterrupted"]
