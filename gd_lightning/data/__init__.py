"""LightningDataModules for the tutorials' data and your own."""

from gd_lightning.data.arange import ArangeDataModule
from gd_lightning.data.base import TensorDataModule
from gd_lightning.data.crops import CropYieldsDataModule
from gd_lightning.data.line import NoisyLineDataModule
from gd_lightning.data.sampler import EpochBatchSampler, FullBatch, GatherDataset
from gd_lightning.data.speed import SpeedDataModule
from gd_lightning.data.tabular import TabularDataModule

__all__ = [
    "ArangeDataModule",
    "CropYieldsDataModule",
    "EpochBatchSampler",
    "FullBatch",
    "GatherDataset",
    "NoisyLineDataModule",
    "SpeedDataModule",
    "TabularDataModule",
    "TensorDataModule",
]
