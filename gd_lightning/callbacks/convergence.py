"""Honest convergence: the optimum as a reference, the curvature's advice, ``lr: auto``,
stopping rules, and a guard against a run that blows up."""

import math
from typing import TYPE_CHECKING, Any, cast

import lightning.pytorch as pl
import torch
from lightning.pytorch import Callback
from lightning.pytorch.trainer.states import TrainerFn, TrainerStatus
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from gd_lightning.analysis import CONDITION_TO_STANDARDIZE, LeastSquaresReference, fraction
from gd_lightning.cadence import is_last_batch, is_logged_step
from gd_lightning.callbacks._common import checkpoint_folder, reference_from, shown_path
from gd_lightning.errors import DivergenceError, InputError
from gd_lightning.optim import GradientDescent

if TYPE_CHECKING:
    from gd_lightning.models.base import RegressionModule


class ConvergenceMonitor(Callback):
    """Measure a fit against the best fit possible, and stop it when it is done or broken.

    Every model here is linear in its parameters, so the least-squares optimum of
    the training split is known exactly (float64 least squares on the model's
    design matrix; the minimum-norm solution when columns are collinear). With it
    this callback:

    - at the start of a fit (``setup``), takes that reference (`reference`) of the
      training split from its DataModule
      ([`least_squares_reference`][gd_lightning.TensorDataModule.least_squares_reference]),
      and chooses the learning rate of a model whose ``lr`` is ``"auto"``: for
      full-batch gradient descent the constant rate predicted to bring the model's
      starting parameters within ``target_gap`` (or, without one, ``report_gap``) of
      the optimum soonest ([`fastest_lr`][gd_lightning.LeastSquaresReference.fastest_lr],
      never near the stable bound), for minibatches ``1 / λ_max`` (half the stable
      bound);
    - prints the curvature of the loss (the Hessian's largest and smallest
      eigenvalue, condition number) and the optimum; for plain gradient descent also
      the largest stable and the fastest learning rate from the starting point, and
      the predicted number of epochs to come within that gap of the optimum
      (other optimizers get no prediction); names a badly scaled design (columns in
      very different units) with its condition number and the fix; says so when
      ``target_gap`` is below what the fit's float precision resolves (and stops at
      that smallest gap); and warns in one line when the learning rate is at or above
      the stable bound;
    - logs ``train/excess_loss`` (the training split's loss minus the optimum's) and
      ``train/gap`` (that excess relative to the optimum) once an epoch, measured
      with the parameters of the epoch's last step before its update, the step
      Lightning writes the epoch's values at (logged ``on_epoch``, so every callback
      sees them as the epoch ends);
    - stops the fit at the end of the first epoch whose last update brings the gap to
      at most ``target_gap``, the gap measured in float64 at the parameters the
      epoch ends with;
    - prints at the end how far the final loss is above the optimum;
    - stops a run whose logged ``train/loss`` becomes NaN or infinite, or grows above
      ``divergence_factor`` times its scale (the larger of the first step's loss and
      the loss of predicting zero), by raising [`DivergenceError`][gd_lightning.DivergenceError]
      with one line naming the learning rate and the stable bound; the parameters
      after each epoch's last update, and any parameters a checkpoint is about to
      save (``on_save_checkpoint``), are checked the same way, by their exact loss:
      no checkpoint holds blown-up parameters.

    For a plateau rule (stop when the loss improves by less than ``tol`` for
    ``n_iter_no_change`` epochs, as scikit-learn's ``SGDRegressor`` does), add
    Lightning's ``EarlyStopping(monitor="train/epoch_mse", min_delta=tol,
    patience=n_iter_no_change)``.

    The reference needs a [`TensorDataModule`][gd_lightning.TensorDataModule] and a
    [`RegressionModule`][gd_lightning.RegressionModule]: data held as tensors, or read a batch
    at a time (``memory_map``) for a model whose design is affine in its inputs (the
    linear model); with other data or models only the divergence guard works.

    A gap is the excess loss as a fraction of the optimum's loss; where the data can be
    fitted exactly (the optimum's loss is rounding at the fit's precision), the excess
    itself, absolute, and the lines say so
    ([`LeastSquaresReference.gap_scale`][gd_lightning.LeastSquaresReference.gap_scale]).

    Args:
        target_gap: stop once the loss is within this fraction of the optimum (0.01
            is 1%); ``None`` never stops early. ``lr: auto`` and the start-of-fit
            prediction aim at it when it is given.
        report_gap: the gap the start-of-fit prediction (and ``lr: auto``) aim at when
            no ``target_gap`` is given.
        divergence_factor: how many times its scale the loss may grow before the run
            counts as diverged.
        verbose: print the start and end blocks.
    """

    def __init__(
        self,
        target_gap: float | None = None,
        report_gap: float = 0.01,
        divergence_factor: float = 1e6,
        verbose: bool = True,
    ) -> None:
        for name, value in (("target_gap", target_gap), ("report_gap", report_gap)):
            # a gap is a finite fraction: target_gap 0 asks for the optimum itself; a
            # report_gap of 0 would predict epochs to a point never reached
            low_ok = value is not None and (value > 0 or (value == 0 and name == "target_gap"))
            if value is not None and not (low_ok and value < math.inf):
                raise InputError(
                    f"convergence.{name} must be a finite fraction of the best loss, "
                    f"{'at or ' if name == 'target_gap' else ''}above 0 (0.01 is 1%), got "
                    f"{value}: set convergence.{name}"
                )
        if not 1 < divergence_factor <= math.inf:  # nan fails too
            raise InputError(
                f"convergence.divergence_factor must be above 1 (how many times its scale "
                f"the loss may grow), got {divergence_factor}: set convergence.divergence_factor"
            )
        self.target_gap = target_gap
        self.report_gap = report_gap
        self.divergence_factor = divergence_factor
        self.verbose = verbose
        #: the least-squares facts of the current fit's training split
        self.reference: LeastSquaresReference | None = None
        #: full-batch epochs to within `aim` predicted at the start of the last fit
        self.predicted_epochs: float | None = None
        #: the loss a blow-up is measured against: the larger of the first loss checked
        #: in the fit and the loss of predicting zero (None until the first check)
        self.loss_scale: float | None = None

    def prepare(self, datamodule: Any, pl_module: "pl.LightningModule") -> None:
        """Take the reference of the fit's training split from its DataModule
        (`TensorDataModule.least_squares_reference`, built once a fit), refuse a loss too
        large for the model's float type, and choose the rate of ``lr: "auto"``. ``setup``
        does it as a fit starts; the command line calls it before the run starts, to
        refuse a setting that cannot work before anything is written."""
        self.reference = reference_from(datamodule, pl_module)
        if self.reference is not None:
            check_loss_fits(self.reference, _theta(pl_module), _dtype(pl_module))
        if pl_module.hparams.get("lr") == "auto":
            model = cast("RegressionModule", pl_module)
            model.auto_lr = auto_lr(self.reference, datamodule, _theta(model), self.aim)

    @property
    def aim(self) -> float:
        """The gap ``lr: auto`` and the start-of-fit prediction aim at: ``target_gap``
        when given, else ``report_gap``."""
        return self.report_gap if self.target_gap is None else self.target_gap

    def setup(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", stage: str) -> None:
        if stage != "fit":
            return
        self.loss_scale = None
        self.predicted_epochs = None
        self.prepare(getattr(trainer, "datamodule", None), pl_module)

    def on_fit_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        reference = self.reference
        if reference is None:
            return
        lr = _lr(trainer)
        theta = _theta(pl_module)
        plain = _is_plain_descent(trainer)
        if plain:
            self.predicted_epochs = reference.epochs_to_gap(theta, lr, self.aim)
        if self.verbose and trainer.is_global_zero:
            print(reference.describe(lr, theta, self.aim, gradient_descent=plain))
            standardized = getattr(pl_module, "standardization", None) is not None
            if reference.badly_scaled and not standardized:
                print(
                    f"the design is badly scaled: the curvature's condition number is "
                    f"{reference.condition_number:.3g}, and "
                    f"{reference.condition_equal_columns:.3g} with its columns rescaled to "
                    f"equal size; gradient descent crawls along the flattest directions: "
                    f"standardize the features (--data.standardize_features true)"
                )
            if self.target_gap is not None and self.target_gap < reference.smallest_gap:
                print(
                    f"convergence.target_gap {self.target_gap:g} is below what "
                    f"{_precision(reference)} resolves on this data: a loss within "
                    f"{reference.in_words(reference.smallest_gap)} of {reference.gap_of} is "
                    f"rounding, "
                    f"so the fit stops there"
                    + (
                        "; --trainer.precision 64-true resolves smaller gaps"
                        if reference.epsilon > torch.finfo(torch.float64).eps
                        else ""
                    )
                )
        if lr >= reference.stable_lr and plain:
            rank_zero_warn(
                f"lr {lr:.4g} is at or above {reference.stable_lr:.4g}, the largest stable "
                f"learning rate for full-batch gradient descent on this data: expect the loss "
                f"to blow up; lower model.lr or set it to auto"
            )

    def on_train_batch_start(
        self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", batch: Any, batch_idx: int
    ) -> None:
        if self.reference is not None and is_last_batch(trainer, batch_idx):
            self._log_gap(trainer, pl_module)

    def on_train_batch_end(
        self,
        trainer: "pl.Trainer",
        pl_module: "pl.LightningModule",
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        loss = None
        if is_logged_step(trainer, trainer.global_step - 1, batch_idx):
            loss = trainer.callback_metrics.get("train/loss")
        if loss is not None:
            self._check(trainer, float(loss))
        # the logged loss is the one before this step's update: the parameters after it
        # are checked at every epoch's end (and before any checkpoint saves them)
        if is_last_batch(trainer, batch_idx):
            self._check_updated(trainer, pl_module)

    def on_save_checkpoint(
        self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", checkpoint: dict[str, Any]
    ) -> None:
        """Check the parameters a running fit is about to save, whichever callback saves
        them and whenever: blown-up parameters stop the run before the file is written
        (Lightning asks every callback for its part of a checkpoint before writing it)."""
        running = trainer.state.status == TrainerStatus.RUNNING
        if running and trainer.state.fn == TrainerFn.FITTING:
            self._check_updated(trainer, pl_module)

    def _check_updated(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        """Stop the run when the parameters after the step's update have blown up: their
        exact loss on the training split when the reference is known, else their values."""
        if self.reference is not None:
            self._check(trainer, self.reference.loss(_theta(pl_module)))
        elif not all(bool(torch.isfinite(p).all()) for p in pl_module.parameters()):
            self._check(trainer, math.nan)

    def _check(self, trainer: "pl.Trainer", value: float) -> None:
        """Stop the run at a loss that is not finite or has blown up."""
        if self.loss_scale is None:
            reference = self.reference
            zero_model = reference.zero_loss if reference else 0
            self.loss_scale = max(value, zero_model) if math.isfinite(value) else 1.0
        if not math.isfinite(value) or value > self.divergence_factor * self.loss_scale:
            bound = (
                f"; the largest stable learning rate for full-batch gradient descent on this "
                f"data is {self.reference.stable_lr:.4g}"
                if self.reference is not None
                else ""
            )
            raise DivergenceError(
                f"training diverged at step {trainer.global_step}: the loss is {value:.4g} "
                f"with lr {_lr(trainer):.4g}{bound}: lower model.lr, set it to auto, or "
                f"standardize the data ({_checkpoints_kept(trainer)})"
            )

    def _log_gap(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        """The excess and gap of the parameters of the epoch's last step, before its update:
        Lightning writes the epoch's values at that step, beside its ``train/loss``."""
        reference = self.reference
        assert reference is not None
        excess = reference.excess(_theta(pl_module))
        gap = reference.relative(excess)
        pl_module.log("train/excess_loss", excess, on_step=False, on_epoch=True)
        pl_module.log("train/gap", gap, on_step=False, on_epoch=True)

    def on_train_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        """Stop once the parameters the epoch ends with are within the target."""
        if self.reference is None or self.target_gap is None:
            return
        reference = self.reference
        gap = reference.gap(_theta(pl_module))
        if gap <= reference.reachable_gap(self.target_gap):
            trainer.should_stop = True
            steps = trainer.global_step
            rank_zero_info(
                f"within {reference.in_words(gap)} of {reference.gap_of} after {steps} "
                f"step{'' if steps == 1 else 's'} (the target: "
                f"{reference.in_words(reference.reachable_gap(self.target_gap))}): "
                f"stopping at the end of epoch "
                f"{trainer.current_epoch + 1}"
            )

    def on_fit_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        reference = self.reference
        if reference is None or not self.verbose or not trainer.is_global_zero:
            return
        theta = _theta(pl_module)
        print(reference.summary(theta))
        scaled = getattr(pl_module, "standardization", None) is not None
        far = reference.gap(theta) > max(self.aim, 1.0)  # twice the optimum or more
        if far and not scaled and reference.condition_number > CONDITION_TO_STANDARDIZE:
            print(
                f"the curvature's condition number is {reference.condition_number:.3g}: on "
                f"standardized data (data.standardize_features true) gradient descent gets "
                f"within {fraction(self.aim)} in far fewer epochs"
            )


def auto_lr(
    reference: LeastSquaresReference | None, datamodule: Any, theta: torch.Tensor, gap: float
) -> float:
    """The learning rate ``lr: auto`` stands for on the training split ``reference``
    describes, from the parameters ``theta``: for full batches the rate predicted to bring
    them within ``gap`` of the optimum soonest
    ([`LeastSquaresReference.fastest_lr`][gd_lightning.LeastSquaresReference.fastest_lr]),
    for minibatches ``1 / λ_max``; refused in one line when it cannot be chosen (no
    reference, or a loss that does not depend on the parameters).

    Examples:
        >>> from gd_lightning import CropYieldsDataModule, LinearRegression
        >>> dm = CropYieldsDataModule(num_regions=5)
        >>> model = LinearRegression(3, 2, lr="auto", init_weight=[[0.0] * 3] * 2, init_bias=[0, 0])
        >>> dm.setup("fit")
        >>> f"{auto_lr(dm.least_squares_reference(model), dm, model.theta(), 0.01):.4g}"
        '0.0001005'
    """
    if reference is None:
        raise InputError(
            "lr: auto needs a gd_lightning model fitted to a TensorDataModule's data (read "
            "a batch at a time, with memory_map, the model must be a LinearRegression): "
            "give model.lr a number"
        )
    if reference.flat:
        raise InputError(
            "lr: auto is chosen from the loss's curvature, and this training split has none: "
            "its design matrix is all zeros (inputs of 0 and no bias), so no parameters fit "
            "it better than others: check the data's columns, or give model.lr a number"
        )
    rows = len(datamodule.train_set)
    if (datamodule.batch_size or rows) >= rows:
        return reference.fastest_lr(theta, gap)
    return 1 / reference.largest_eigenvalue


def check_loss_fits(
    reference: LeastSquaresReference, theta: torch.Tensor, dtype: torch.dtype
) -> None:
    """Refuse, in one line, a fit whose loss at its starting parameters ``theta`` is too
    large for the model's ``dtype`` to hold (the data's values are so large that their
    squares overflow): every step's loss would be infinite."""
    if dtype != torch.float32:
        return
    largest = torch.finfo(dtype).max
    bound = largest / 1e3  # headroom for sums over a batch and for the first steps
    fitted, in_target_units = (
        reference.loss(theta, original_units=units) for units in (False, True)
    )
    if not fitted < bound:
        raise InputError(
            f"the loss at the starting parameters is {fitted:.3g}, beyond what float32 holds "
            f"({largest:.3g}): the data's values are too large to square; standardize them "
            f"(data.standardize_features true and data.standardize_targets true), or train "
            f"with --trainer.precision 64-true"
        )
    if not in_target_units < bound:
        raise InputError(
            f"the loss in the targets' own units is {in_target_units:.3g} at the start, "
            f"beyond what float32 holds ({largest:.3g}), so the logged losses and metrics would be "
            f"infinite: rescale the targets (divide them by a power of ten), or train with "
            f"--trainer.precision 64-true"
        )


def _checkpoints_kept(trainer: "pl.Trainer") -> str:
    """What the run's checkpoint folder holds as it stops at a blow-up, in words: the
    last checkpoint saved before it, or none."""
    saved = sorted(checkpoint_folder(trainer).glob("*.ckpt"), key=lambda p: p.stat().st_mtime)
    if not saved:
        return "no checkpoint was saved before the blow-up"
    return f"the last checkpoint saved before the blow-up is kept: {shown_path(saved[-1])}"


def _dtype(pl_module: "pl.LightningModule") -> torch.dtype:
    """The module's floating-point dtype (float32 unless trained under 64-true)."""
    dtype = pl_module.dtype
    return dtype if isinstance(dtype, torch.dtype) else torch.float32


def _precision(reference: LeastSquaresReference) -> str:
    """The fit's float type, by name."""
    return "float64" if reference.epsilon <= torch.finfo(torch.float64).eps else "float32"


def _lr(trainer: "pl.Trainer") -> float:
    return float(trainer.optimizers[0].param_groups[0]["lr"])


def _is_plain_descent(trainer: "pl.Trainer") -> bool:
    """Whether the optimizer is gradient descent without momentum, where 2 / λ_max binds."""
    optimizer = trainer.optimizers[0]
    if isinstance(optimizer, GradientDescent):
        return True
    return isinstance(optimizer, torch.optim.SGD) and not optimizer.param_groups[0]["momentum"]


def _theta(pl_module: "pl.LightningModule") -> torch.Tensor:
    """The model's parameters as a linear least-squares ``theta``, on the CPU (where the
    least-squares facts are)."""
    return cast("RegressionModule", pl_module).theta().cpu()
