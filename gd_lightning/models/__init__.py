"""LightningModules for regression by gradient descent."""

from gd_lightning.models.base import RegressionModule
from gd_lightning.models.linear import LinearRegression
from gd_lightning.models.quadratic import QuadraticRegression

__all__ = ["LinearRegression", "QuadraticRegression", "RegressionModule"]
