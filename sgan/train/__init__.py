"""Training StyleGAN with progressive growing: `train(TrainConfig, data, out)`.

    from sgan.train import preset_config, train
    cfg = preset_config("cpu")
    train(cfg, "data/shapes.lmdb", "runs/shapes")
"""

from sgan.train.config import TrainConfig, preset_config
from sgan.train.loop import Hooks, TrainResult, Trainer, train
from sgan.train.run import TrainingDiverged, TrainingInterrupted

__all__ = ["TrainConfig", "preset_config", "Hooks", "TrainResult", "Trainer", "train", "TrainingDiverged",
           "TrainingInterrupted"]
