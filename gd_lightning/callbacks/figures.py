"""Pictures of the fit in TensorBoard, as PNG files, and as an animated GIF."""

from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from gd_lightning import plots
from gd_lightning.analysis import LeastSquaresReference, Plane
from gd_lightning.cadence import is_logged_step
from gd_lightning.callbacks._common import columns_of, reference_from, run_folder, run_tensors
from gd_lightning.errors import InputError
from gd_lightning.io import atomic_path
from gd_lightning.stops import raise_if_stopped


class FitFigures(Callback):
    """Draw the fit every ``every_n_epochs`` epochs and at the end of training.

    Two figures, logged to TensorBoard's IMAGES tab (with a TensorBoard logger)
    and, at the end, saved as PNG files in the run's log folder:

    - ``figures/predictions`` (``predictions.png``): predicted against actual
      values, one panel per target, for any model;
    - ``figures/fit`` (``fit.png``): for data with one input, the data against it
      with the predictions in red and the fitted curve or line through them
      (tutorials 1 and 2). A constant column, such as a column of ones carrying
      the bias, does not count as an input.

    - ``figures/landscape`` (``landscape.png``), at the end: the loss's contour lines
      with the path the parameters took (the start, every step written to the
      loggers, the end) and the optimum; for a model of two parameters (tutorial 2's
      slope and bias) over the parameters themselves, else over the plane through the
      optimum of the largest and smallest curvature, the path projected onto it
      ([`plane`][gd_lightning.LeastSquaresReference.plane]). Computed from the least-squares
      reference's triangular factor (the one the DataModule offers,
      [`least_squares_reference`][gd_lightning.TensorDataModule.least_squares_reference])
      and the recorded parameters: no pass over the data.

    With ``animation=True`` it also writes ``fit.gif`` into the log folder: the
    fitted curve moving as the model learns, one frame before training and one
    every ``animation_every_n_epochs`` epochs; for a model of two parameters,
    ``landscape.gif`` too, the path growing on the landscape.

    Drawing needs matplotlib and pillow (``pip install 'gd-lightning[plots]'``);
    without them the callback says so in one line and training goes on.

    Args:
        every_n_epochs: log the figures every this many epochs; 0 logs only at the end.
        max_logged: log them at most this many times during a fit (the end aside): a
            longer run spreads them out, every ``ceil(max_epochs / max_logged)``
            epochs when that is more than ``every_n_epochs``, so drawing (about 0.1 s
            a time) stays a bounded cost whatever the run's length; ``None``: no bound.
        animation: write the animated GIF (data with one input only).
        animation_every_n_epochs: epochs between frames; defaults to ``every_n_epochs``
            (or 1 when that is 0).
        fps: frames per second of the GIF.
        max_points: draw at most this many rows (a fixed random sample beyond it).
        landscape: draw the loss landscape with the path (linear least-squares models of
            this package, on data held as tensors).
    """

    def __init__(
        self,
        every_n_epochs: int = 10,
        max_logged: int | None = 10,
        animation: bool = False,
        animation_every_n_epochs: int | None = None,
        fps: int = 5,
        max_points: int = 1000,
        landscape: bool = True,
    ) -> None:
        if (
            every_n_epochs < 0
            or (animation_every_n_epochs or 1) < 1
            or fps < 1
            or max_points < 1
            or (max_logged is not None and max_logged < 1)
        ):
            raise InputError(
                "FitFigures needs every_n_epochs >= 0 and animation_every_n_epochs, fps, "
                "max_points and max_logged >= 1"
            )
        self.every_n_epochs = every_n_epochs
        self.max_logged = max_logged
        #: the epochs between logged figures in the current fit (`every_n_epochs`, spread
        #: out to at most `max_logged` drawings)
        self.cadence = every_n_epochs
        self.animation = animation
        self.animation_every_n_epochs = animation_every_n_epochs or every_n_epochs or 1
        self.fps = fps
        self.max_points = max_points
        self.landscape = landscape
        #: the landscape drawn at the end of the last fit (``None`` before, or where
        #: there was none to draw)
        self.drawn_landscape: Landscape | None = None
        #: the parameters recorded for the landscape: (step, theta) from the start on
        self._path: list[tuple[int, Tensor]] = []
        self._active = False
        self._frames: list[tuple[str, np.ndarray]] = []
        self._logged_step = -1

    def setup(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", stage: str) -> None:
        self._active = False
        self._frames = []
        self._path = []
        self._logged_step = -1
        if stage != "fit" or not trainer.is_global_zero:
            return
        missing = plots.matplotlib_missing()
        tensors = run_tensors(trainer)
        if missing is not None:
            rank_zero_warn(missing)
            return
        if tensors is None:
            rank_zero_warn("figures are off: they need the data as a TensorDataset")
            return
        x, y = tensors
        if len(x) > self.max_points:
            rows = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
            rows = rows[: self.max_points].sort().values
            x, y = x[rows], y[rows]
        self._x, self._y = x, y.numpy()
        self._features, self._targets = columns_of(trainer, pl_module)
        self._column = plots.single_input_column(x)
        if self._column is not None:
            self._grid = plots.input_grid(x, self._column)
        elif self.animation:
            rank_zero_warn(
                f"the fit animation is off: it draws data with one input, and this data has "
                f"{x.shape[1]} ({', '.join(self._features)})"
            )
        self._active = True

    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self.cadence = self.every_n_epochs
        epochs = trainer.max_epochs
        if self.cadence and self.max_logged and epochs is not None and epochs > 0:
            self.cadence = max(self.cadence, -(-epochs // self.max_logged))
        self._add_path_point(trainer, pl_module)
        if self._animating:
            self._frames.append((self._title(trainer, 0), self._predict(pl_module, self._grid)))

    def on_train_batch_start(
        self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", batch: Any, batch_idx: int
    ) -> None:
        # the parameters of each step written to the loggers, before its update: the ones
        # its logged train/loss was measured at
        if self._active and is_logged_step(trainer, trainer.global_step, batch_idx):
            self._add_path_point(trainer, pl_module)

    def _add_path_point(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        theta = getattr(pl_module, "theta", None)
        if not self._active or not self.landscape or theta is None:
            return
        if not self._path or self._path[-1][0] != trainer.global_step:
            self._path.append((trainer.global_step, theta().detach().double().cpu()))

    def on_train_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if not self._active:
            return
        epochs_done = trainer.current_epoch + 1
        if self._animating and epochs_done % self.animation_every_n_epochs == 0:
            self._frames.append(
                (self._title(trainer, epochs_done), self._predict(pl_module, self._grid))
            )
        if self.cadence and epochs_done % self.cadence == 0:
            for tag, figure in self._figures(trainer, pl_module, epochs_done).items():
                self._log(trainer, tag, figure)
            self._logged_step = trainer.global_step

    def on_fit_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if not self._active or _stop_received(trainer):
            return
        folder = run_folder(trainer)
        self._add_path_point(trainer, pl_module)  # the end
        figures = self._figures(trainer, pl_module, trainer.current_epoch)
        landscape = self.drawn_landscape = self._landscape(trainer, pl_module)
        if landscape is not None:
            figures["figures/landscape"] = landscape.figure(
                self._title(trainer, trainer.current_epoch)
            )
        # the fit has ended: the Trainer counts every epoch run, a stopped one too
        for tag, figure in figures.items():
            if _stop_received(trainer):
                return
            name = tag.split("/")[-1]
            with atomic_path(folder / f"{name}.png") as tmp:
                figure.savefig(tmp, dpi=100)
            if tag == "figures/landscape" or trainer.global_step != self._logged_step:
                self._log(trainer, tag, figure)
        column = self._column
        if _stop_received(trainer):
            return
        if self._animating and column is not None and len(self._frames) > 1:
            plots.save_fit_animation(
                folder / "fit.gif",
                self._x[:, column].numpy(),
                self._y,
                self._grid[:, column].numpy(),
                self._frames,
                self._features[column],
                self._targets,
                fps=self.fps,
            )
        if _stop_received(trainer):
            return
        if self.animation and landscape is not None and landscape.in_parameters:
            landscape.save_animation(folder / "landscape.gif", self.fps)

    @property
    def _animating(self) -> bool:
        return self._active and self.animation and self._column is not None

    def _predict(self, pl_module: "pl.LightningModule", x: Tensor) -> np.ndarray:
        with torch.no_grad():
            return pl_module(x.to(pl_module.device)).float().cpu().numpy()

    def _title(self, trainer: "pl.Trainer", epochs: int, mse: float | None = None) -> str:
        """Which parameters a picture shows: those after ``global_step`` updates (the step
        TensorBoard shows it at) in ``epochs`` epochs, and the MSE of what it draws."""
        return figure_caption(trainer.global_step, epochs, mse, len(self._y))

    def _figures(
        self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", epochs: int
    ) -> dict[str, Any]:
        preds = self._predict(pl_module, self._x)
        title = self._title(trainer, epochs, float(np.mean((preds - self._y) ** 2)))
        figures = {
            "figures/predictions": plots.predictions_figure(self._y, preds, self._targets, title)
        }
        if self._column is not None:
            column = self._column
            figures["figures/fit"] = plots.fit_figure(
                self._x[:, column].numpy(),
                self._y,
                preds,
                self._grid[:, column].numpy(),
                self._predict(pl_module, self._grid),
                self._features[column],
                self._targets,
                title,
            )
        return figures

    def _landscape(
        self, trainer: "pl.Trainer", pl_module: "pl.LightningModule"
    ) -> "Landscape | None":
        """The landscape of this fit's loss with its path, or ``None`` where there is no
        least-squares reference (another kind of model or data) or nothing to draw."""
        if not self.landscape or len(self._path) < 2:
            return None
        reference = reference_from(getattr(trainer, "datamodule", None), pl_module)
        if reference is None or reference.flat:
            return None
        coefficients = getattr(pl_module, "coefficients", None)
        table = coefficients(*columns_of(trainer, pl_module)) if coefficients else {}
        # the parameters the model fits: in standardized units when it standardizes
        scaled = ", standardized" if getattr(pl_module, "standardization", None) else ""
        names = [
            f"{name}{scaled}" if len(table) == 1 else f"{name} ({target}{scaled})"
            for name in next(iter(table.values()), {})
            for target in table
        ]
        return Landscape.of(reference, [theta for _, theta in self._path], names)

    def _log(self, trainer: "pl.Trainer", tag: str, figure: Any) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_figure(tag, figure, global_step=trainer.global_step)


def _stop_received(trainer: "pl.Trainer") -> bool:
    """Whether a stop signal came, before a figure is started: the command line's stop
    is raised here (`raise_if_stopped`), the run ending with it; Lightning's flag
    (a SIGTERM to a Trainer run from Python) says to draw nothing more."""
    raise_if_stopped()
    return trainer.received_sigterm


def figure_caption(updates: int, epochs: int, mse: float | None = None, rows: int = 0) -> str:
    """The caption of a figure drawn after ``updates`` parameter updates in ``epochs``
    whole epochs (and its ``mse`` on the ``rows`` it draws, when given).

    Examples:
        >>> print(figure_caption(100, 100, 0.5, 100))
        after 100 updates (100 epochs)
        MSE 0.5 on these 100 rows
        >>> figure_caption(0, 0)
        'before the first update'
    """
    if updates == 0:
        said = "before the first update"
    else:
        said = f"after {updates} update{'s' if updates != 1 else ''} "
        said += f"({epochs} epoch{'s' if epochs != 1 else ''})"
    return said if mse is None else f"{said}\nMSE {mse:.4g} on these {rows} rows"


class Landscape:
    """The loss over a plane of parameters with the path a fit took on it: what the
    landscape figure draws, computed from a
    [`LeastSquaresReference`][gd_lightning.LeastSquaresReference] alone."""

    def __init__(self, plane: Plane, a: Tensor, b: Tensor, loss: Tensor, path: Tensor,
                 optimum: Tensor, in_parameters: bool, note: str) -> None:  # fmt: skip
        self.plane, self.a, self.b, self.loss = plane, a, b, loss
        self.path, self.optimum = path, optimum
        #: whether the plane is the parameters themselves (a model of two parameters)
        self.in_parameters = in_parameters
        self.note = note

    @classmethod
    def of(
        cls,
        reference: LeastSquaresReference,
        thetas: list[Tensor],
        names: list[str],
        points: int = 81,
    ) -> "Landscape":
        """The landscape of ``reference``'s loss around the path ``thetas`` (each of shape
        (p, K)), its axes named ``names`` (one per parameter) for two parameters."""
        plane = reference.plane(names)
        path = plane.coordinates(torch.stack(thetas))
        optimum = plane.coordinates(reference.solution[None])[0]
        corners = torch.cat([path, optimum[None]])
        low, high = corners.min(0).values, corners.max(0).values
        span = (high - low).clamp_min(float((high - low).max()) * 0.2 or 1.0)
        low, high = low - 0.1 * span, high + 0.1 * span
        a = torch.linspace(float(low[0]), float(high[0]), points, dtype=torch.float64)
        b = torch.linspace(float(low[1]), float(high[1]), points, dtype=torch.float64)
        others = reference.solution.numel() - 2  # the directions the plane leaves out
        in_parameters = others == 0
        note = (
            "the loss over the parameters; the path: the start, each logged step, the end"
            if in_parameters
            else f"the path projected onto the plane through the optimum of the largest and "
            f"smallest curvature ({others} other direction{'s' if others != 1 else ''} not drawn)"
        )
        loss = reference.landscape(plane, a, b)
        return cls(plane, a, b, loss, path, optimum, in_parameters, note)

    def figure(self, title: str) -> Any:
        return plots.landscape_figure(
            self.a.numpy(), self.b.numpy(), self.loss.numpy(), self.path.numpy(),
            self.optimum.numpy(), self.plane.axes, title, self.note,
        )  # fmt: skip

    def save_animation(self, path: Any, fps: int) -> None:
        plots.save_landscape_animation(
            path, self.a.numpy(), self.b.numpy(), self.loss.numpy(), self.path.numpy(),
            self.optimum.numpy(), self.plane.axes, fps,
        )  # fmt: skip
