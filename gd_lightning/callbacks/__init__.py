"""Callbacks that show and save what a fit learned."""

from gd_lightning.callbacks.checkpoint import FitCheckpoint
from gd_lightning.callbacks.convergence import ConvergenceMonitor
from gd_lightning.callbacks.figures import FitFigures
from gd_lightning.callbacks.history import LossHistory
from gd_lightning.callbacks.predictions import PredictionWriter
from gd_lightning.callbacks.printout import LossPrintout
from gd_lightning.callbacks.progress import TimedProgressBar
from gd_lightning.callbacks.report import ParameterReport

__all__ = [
    "ConvergenceMonitor",
    "FitCheckpoint",
    "FitFigures",
    "LossHistory",
    "LossPrintout",
    "ParameterReport",
    "PredictionWriter",
    "TimedProgressBar",
]
