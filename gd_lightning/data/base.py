"""What every DataModule here shares: splits, shuffling and loaders over in-memory tensors."""

import unicodedata
from collections.abc import Callable, Iterator
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningDataModule
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from gd_lightning.analysis import LeastSquaresReference
from gd_lightning.data.identity import (
    DATA_IDENTITY,
    check_same_files,
    file_identity,
    saved_identity,
)
from gd_lightning.data.mapped import MappedDataset
from gd_lightning.data.reference import OnePass, reference_of
from gd_lightning.data.sampler import (
    EpochBatchSampler,
    FullBatch,
    GatherDataset,
    RowGroupBatchSampler,
    batch_as_is,
)
from gd_lightning.data.standardize import (
    ColumnMoments,
    Standardization,
    float32_carries,
    float32_rounding,
)
from gd_lightning.data.streamed import ParquetRows
from gd_lightning.errors import InputError, check_argument
from gd_lightning.resume import changed_settings, resume_refusal

#: rows checked at a time
BLOCK_ROWS = 1 << 20

#: a split: rows held as tensors, or rows read from files a batch at a time
Rows = TensorDataset | MappedDataset | ParquetRows


def dtype_for(precision: str | int | None) -> torch.dtype:
    """The data's dtype for a Trainer's ``precision``: float64 for ``"64-true"`` (or
    ``64``), float32 otherwise.

    Examples:
        >>> dtype_for("64-true"), dtype_for("bf16-mixed"), dtype_for(None)
        (torch.float64, torch.float32, torch.float32)
    """
    return torch.float64 if str(precision) in ("64", "64-true") else torch.float32


def default_names(stem: str, count: int) -> list[str]:
    """The names of ``count`` columns given none: ``x0, x1, ...`` for inputs (``stem``
    ``"x"``), ``y0, ...`` for targets; the one place they are made.

    Examples:
        >>> default_names("x", 3), default_names("y", 1)
        (['x0', 'x1', 'x2'], ['y0'])
    """
    return [f"{stem}{i}" for i in range(count)]


def normalized_name(name: str) -> str:
    """A column name as the package compares it: without surrounding spaces, in Unicode's
    composed form (NFC), so that "café" typed and "café" saved by a program that writes
    decomposed accents (NFD) are one name."""
    return unicodedata.normalize("NFC", name.strip())


class TensorDataModule(LightningDataModule):
    """Base class of the DataModules: a table of features and targets held as tensors.

    A subclass sets ``feature_names`` and ``target_names`` in its ``__init__``
    (so ``in_features`` and ``out_features`` are known before any data is read)
    and implements `load`. This class checks the data, splits it and serves
    ``TensorDataset``/``DataLoader`` pairs: batches are ``(x, y)`` with ``x`` of
    shape (batch, in_features) and ``y`` of shape (batch, out_features), float32
    (float64 under ``Trainer(precision="64-true")``).

    Precision is never lost silently. Data whose source holds more digits than float32
    (a CSV file, a float64 array) is read in float64, and its statistics come from those
    float64 values; a fit in float32 then checks every column against
    [`float32_carries`][gd_lightning.data.standardize.float32_carries] (float32's
    rounding of the column's largest value against its standard deviation over the
    training rows). Ordinary data is stored in float32, as the model computes. A
    feature column float32 cannot carry keeps its float64 values when features are
    standardized (the model standardizes them in float64 and rounds only the
    standardized values), and is refused in one line naming it otherwise; so is such a
    target column, whose predictions float32 could not carry either. Validate, test and
    predict keep float64 features where the trained model's standardization needs
    them (`read_for`).

    The rows not held out for validation or testing form the training split, in
    their original order. The predict loader serves every row, in order. The
    validation and test loaders exist only when ``val_fraction`` and
    ``test_fraction`` hold rows out: a fit without a validation split then runs no
    validation, and ``trainer.validate``/``trainer.test`` say there is no loader.

    Args:
        batch_size: rows per batch; ``None`` means the whole split in one batch
            (full-batch gradient descent, as tutorials 1, 2 and 5 do).
        shuffle: reshuffle the training rows every epoch, in an order fixed by
            ``seed`` and the epoch number. A full batch is never shuffled: the order
            of its rows changes nothing but rounding.
        val_fraction: share of rows held out for validation, in [0, 1); 0 means none.
        test_fraction: share of rows held out for testing, in [0, 1); 0 means none.
        seed: seeds the split, the shuffling and any random data a subclass draws.
        num_workers: ``DataLoader`` worker processes; 0 loads in the main process.
        standardize_features: fit the model to inputs scaled to mean 0 and standard
            deviation 1 (statistics from the training split only; constant columns,
            such as a column of ones, stay as they are). The loaders still serve raw
            values: the model applies the scaling, so its predictions, reports and
            checkpoints are always in original units from raw inputs.
        standardize_targets: the same for the targets.
    """

    feature_names: list[str]
    target_names: list[str]
    #: settings a resumed fit may change: they decide how the rows are read, not which
    RESUMABLE_SETTINGS = frozenset({"num_workers", "memory_map"})
    #: the settings naming the data's files (`data_files`), which a resumed fit may
    #: reach by other paths when its checkpoint identifies them by content
    FILE_OPTIONS: frozenset[str] = frozenset()
    #: arguments kept out of the saved hyperparameters (and so out of checkpoints): the
    #: data itself, given in memory
    NOT_SAVED: frozenset[str] = frozenset()

    def __init__(
        self,
        batch_size: int | None = None,
        shuffle: bool = True,
        val_fraction: float = 0.0,
        test_fraction: float = 0.0,
        seed: int = 0,
        num_workers: int = 0,
        standardize_features: bool = False,
        standardize_targets: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=sorted(self.NOT_SAVED))
        if batch_size is not None:
            check_argument("batch_size", batch_size, Integral, "a whole number of rows or None")
        for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            check_argument(name, value, Real, "a number in [0, 1)")
        check_argument("seed", seed, Integral, "a whole number")
        check_argument("num_workers", num_workers, Integral, "a whole number")
        for name, flag in (("shuffle", shuffle), ("standardize_features", standardize_features),
                           ("standardize_targets", standardize_targets)):  # fmt: skip
            check_argument(name, flag, bool, "true or false")
        if batch_size is not None and batch_size < 1:
            raise InputError(
                f"batch_size must be a positive number of rows, got {batch_size}: "
                f"use null (None) for the full batch"
            )
        for name, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0 <= fraction < 1:
                raise InputError(f"{name} must be in [0, 1), got {fraction}")
        if val_fraction + test_fraction >= 1:
            raise InputError(
                f"val_fraction + test_fraction = {val_fraction + test_fraction} leaves no "
                f"training rows: keep their sum below 1"
            )
        if num_workers < 0:
            raise InputError(f"num_workers must be 0 or more, got {num_workers}")
        if not 0 <= seed < 1 << 64:
            raise InputError(
                f"seed must be between 0 and {(1 << 64) - 1} (a 64-bit seed), got {seed}: "
                f"choose a smaller seed"
            )
        self.batch_size = batch_size
        self.shuffle = shuffle
        #: each data file's identity (`file_identity`) as a fit read it, by option
        self._identity: dict[str, Any] | None = None
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.seed = seed
        self.num_workers = num_workers
        self.standardize_features = standardize_features
        self.standardize_targets = standardize_targets
        # A split held out defines the loader; without one the DataModule has none, and
        # Lightning (which asks whether val_dataloader is defined) skips validation
        # without a word instead of warning about an empty loader.
        if val_fraction > 0:
            self.val_dataloader = self._validation_loader  # type: ignore[method-assign]
        if test_fraction > 0:
            self.test_dataloader = self._test_loader  # type: ignore[method-assign]
        self.standardization: Standardization | None = None
        #: the trained model's standardization, which validate, test and predict read
        #: the inputs for (`read_for`)
        self.reader_standardization: Standardization | None = None
        #: per feature column, its largest magnitude over all rows, where the source
        #: holds more digits than the data's dtype (``None`` otherwise: nothing to judge)
        self._magnitude: Tensor | None = None
        #: the feature and target columns float32 does not carry against their training
        #: rows' spread (judged only where the source holds more digits)
        self._misfits: list[int] = []
        self._target_misfits: list[int] = []
        self._spread: Tensor | None = None
        self._target_spread: Tensor | None = None
        self._target_magnitude: Tensor | None = None
        #: the data's dtype: ``None`` follows the Trainer's precision (float64 under
        #: ``"64-true"``, float32 otherwise); the command line sets it before loading
        self.dtype: torch.dtype | None = None
        self.full_set: Rows | None = None
        self.train_set: Rows | None = None
        self.val_set: Rows | None = None
        self.test_set: Rows | None = None
        self._device_sets: dict[int, tuple[TensorDataset, TensorDataset]] = {}
        self._reference: tuple[Any, torch.dtype, LeastSquaresReference | None] | None = None
        #: the training rows summed up in one pass (`OnePass`), for data read from a file
        #: a batch at a time (``None`` for data held as tensors)
        self.training_pass: OnePass | None = None

    @property
    def in_features(self) -> int:
        """The number of input columns."""
        return len(self.feature_names)

    @property
    def out_features(self) -> int:
        """The number of target columns."""
        return len(self.target_names)

    @property
    def data_dtype(self) -> torch.dtype:
        """`dtype`, or the Trainer's: float64 under ``precision="64-true"``."""
        if self.dtype is not None:
            return self.dtype
        return dtype_for(self.trainer.precision if self.trainer is not None else None)

    @property
    def labeled(self) -> bool:
        """Whether the data holds its targets (a fit needs them, predict does not)."""
        return True

    def load(self) -> tuple[Tensor, Tensor]:
        """Return all rows as ``(features, targets)``, tensors of 2 dimensions; without
        targets, ``targets`` has 0 columns. Float32, `data_dtype`, or float64 where the
        source holds more digits than float32 (this class narrows them where that
        loses nothing a fit needs)."""
        raise NotImplementedError(f"{type(self).__name__} must implement load()")

    def use_columns(self, features: list[str] | None, targets: list[str] | None) -> None:
        """Serve these columns from now on (a trained model's, to validate, test or
        predict): here, the data's own columns only; other ones are refused in one line.
        [`TabularDataModule`][gd_lightning.TabularDataModule] reads the columns it is given, by
        name."""
        features = self.feature_names if features is None else features
        targets = self.target_names if targets is None else targets
        if (features, targets) != (self.feature_names, self.target_names):
            raise InputError(
                f"the model reads {', '.join(features)} -> {', '.join(targets)}, but "
                f"{type(self).__name__} has {', '.join(self.feature_names)} -> "
                f"{', '.join(self.target_names)}: use the data the model was trained on"
            )

    def use_columns_of(self, model: Any) -> None:
        """Serve the columns a trained ``model`` reads, where its hyperparameters name
        them (`use_columns`); a model without names leaves the columns as they are."""
        known = getattr(model, "hparams", {}).get("feature_names")
        if not known:
            return
        targets = list(model.hparams.get("target_names") or [])
        if (list(known), targets) != (self.feature_names, self.target_names):
            self.use_columns(list(known), targets)

    def read_for(self, model: Any) -> None:
        """Read the data as a trained ``model`` reads it, to validate, test or predict: its
        columns (`use_columns_of`), and, for the inputs it standardizes, every digit its
        statistics need (features float32 cannot carry against the model's scales stay
        float64). `setup` calls it with the Trainer's model, and the loaders again once
        Lightning has loaded a checkpoint's weights (``ckpt_path``) into it."""
        self.use_columns_of(model)
        self.reader_standardization = getattr(model, "standardization", None)

    def check_labeled(self, stage: str) -> None:
        """Refuse to fit, validate or test on data without its targets."""
        if not self.labeled:
            raise InputError(f"the data has no targets: {stage} needs them (predict does not)")

    def setup(self, stage: str | None = None) -> None:
        """Load, check and split the data (later calls reuse the first result, unless the
        columns or the precision a trained model needs change it); read the data for a
        trained model (`read_for`); refuse, for a fit in float32, a column float32 cannot
        carry that is not standardized; at the start of a fit, hand the data's column
        names and standardization statistics to the model."""
        model = self.trainer.lightning_module if self.trainer is not None else None
        if model is not None:
            self.read_for(model)
        if stage in ("fit", "validate", "test"):
            self.check_labeled(stage)
        if self.full_set is None or self._needs_more_digits(stage):
            self._load_and_split(stage)
            self._reference = None
            self._identity = None  # the files as read now: identified below, for a fit
        if stage == "fit":
            self._refuse_misfits()
            if self._identity is None:
                self._identity = self.identify_files()
        if stage == "fit" and model is not None:
            self.share_columns_and_scaling(model)

    def data_files(self) -> dict[str, Path]:
        """The files the data is read from, by option (``{"csv_path": ...}``): none here,
        where the data is drawn or built in memory (its settings say which it is)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """What identifies the data the fit read, which Lightning keeps in the fit's
        checkpoints: each file's size and SHA-256 (`file_identity`), read as the fit
        starts. A resumed fit on other data is refused (`load_state_dict`)."""
        identity = self._identity
        return {DATA_IDENTITY: identity} if identity else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Refuse, in one line, to resume a fit on other data than it started on: a file
        whose size or content changed. The same file reached by another path is the
        same data. (Validating, testing or predicting from a fit's checkpoint reads any
        data.)"""
        fitting = self.trainer is not None and self.trainer.state.fn == TrainerFn.FITTING
        if fitting:
            self.check_same_data(saved_identity({"state": state_dict}))

    def check_resume(self, checkpoint: dict[str, Any], where: str) -> None:
        """Refuse, in one line, to resume the fit ``checkpoint`` holds (read from
        ``where``) on other data than it started on: other data settings (the ones that
        decide how rows are read, not which, aside: `RESUMABLE_SETTINGS`; and the files'
        paths where the checkpoint identifies the files by content), or files whose size
        or content changed (`check_same_data`)."""
        identity = saved_identity(checkpoint)
        saved = checkpoint.get("datamodule_hyper_parameters")
        if isinstance(saved, dict):
            free = self.RESUMABLE_SETTINGS | (self.FILE_OPTIONS if identity else frozenset())
            changes = changed_settings(saved, dict(self.hparams), free)
            if changes:
                raise resume_refusal(where, "data", changes)
        self.check_same_data(identity)

    def check_same_data(self, saved: dict[str, Any] | None) -> None:
        """Refuse, in one line, to resume on files other than ``saved`` identifies (the
        identities a checkpoint holds, `saved_identity`; ``None``: nothing to compare)."""
        if saved is not None:
            current = self._identity if self._identity is not None else self.identify_files()
            check_same_files(saved, current, self.data_files())

    def identify_files(self) -> dict[str, dict[str, Any]]:
        """Each data file's identity now (`file_identity`), by option."""
        return {option: file_identity(path) for option, path in self.data_files().items()}

    def least_squares_reference(self, model: Any) -> LeastSquaresReference | None:
        """The least-squares facts of the training split for ``model`` (the optimum, its
        loss, the curvature: `reference_of`), built the first time a fit asks and kept
        for the rest of it (for this model, at this precision), so the monitor, the
        figures and the report share one; ``None`` where the model is not linear least
        squares, or the split is read a batch at a time (``memory_map``) and the model's
        design is not affine in its inputs."""
        dtype = self.data_dtype  # the fit's precision, which the reference's figures follow
        kept = self._reference
        if kept is None or kept[0] is not model or kept[1] != dtype:
            kept = self._reference = (model, dtype, reference_of(self, model))
        return kept[2]

    def share_columns_and_scaling(self, model: Any) -> None:
        """Give ``model`` what it learns from the data, in one call: the columns' names
        (``model.use_columns``, kept in its hyperparameters and so in checkpoints)
        and the training split's standardization statistics (``model.set_standardization``;
        ``None`` when nothing is standardized). `setup` calls it as a fit starts,
        after the data is loaded; a model that cannot take statistics asked for is
        refused in one line."""
        use = getattr(model, "use_columns", None)
        if use is not None:
            use(self.feature_names, self.target_names)
        receive = getattr(model, "set_standardization", None)
        if receive is not None:
            receive(self.standardization)
        elif self.standardization is not None:
            raise InputError(
                f"{type(model).__name__} has no set_standardization(), so it cannot learn in "
                f"standardized units: set data.standardize_features and "
                f"data.standardize_targets to false, or use a gd_lightning model"
            )

    def _load_and_split(self, stage: str | None = None) -> None:
        """Load, check and split the data; compute the standardization from the training
        rows as loaded (float64 where the source holds more digits); store the rows in
        the data's dtype, but for features the fit or the model reading them for
        ``stage`` needs in float64 (`_features_in_float64`)."""
        self.training_pass = None
        x, y = self.load()
        self._check(x, y)
        train_rows, val_rows, test_rows = self._split(len(x))
        self._judge(x, y, train_rows)
        dtype = self.data_dtype
        x = x.to(torch.float64 if self._features_in_float64(stage) else dtype)
        # targets in the model's dtype: a target float32 cannot carry is refused for a fit
        self.full_set = GatherDataset(x, y.to(dtype))
        # without held-out rows the training split is the data itself, not a copy
        self.train_set = self.full_set if train_rows is None else self.full_set.subset(train_rows)
        self.val_set = self.full_set.subset(val_rows)
        self.test_set = self.full_set.subset(test_rows)

    def _judge(self, x: Tensor, y: Tensor, train_rows: Tensor | None) -> None:
        """The training rows' statistics (the standardization, when asked for) and, for
        data loaded with more digits than the data's dtype keeps, the columns float32
        does not carry; ``x`` and ``y`` are all rows, as loaded."""

        def training_blocks() -> Iterator[tuple[Tensor, Tensor]]:
            count = len(x) if train_rows is None else len(train_rows)
            for start in range(0, count, BLOCK_ROWS):  # bounded temporaries
                if train_rows is None:
                    yield x[start : start + BLOCK_ROWS], y[start : start + BLOCK_ROWS]
                else:
                    rows = train_rows[start : start + BLOCK_ROWS]
                    yield x.index_select(0, rows), y.index_select(0, rows)

        def magnitude(values: Tensor) -> Tensor:
            blocks = [values[i : i + BLOCK_ROWS].abs().amax(0).double()
                      for i in range(0, len(values), BLOCK_ROWS)]  # fmt: skip
            return torch.stack(blocks).amax(0)

        self._judge_moments(lambda: ColumnMoments.of_chunks(training_blocks()),
                            magnitude(x) if len(x) else None,
                            magnitude(y) if len(y) and y.shape[1] else None,
                            x.dtype, y.dtype)  # fmt: skip

    def _judge_moments(
        self,
        training_moments: Callable[[], tuple[ColumnMoments, ColumnMoments]],
        magnitude: Tensor | None,
        target_magnitude: Tensor | None,
        x_dtype: torch.dtype,
        y_dtype: torch.dtype,
    ) -> None:
        """`_judge` from the training rows' moments (``training_moments()``, asked for
        only where they are needed) and every row's largest magnitudes."""
        self.standardization = None
        self._magnitude = self._spread = None
        self._target_magnitude = self._target_spread = None
        self._misfits, self._target_misfits = [], []
        standardizing = self.labeled and (self.standardize_features or self.standardize_targets)
        narrowed = self.data_dtype != torch.float64
        judged_x = narrowed and x_dtype == torch.float64
        judged_y = narrowed and y_dtype == torch.float64 and self.labeled
        if not (standardizing or judged_x or judged_y):
            return
        x_moments, y_moments = training_moments()
        if standardizing:
            self.standardization = Standardization.from_moments(
                x_moments, y_moments, self.standardize_features, self.standardize_targets
            )
        if judged_x and magnitude is not None:
            self._magnitude, self._spread = magnitude, x_moments.spread
            self._misfits = _misfits(magnitude, x_moments)
        if judged_y and target_magnitude is not None:
            self._target_magnitude, self._target_spread = target_magnitude, y_moments.spread
            self._target_misfits = _misfits(target_magnitude, y_moments)

    def _features_in_float64(self, stage: str | None) -> bool:
        """Whether the features are kept in float64 though the data's dtype is float32:
        to fit (or with no stage), where a column float32 does not carry is standardized
        here; to validate, test or predict, where the trained model's standardization
        (`read_for`) needs more digits than float32 holds."""
        if self.data_dtype == torch.float64 or self._magnitude is None:
            return False
        if stage in (None, "fit"):
            return bool(self._misfits) and self.standardize_features
        reader = self.reader_standardization
        if reader is None or not reader.features:
            return False
        shift, scale = reader.feature_shift.cpu(), reader.feature_scale.cpu()
        standardized = (shift != 0) | (scale != 1)
        return bool((standardized & ~float32_carries(self._magnitude, scale)).any())

    def _needs_more_digits(self, stage: str | None) -> bool:
        """Whether the rows as stored lack digits ``stage`` needs (a run in another
        precision than the one they were read for, a model whose statistics need float64
        features): then they are read again."""
        full_set = self.full_set
        if isinstance(full_set, TensorDataset):
            stored = [tensor.dtype for tensor in full_set.tensors[:2]]
        else:
            stored = list(getattr(full_set, "dtypes", ()))
        wide = self.data_dtype == torch.float64
        wanted = [wide or self._features_in_float64(stage), wide]
        pairs = zip(wanted, stored, strict=False)
        return any(need and dtype != torch.float64 for need, dtype in pairs)

    def _refuse_misfits(self) -> None:
        """For a fit in float32, refuse in one line a feature column float32 cannot carry
        that is not standardized, and any such target column."""
        fixes = "--data.standardize_features true"
        for kind, misfits, names, magnitude, spread in (
            ("column", self._misfits, self.feature_names, self._magnitude, self._spread),
            ("target column", self._target_misfits, self.target_names, self._target_magnitude,
             self._target_spread),
        ):  # fmt: skip
            if not misfits or (kind == "column" and self.standardize_features):
                continue
            assert magnitude is not None and spread is not None
            column = misfits[0]
            largest, std = float(magnitude[column]), float(spread[column])
            fix = (
                f"standardize it ({fixes}), or train with --trainer.precision 64-true"
                if kind == "column"
                else "train with --trainer.precision 64-true (its predictions need float64 "
                "too), or subtract a constant from the column"
            )
            raise InputError(
                f"{kind} {names[column]!r} varies by {std:.3g} (its standard deviation) "
                f"at values up to {largest:.10g}, where float32 rounds by up to "
                f"{float32_rounding(largest):.3g}: float32 cannot carry it; {fix}"
            )

    def _check(self, x: Tensor, y: Tensor, first_row: int = 0) -> None:
        """Refuse data of the wrong shape or with missing or infinite values (``x`` and
        ``y`` may be a block of the data starting at data row ``first_row``)."""
        target_names = self.target_names if self.labeled else []
        for what, tensor, names in (
            ("features", x, self.feature_names),
            ("targets", y, target_names),
        ):
            if tensor.ndim != 2 or tensor.shape[1] != len(names):
                raise InputError(
                    f"{what} have shape {tuple(tensor.shape)}, expected (rows, {len(names)})"
                )
            for start in range(0, len(tensor), BLOCK_ROWS):  # bounded temporaries
                block = tensor[start : start + BLOCK_ROWS]
                if bool(torch.isfinite(block.sum())):
                    continue  # finite only when every value is (else it may overflow: look)
                bad = ~torch.isfinite(block)
                if bad.any():
                    row, column = (int(i) for i in bad.nonzero()[0])
                    value = tensor[start + row, column].item()
                    raise InputError(
                        f"{what[:-1]} {names[column]!r} is {value} in data row "
                        f"{first_row + start + row + 1}: remove or fill missing and infinite values"
                    )
        if len(x) != len(y):
            raise InputError(
                f"{len(x)} rows of features but {len(y)} rows of targets: they must match"
            )

    def _split(self, num_rows: int) -> tuple[Tensor | None, Tensor, Tensor]:
        """Row indices of the train, validation and test splits, each in file order;
        ``None`` for the training split when it is every row."""
        counts = {}
        for name, fraction in (
            ("val_fraction", self.val_fraction),
            ("test_fraction", self.test_fraction),
        ):
            counts[name] = round(num_rows * fraction)
            if fraction > 0 and counts[name] < 2:
                raise InputError(
                    f"{name}={fraction} of {num_rows} rows holds out {counts[name]} row(s); "
                    f"R² needs at least 2: raise {name} or set it to 0"
                )
        num_val, num_test = counts["val_fraction"], counts["test_fraction"]
        if num_val + num_test == 0:
            nothing = torch.zeros(0, dtype=torch.long)
            return None, nothing, nothing
        if num_rows - num_val - num_test < 2:
            raise InputError(
                f"only {num_rows - num_val - num_test} of {num_rows} rows are left for "
                f"training, at least 2 are needed: lower val_fraction and test_fraction"
            )
        order = torch.randperm(num_rows, generator=torch.Generator().manual_seed(self.seed))
        val_rows, test_rows = order[:num_val], order[num_val : num_val + num_test]
        train_rows = order[num_val + num_test :]
        return train_rows.sort().values, val_rows.sort().values, test_rows.sort().values

    def rows_per_batch(self, num_rows: int) -> int:
        """The rows in each batch of a loader over ``num_rows`` rows (all of them for
        the full batch); the last batch may hold fewer."""
        return min(self.batch_size or num_rows, num_rows)

    def _loader(self, dataset: Rows | None, train: bool = False) -> Any:
        if dataset is None:
            raise RuntimeError("call setup() before asking for a dataloader")
        num_rows = len(dataset)
        batch_size = self.rows_per_batch(num_rows)
        replicas, rank = self._processes()
        device = torch.device("cpu")
        if isinstance(dataset, TensorDataset):
            dataset = self._on_device(dataset)
            device = dataset.tensors[0].device
            if batch_size == num_rows and replicas == 1 and self.num_workers == 0:
                # no loader machinery for one batch an epoch
                return FullBatch(*(t.contiguous() for t in dataset.tensors))
        # one sampler element is one whole batch, gathered by the dataset with one
        # indexing operation per tensor, instead of a __getitem__ per row and a collate
        shuffle = train and self.shuffle and batch_size < num_rows
        sampler: EpochBatchSampler
        if isinstance(dataset, ParquetRows):  # group after group, each read once an epoch
            sampler = RowGroupBatchSampler(
                dataset.group_bounds, batch_size, shuffle, self.seed, replicas, rank
            )
        else:
            sampler = EpochBatchSampler(
                num_rows, batch_size, shuffle, self.seed, replicas, rank, device
            )
        return DataLoader(
            dataset,
            sampler=sampler,
            batch_size=None,  # the sampler hands out batches
            collate_fn=batch_as_is,  # type: ignore[arg-type]  # batches come assembled
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def _processes(self) -> tuple[int, int]:
        """``(number of processes, this one's rank)`` of the Trainer running this data."""
        trainer = self.trainer
        if trainer is None:
            return 1, 0
        return trainer.world_size, trainer.global_rank

    def _on_device(self, dataset: TensorDataset) -> TensorDataset:
        """On a GPU (and without worker processes), the split moved there once: batches
        are then gathered on the device, with no host-to-device copy per step."""
        trainer = self.trainer
        device = trainer.strategy.root_device if trainer is not None else None
        if device is None or device.type == "cpu" or self.num_workers > 0:
            return dataset
        moved = self._device_sets.get(id(dataset))
        if moved is None or moved[0] is not dataset:
            moved = (dataset, GatherDataset(*(t.to(device) for t in dataset.tensors)))
            self._device_sets[id(dataset)] = moved
        return moved[1]

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, train=True)

    def _validation_loader(self) -> Any:
        """The validation split's loader: this DataModule's ``val_dataloader`` when
        ``val_fraction`` is above 0."""
        self._read_for_restored("validate")
        return self._loader(self.val_set)

    def _test_loader(self) -> Any:
        """The test split's loader: this DataModule's ``test_dataloader`` when
        ``test_fraction`` is above 0."""
        self._read_for_restored("test")
        return self._loader(self.test_set)

    def predict_dataloader(self) -> DataLoader:
        if self._processes()[0] > 1:
            raise InputError(
                "predict writes one CSV from one process: run it with --trainer.devices 1 "
                "(and no --trainer.strategy ddp)"
            )
        self._read_for_restored("predict")
        return self._loader(self.full_set)

    def _read_for_restored(self, stage: str) -> None:
        """Outside a fit, read the data again for the Trainer's model (`read_for`) where
        it changed since `setup`: Lightning loads a checkpoint given as ``ckpt_path``
        after ``setup``, and before it asks for the loaders."""
        trainer = self.trainer
        if trainer is None or trainer.state.fn == TrainerFn.FITTING:
            return
        model = trainer.lightning_module
        if model is not None:
            self.read_for(model)
        if self.full_set is None or self._needs_more_digits(stage):
            self._load_and_split(stage)


def _misfits(magnitude: Tensor, moments: ColumnMoments) -> list[int]:
    """The columns float32 does not carry: values up to ``magnitude`` (every row's)
    against the training rows' spread, constant columns aside."""
    carried = float32_carries(magnitude, moments.spread) | moments.constant
    return [int(column) for column in (~carried).nonzero().flatten()]
