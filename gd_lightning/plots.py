"""Pictures of a fit, drawn with matplotlib (the optional ``plots`` extra).

Pure drawing functions on NumPy arrays: no model, no Trainer. Matplotlib is
imported only when a picture is drawn, so the package works without it.
"""

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from gd_lightning.io import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

INSTALL_HINT = "pip install 'gd-lightning[plots]'"
_COLUMN_WIDTH = 4.5  # inches per panel


def matplotlib_missing() -> str | None:
    """``None`` when matplotlib and pillow can be imported, else one line saying how to get them."""
    try:
        import matplotlib  # noqa: F401
        import PIL  # noqa: F401
    except ImportError as err:
        return f"figures are off: {err.name} is not installed; to draw them: {INSTALL_HINT}"
    return None


def single_input_column(x: Tensor) -> int | None:
    """The index of the only feature column that varies, or ``None``.

    A column of ones (tutorial 2's bias column) does not vary, so a line fitted
    through it still has one input to draw against.

    Example:
        >>> single_input_column(torch.tensor([[0.5, 1.0], [-0.2, 1.0], [0.9, 1.0]]))
        0
        >>> single_input_column(torch.tensor([[1.0, 2.0], [3.0, 4.0]])) is None
        True
    """
    varies = (x != x[:1]).any(dim=0).nonzero().flatten()
    return int(varies[0]) if len(varies) == 1 else None


def input_grid(x: Tensor, column: int, num: int = 200) -> Tensor:
    """``num`` inputs evenly along ``column``'s range; the other columns keep their value.

    Example:
        >>> input_grid(torch.tensor([[0.0, 1.0], [2.0, 1.0]]), column=0, num=3)
        tensor([[0., 1.],
                [1., 1.],
                [2., 1.]])
    """
    grid = x[:1].repeat(num, 1)  # (num, in_features)
    grid[:, column] = torch.linspace(float(x[:, column].min()), float(x[:, column].max()), num)
    return grid


def _new_figure(panels: int) -> tuple["Figure", list]:
    """A figure of ``panels`` axes side by side, laid out once by fixed margins (a
    layout engine would measure every label again at each draw, the most costly part
    of drawing these small figures)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width = _COLUMN_WIDTH * panels
    figure = Figure(figsize=(width, 3.6))
    FigureCanvasAgg(figure)  # draws without pyplot or a display
    margins = {"left": 0.8 / width, "right": 1 - 0.2 / width, "bottom": 0.14, "top": 0.86}
    axes = figure.subplots(1, panels, squeeze=False, gridspec_kw={**margins, "wspace": 0.3})[0]
    return figure, list(axes)


def fit_figure(
    x: np.ndarray,
    y: np.ndarray,
    preds: np.ndarray,
    grid_x: np.ndarray,
    grid_preds: np.ndarray,
    feature_name: str,
    target_names: Sequence[str],
    title: str = "",
) -> "Figure":
    """The data against its one input, with the model's predictions in red.

    Args:
        x: the input column, shape (rows,).
        y: the targets, shape (rows, targets).
        preds: the predictions at ``x``, shape (rows, targets).
        grid_x: inputs along the range, shape (points,).
        grid_preds: the predictions there (the fitted curve), shape (points, targets).
        feature_name: the input's name, for the x axis.
        target_names: one name per target, for the y axes.
        title: the figure's title.
    """
    figure, panels = _new_figure(len(target_names))
    for k, axes in enumerate(panels):
        axes.scatter(x, y[:, k], s=14, color="tab:blue", label="data")
        axes.scatter(x, preds[:, k], s=14, color="red", label="predictions")
        axes.plot(grid_x, grid_preds[:, k], color="red", linewidth=1.5)
        axes.set_xlabel(feature_name)
        axes.set_ylabel(target_names[k])
        axes.legend(loc="best", fontsize="small")
    figure.suptitle(title, fontsize="medium")
    return figure


def predictions_figure(
    y: np.ndarray, preds: np.ndarray, target_names: Sequence[str], title: str = ""
) -> "Figure":
    """Predicted against actual values, one panel per target; a perfect fit lies on the diagonal."""
    figure, panels = _new_figure(len(target_names))
    for k, axes in enumerate(panels):
        low = float(min(y[:, k].min(), preds[:, k].min()))
        high = float(max(y[:, k].max(), preds[:, k].max()))
        axes.plot([low, high], [low, high], color="gray", linewidth=1, linestyle="--")
        axes.scatter(y[:, k], preds[:, k], s=14, color="red")
        axes.set_xlabel(f"actual {target_names[k]}")
        axes.set_ylabel(f"predicted {target_names[k]}")
    figure.suptitle(title, fontsize="medium")
    return figure


def save_fit_animation(
    path: str | os.PathLike[str],
    x: np.ndarray,
    y: np.ndarray,
    grid_x: np.ndarray,
    frames: Sequence[tuple[str, np.ndarray]],
    feature_name: str,
    target_names: Sequence[str],
    fps: int = 5,
) -> None:
    """Write an animated GIF of the fitted curve moving as the model learns.

    Args:
        path: the GIF to write (atomically: a reader never sees half a file).
        x: the input column, shape (rows,).
        y: the targets, shape (rows, targets).
        grid_x: inputs along the range, shape (points,).
        frames: one ``(title, grid_preds)`` per frame, ``grid_preds`` of shape
            (points, targets).
        feature_name: the input's name.
        target_names: one name per target.
        fps: frames per second.
    """
    from matplotlib.animation import FuncAnimation, PillowWriter

    figure, panels = _new_figure(len(target_names))
    curves = []
    low = min(float(y.min()), min(float(p.min()) for _, p in frames))
    high = max(float(y.max()), max(float(p.max()) for _, p in frames))
    margin = 0.05 * (high - low or 1.0)
    for k, axes in enumerate(panels):
        axes.scatter(x, y[:, k], s=14, color="tab:blue")
        (curve,) = axes.plot(grid_x, frames[0][1][:, k], color="red", linewidth=2)
        curves.append(curve)
        axes.set_ylim(low - margin, high + margin)
        axes.set_xlabel(feature_name)
        axes.set_ylabel(target_names[k])

    def draw(index: int) -> list:
        title, grid_preds = frames[index]
        for k, curve in enumerate(curves):
            curve.set_ydata(grid_preds[:, k])
        figure.suptitle(title, fontsize="medium")
        return curves

    animation = FuncAnimation(figure, draw, frames=len(frames), blit=False)
    with atomic_path(path) as tmp:
        animation.save(str(tmp), writer=PillowWriter(fps=fps))
