"""gd_lightning: the classic gradient-descent-from-scratch tutorials as Lightning components."""

from typing import TYPE_CHECKING

from gd_lightning.lazy import lazy_exports

__version__ = "0.1.0"

#: where each public name lives: imported on first use, so that ``import gd_lightning``
#: (and the ``gd-lightning`` command, before it has checked its input) does not load
#: PyTorch and Lightning until something needs them
_EXPORTS = {
    "ArangeDataModule": "gd_lightning.data",
    "AtomicCheckpointIO": "gd_lightning.io",
    "ConvergenceMonitor": "gd_lightning.callbacks",
    "CropYieldsDataModule": "gd_lightning.data",
    "DivergenceError": "gd_lightning.errors",
    "EpochBatchSampler": "gd_lightning.data",
    "FitCheckpoint": "gd_lightning.callbacks",
    "FitFigures": "gd_lightning.callbacks",
    "LeastSquaresReference": "gd_lightning.analysis",
    "FullBatch": "gd_lightning.data",
    "GatherDataset": "gd_lightning.data",
    "GradientDescent": "gd_lightning.optim",
    "InputError": "gd_lightning.errors",
    "LinearRegression": "gd_lightning.models",
    "LossHistory": "gd_lightning.callbacks",
    "LossPrintout": "gd_lightning.callbacks",
    "NoisyLineDataModule": "gd_lightning.data",
    "ParameterReport": "gd_lightning.callbacks",
    "PredictionWriter": "gd_lightning.callbacks",
    "QuadraticRegression": "gd_lightning.models",
    "RegressionModule": "gd_lightning.models",
    "SpeedDataModule": "gd_lightning.data",
    "Standardization": "gd_lightning.data.standardize",
    "TabularDataModule": "gd_lightning.data",
    "TensorDataModule": "gd_lightning.data",
    "TimedProgressBar": "gd_lightning.callbacks",
    "linear_design_matrix": "gd_lightning.functional",
    "linear_in_original_units": "gd_lightning.functional",
    "mse": "gd_lightning.functional",
    "quadratic": "gd_lightning.functional",
    "quadratic_design_matrix": "gd_lightning.functional",
    "quadratic_in_original_units": "gd_lightning.functional",
    "regression_metrics": "gd_lightning.functional",
    "regression_sums": "gd_lightning.functional",
}

if TYPE_CHECKING:  # the names as type checkers and editors see them
    from gd_lightning.analysis import (
        LeastSquaresReference,
    )
    from gd_lightning.callbacks import (
        ConvergenceMonitor,
        FitCheckpoint,
        FitFigures,
        LossHistory,
        LossPrintout,
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
    from gd_lightning.data.standardize import (
        Standardization,
    )
    from gd_lightning.errors import (
        DivergenceError,
        InputError,
    )
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
    from gd_lightning.io import (
        AtomicCheckpointIO,
    )
    from gd_lightning.models import (
        LinearRegression,
        QuadraticRegression,
        RegressionModule,
    )
    from gd_lightning.optim import (
        GradientDescent,
    )


__getattr__ = lazy_exports("gd_lightning", globals(), _EXPORTS)


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


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
    "LeastSquaresReference",
    "GatherDataset",
    "GradientDescent",
    "InputError",
    "LinearRegression",
    "LossHistory",
    "LossPrintout",
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
