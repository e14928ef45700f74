"""The standardization a model fits in, held as buffers that follow it everywhere."""

from typing import Any

from torch import Tensor, nn

from gd_lightning.data.standardize import Standardization
from gd_lightning.errors import InputError


class Scaling(nn.Module):
    """Maps raw values to the units a model is fitted in, and its predictions back.

    The statistics ([`Standardization`][gd_lightning.Standardization]) are
    buffers, so they move with the model to its device and dtype and are part of its
    ``state_dict`` (and so of every checkpoint). Whether anything is scaled at all is
    decided when they change (`set`, or loading a state dict), not at every
    step: a scaling that changes nothing would still cost two passes over each batch.

    Examples:
        >>> import torch
        >>> scaling = Scaling(1, 1)
        >>> scaling.set(Standardization.from_training(
        ...     torch.tensor([[1.0], [3.0]]), torch.tensor([[0.0], [4.0]]), True, True))
        >>> t = torch.tensor
        >>> scaling.fitted_inputs(t([[3.0]])), scaling.original_targets(t([[1.0]]))
        (tensor([[1.]]), tensor([[4.]]))
    """

    feature_shift: Tensor
    feature_scale: Tensor
    target_shift: Tensor
    target_scale: Tensor
    feature_constant: Tensor

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        identity = Standardization.identity(in_features, out_features)
        for name, value in identity.as_tensors().items():
            self.register_buffer(name, value)
        self.features = self.targets = False
        self.register_load_state_dict_post_hook(_loaded)

    def set(self, standardization: Standardization | None) -> None:
        """Use ``standardization`` from now on (``None``: raw units)."""
        if standardization is None:
            standardization = Standardization.identity(*self._sizes())
        for name, value in standardization.as_tensors().items():
            buffer = self.get_buffer(name)
            if value.shape != buffer.shape:
                raise InputError(
                    f"the standardization's {name} has shape {tuple(value.shape)} but "
                    f"the model's is {tuple(buffer.shape)}: the data has other columns"
                )
            # the statistics keep the data's dtype (every digit of float64 data, though
            # the model turns float64 only after this, under precision="64-true")
            dtype = value.dtype if value.is_floating_point() else buffer.dtype
            setattr(self, name, value.detach().to(buffer.device, dtype).clone())
        self._note()

    @property
    def standardization(self) -> Standardization | None:
        """The statistics in use, or ``None`` when nothing is scaled."""
        current = Standardization.from_tensors(
            {name: self.get_buffer(name) for name in Standardization.names()}
        )
        return current if current.features or current.targets else None

    def fitted_inputs(self, x: Tensor) -> Tensor:
        """Raw inputs (batch, in_features) in fitted units."""
        return (x - self.feature_shift) / self.feature_scale if self.features else x

    def fitted_targets(self, y: Tensor) -> Tensor:
        """Raw targets (batch, out_features) in fitted units."""
        return (y - self.target_shift) / self.target_scale if self.targets else y

    def original_targets(self, out: Tensor) -> Tensor:
        """Predictions in fitted units back in original units."""
        return out * self.target_scale + self.target_shift if self.targets else out

    def _sizes(self) -> tuple[int, int]:
        return len(self.feature_shift), len(self.target_shift)

    def _note(self) -> None:
        current = self.standardization
        self.features = current is not None and current.features
        self.targets = current is not None and current.targets


def _loaded(module: Scaling, incompatible_keys: Any) -> None:
    """After ``load_state_dict`` (a checkpoint): the statistics may have changed."""
    module._note()
