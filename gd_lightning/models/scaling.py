"""The standardization a model fits in, held as buffers that follow it everywhere."""

from typing import Any

import torch
from torch import Tensor, nn

from gd_lightning.data.standardize import Standardization, float32_carries
from gd_lightning.errors import InputError

#: the statistics a model applies to its inputs and targets (``feature_constant`` only
#: folds a shift into the parameters)
APPLIED = ("feature_shift", "feature_scale", "target_shift", "target_scale")


class Scaling(nn.Module):
    """Maps raw values to the units a model is fitted in, and its predictions back.

    The statistics ([`Standardization`][gd_lightning.Standardization]) are float64
    buffers, so they move with the model to its device and are part of its
    ``state_dict`` (and so of every checkpoint), with every digit: a float32 mean of
    values near 1.7e9 would itself be off by up to 64. Beside them, copies in the
    model's dtype (non-persistent buffers, so they follow the model's dtype) serve the
    inputs that dtype carries. Whether anything is scaled at all is decided when
    the statistics change (`set`, or loading a state dict), not at every step: a
    scaling that changes nothing would still cost two passes over each batch.

    Inputs are standardized in float64 when they come as float64 (a column float32
    cannot carry, kept so by the DataModule) or when the statistics need it (a
    column's mean that float32 cannot hold finely enough against its scale,
    [`float32_carries`][gd_lightning.data.standardize.float32_carries]), and only the
    standardized values are rounded to the model's dtype; other inputs are standardized
    in the model's dtype, at its speed. Targets likewise.

    Examples:
        >>> import torch
        >>> scaling = Scaling(1, 1)
        >>> scaling.set(Standardization.from_training(
        ...     torch.tensor([[1.0], [3.0]]), torch.tensor([[0.0], [4.0]]), True, True))
        >>> t = torch.tensor
        >>> scaling.fitted_inputs(t([[3.0]])), scaling.original_targets(t([[1.0]]))
        (tensor([[1.]]), tensor([[4.]]))
        >>> stamps = t([[1.7e9], [1.7e9 + 2]], dtype=torch.float64)
        >>> scaling.set(Standardization.from_training(stamps, stamps, True, False))
        >>> scaling.fitted_inputs(stamps + 3)  # float32 would round 1.7e9 + 5 to 1.7e9
        tensor([[2.],
                [4.]])
    """

    feature_shift: Tensor
    feature_scale: Tensor
    target_shift: Tensor
    target_scale: Tensor
    feature_constant: Tensor
    cast_feature_shift: Tensor
    cast_feature_scale: Tensor
    cast_target_shift: Tensor
    cast_target_scale: Tensor

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        identity = Standardization.identity(in_features, out_features)
        for name, value in identity.as_tensors().items():
            self.register_buffer(name, value)
        dtype = torch.get_default_dtype()  # the parameters'
        for name in APPLIED:
            self.register_buffer(cast_name(name), identity.as_tensors()[name].to(dtype),
                                 persistent=False)  # fmt: skip
        #: the dtype the cast copies were made in (a conversion of the model changes
        #: theirs: they are made again from the float64 statistics)
        self.cast_dtype = dtype
        self.features = self.targets = False
        self.wide_inputs = self.wide_targets = False
        self.register_load_state_dict_post_hook(_loaded)

    def set(self, standardization: Standardization | None) -> None:
        """Use ``standardization`` from now on (``None``: raw units); its statistics are
        kept in float64."""
        if standardization is None:
            standardization = Standardization.identity(*self._sizes())
        for name, value in standardization.as_tensors().items():
            buffer = self.get_buffer(name)
            if value.shape != buffer.shape:
                raise InputError(
                    f"the standardization's {name} has shape {tuple(value.shape)} but "
                    f"the model's is {tuple(buffer.shape)}: the data has other columns"
                )
            setattr(self, name, value.detach().to(buffer.device, torch.float64).clone())
        self._note()

    @property
    def standardization(self) -> Standardization | None:
        """The statistics in use, or ``None`` when nothing is scaled."""
        current = Standardization.from_tensors(
            {name: self.get_buffer(name) for name in Standardization.names()}
        )
        return current if current.features or current.targets else None

    @property
    def wide(self) -> bool:
        """Whether float32 cannot carry the inputs' or the targets' shifts against their
        scales: values in original units then need float64."""
        return self.wide_inputs or self.wide_targets

    @property
    def fitted_dtype(self) -> torch.dtype:
        """The dtype the model computes in (its parameters'), which the cast copies of the
        statistics follow: what `fitted_inputs` and `fitted_targets` return."""
        return self.cast_feature_shift.dtype

    def fitted_inputs(self, x: Tensor, dtype: torch.dtype | None = None) -> Tensor:
        """Raw inputs (batch, in_features) in fitted units, in `fitted_dtype` (or in
        ``dtype``: float64 for a model that a Trainer under ``precision="64-true"`` has
        not turned float64 yet)."""
        if dtype is not None and dtype != self.fitted_dtype:
            return self._fitted_in(x, "feature", self.features, dtype)
        if x.dtype is self.cast_dtype and not self.wide_inputs:  # the common case, fast
            if not self.features:
                return x
            return (x - self.cast_feature_shift) / self.cast_feature_scale
        return self._fitted(x, "feature", self.features, self.wide_inputs)

    def fitted_targets(self, y: Tensor, dtype: torch.dtype | None = None) -> Tensor:
        """Raw targets (batch, out_features) in fitted units, in `fitted_dtype` (or in
        ``dtype``, as `fitted_inputs`)."""
        if dtype is not None and dtype != self.fitted_dtype:
            return self._fitted_in(y, "target", self.targets, dtype)
        if y.dtype is self.cast_dtype and not self.wide_targets:
            if not self.targets:
                return y
            return (y - self.cast_target_shift) / self.cast_target_scale
        return self._fitted(y, "target", self.targets, self.wide_targets)

    def _fitted_in(self, values: Tensor, kind: str, scaled: bool, dtype: torch.dtype) -> Tensor:
        """Values in fitted units in another ``dtype`` than the model's: standardized in
        float64, then rounded once (as a model of that dtype computes them)."""
        if not scaled:
            return values.to(dtype)
        shift, scale = (self.get_buffer(f"{kind}_{name}") for name in ("shift", "scale"))
        return ((values.double() - shift.double()) / scale.double()).to(dtype)

    def original_targets(self, out: Tensor) -> Tensor:
        """Predictions in fitted units back in original units (computed in float64 where
        float32 cannot carry the targets' shifts, and rounded once)."""
        if not self.targets:
            return out
        if self.wide_targets and out.dtype != torch.float64:
            wide = out.double() * self.target_scale.double() + self.target_shift.double()
            return wide.to(out.dtype)
        if out.dtype is not self.cast_dtype:
            self._follow_dtype()
        return out * self.cast_target_scale + self.cast_target_shift

    def _fitted(self, values: Tensor, kind: str, scaled: bool, wide: bool) -> Tensor:
        """`fitted_inputs` or `fitted_targets` (``kind``) for values of another dtype than
        the model's, or statistics float32 cannot carry."""
        self._follow_dtype()
        dtype = self.cast_dtype
        if scaled and values.dtype == dtype and not wide:
            cast_shift, cast_scale = (self.get_buffer(cast_name(f"{kind}_{name}"))
                                      for name in ("shift", "scale"))  # fmt: skip
            return (values - cast_shift) / cast_scale
        # float64 values, or statistics float32 cannot carry: standardized in float64,
        # then rounded once
        return self._fitted_in(values, kind, scaled, dtype)

    def _follow_dtype(self) -> None:
        """Make the cast copies again where the model's dtype changed (``double()``,
        ``float()``, ``to(dtype)``), from the float64 statistics."""
        if self.cast_feature_shift.dtype != self.cast_dtype:
            self._make_casts()

    def _make_casts(self) -> None:
        """The cast copies, made again from the float64 statistics in the model's dtype."""
        dtype = self.fitted_dtype
        for name in APPLIED:
            setattr(self, cast_name(name), self.get_buffer(name).to(dtype))
        self.cast_dtype = dtype

    def _sizes(self) -> tuple[int, int]:
        return len(self.feature_shift), len(self.target_shift)

    def _note(self) -> None:
        current = self.standardization
        self.features = current is not None and current.features
        self.targets = current is not None and current.targets
        self.wide_inputs = self.features and not _carried(self.feature_shift, self.feature_scale)
        self.wide_targets = self.targets and not _carried(self.target_shift, self.target_scale)
        self._make_casts()


def cast_name(name: str) -> str:
    """The buffer holding statistic ``name`` in the model's dtype."""
    return f"cast_{name}"


def _carried(shift: Tensor, scale: Tensor) -> bool:
    """Whether float32 carries every shift against its column's scale."""
    return bool(float32_carries(shift.abs(), scale).all())


def _loaded(module: Scaling, incompatible_keys: Any) -> None:
    """After ``load_state_dict`` (a checkpoint): the statistics may have changed."""
    module._note()
