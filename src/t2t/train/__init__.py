"""Training: `Trainer(TrainConfig(...), model=..., tokenizer=..., train_stream=...).fit()`; see docs/training.md."""

from t2t.train.adafactor import Adafactor
from t2t.train.config import TrainConfig
from t2t.train.optim import build_optimizer, build_scheduler, lr_multiplier
from t2t.train.runlog import read_metrics
from t2t.train.scheduled_sampling import sampling_probability
from t2t.train.trainer import Trainer, TrainingDiverged, TrainResult

__all__ = [
    "Adafactor",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingDiverged",
    "build_optimizer",
    "build_scheduler",
    "lr_multiplier",
    "read_metrics",
    "sampling_probability",
]
