"""gd_lightning: the classic gradient-descent-from-scratch tutorials as Lightning components."""

from gd_lightning.analysis import FitReference
from gd_lightning.callbacks import (
    ConvergenceMonitor,
    FitCheckpoint,
    FitFigures,
    LossHistory,
    ParameterReport,
    PredictionWriter,
    TimedProgressBar,
)
from gd_lightning.data import (
    ArangeDataModule,
    CropYieldsDataModule,
    EpochBatchSampler,
    FullBatch,
    GatherDataset,
    NoisyLineDataModule,
    SpeedDataModule,
    TabularDataModule,
    TensorDataModule,
)
from gd_lightning.data.standardize import Standardization
from gd_lightning.errors import DivergenceError, InputError
from gd_lightning.functional import (
    linear_design_matrix,
    linear_in_original_units,
    mse,
    quadratic,
    quadratic_design_matrix,
    quadratic_in_original_units,
    regression_metrics,
    regression_sums,
)
from gd_lightning.io import AtomicCheckpointIO
from gd_lightning.models import LinearRegression, QuadraticRegression, RegressionModule
from gd_lightning.optim import GradientDescent

__version__ = "0.1.0"

__all__ = [
    "ArangeDataModule",
    "AtomicCheckpointIO",
    "ConvergenceMonitor",
    "CropYieldsDataModule",
    "DivergenceError",
    "EpochBatchSampler",
    "FullBatch",
    "FitCheckpoint",
    "FitFigures",
    "FitReference",
    "GatherDataset",
    "GradientDescent",
    "InputError",
    "LinearRegression",
    "LossHistory",
    "NoisyLineDataModule",
    "ParameterReport",
    "PredictionWriter",
    "TimedProgressBar",
    "QuadraticRegression",
    "RegressionModule",
    "SpeedDataModule",
    "Standardization",
    "TabularDataModule",
    "TensorDataModule",
    "linear_design_matrix",
    "linear_in_original_units",
    "mse",
    "quadratic",
    "quadratic_design_matrix",
    "quadratic_in_original_units",
    "regression_metrics",
    "regression_sums",
]
