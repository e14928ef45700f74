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
from gd_lightning.stops import raise_if_stopped

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

    Examples:
        >>> single_input_column(torch.tensor([[0.5, 1.0], [-0.2, 1.0], [0.9, 1.0]]))
        0
        >>> single_input_column(torch.tensor([[1.0, 2.0], [3.0, 4.0]])) is None
        True
    """
    varies = (x != x[:1]).any(dim=0).nonzero().flatten()
    return int(varies[0]) if len(varies) == 1 else None


def input_grid(x: Tensor, column: int, num: int = 200) -> Tensor:
    """``num`` inputs evenly along ``column``'s range; the other columns keep their value.

    Examples:
        >>> input_grid(torch.tensor([[0.0, 1.0], [2.0, 1.0]]), column=0, num=3)
        tensor([[0., 1.],
                [1., 1.],
                [2., 1.]])
    """
    grid = x[:1].repeat(num, 1)  # (num, in_features)
    low, high = float(x[:, column].min()), float(x[:, column].max())
    grid[:, column] = torch.linspace(low, high, num, dtype=x.dtype)  # float64 data keeps its digits
    return grid


def _new_figure(panels: int) -> tuple["Figure", list]:
    """A figure of ``panels`` axes one above the other (so that a TensorBoard card,
    which scales an image to its width, keeps every panel's text readable), laid out
    once by fixed margins (a layout engine would measure every label again at each
    draw, the most costly part of drawing these small figures)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    title, panel = 0.75, 3.1  # inches: the two-line title, each panel with its labels
    height = title + panel * panels
    figure = Figure(figsize=(_COLUMN_WIDTH, height))
    FigureCanvasAgg(figure)  # draws without pyplot or a display
    margins = {"left": 0.8 / _COLUMN_WIDTH, "right": 1 - 0.2 / _COLUMN_WIDTH,
               "bottom": 0.5 / height, "top": 1 - title / height}  # fmt: skip
    space = {"hspace": 0.6 / (panel - 0.6)}
    axes = figure.subplots(panels, 1, squeeze=False, gridspec_kw={**margins, **space})[:, 0]
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
        raise_if_stopped()  # a stop signal came: no frame more (nothing is kept of the GIF)
        title, grid_preds = frames[index]
        for k, curve in enumerate(curves):
            curve.set_ydata(grid_preds[:, k])
        figure.suptitle(title, fontsize="medium")
        return curves

    animation = FuncAnimation(figure, draw, frames=len(frames), blit=False)
    with atomic_path(path) as tmp:
        animation.save(str(tmp), writer=PillowWriter(fps=fps))


def landscape_figure(
    a: np.ndarray,
    b: np.ndarray,
    loss: np.ndarray,
    path: np.ndarray,
    optimum: np.ndarray,
    axes_names: Sequence[str],
    title: str = "",
    note: str = "",
    whole_path: bool = True,
) -> "Figure":
    """The loss's contour lines over a plane of parameters, with the path gradient
    descent took on it: its start (a circle), each recorded step (dots), its end (a
    square) and the optimum (a star); with ``whole_path=False`` the start only.

    Args:
        a: the first axis' coordinates, shape (m,).
        b: the second axis' coordinates, shape (n,).
        loss: the loss at each grid point, shape (n, m).
        path: the path's coordinates in the plane, shape (points, 2).
        optimum: the optimum's coordinates, shape (2,).
        axes_names: the two axes' names.
        title: the figure's title.
        note: a line under the title (what the plane is).
    """
    figure, (axes,) = _new_figure(1)
    # about a panel's width, like the other figures: a TensorBoard card scales an image
    # to its width, and a wider one shrinks its words
    figure.set_size_inches(_COLUMN_WIDTH * 1.15, 4.8)
    axes.set_position((0.16, 0.14, 0.6, 0.64))  # left, bottom, width, height
    levels = contour_levels(loss)
    lines = axes.contour(a, b, loss, levels=levels, cmap="viridis", linewidths=1.1)
    axes.clabel(lines, lines.levels[::2], fontsize="small", fmt="%.3g")
    # the colour scale of the contour lines, in a strip of its own right of the plot
    scale = figure.colorbar(lines, cax=figure.add_axes((0.8, 0.14, 0.025, 0.64)), format="%.3g")
    scale.ax.set_title("MSE", fontsize="small")
    axes.plot(*path[0], marker="o", color="red", markersize=9, label="start", linestyle="")
    if whole_path:
        axes.plot(path[:, 0], path[:, 1], color="red", linewidth=1.5, marker=".", markersize=5)
        for i in _arrow_steps(len(path)):  # which way the path goes
            axes.annotate("", xy=tuple(path[i + 1]), xytext=tuple(path[i]),
                          arrowprops={"arrowstyle": "-|>", "color": "red", "lw": 1.5})  # fmt: skip
        axes.plot(*path[-1], marker="s", color="red", markersize=8, label="end", linestyle="")
    axes.plot(*optimum, marker="*", color="black", markersize=15, label="optimum", linestyle="")
    import textwrap

    axes.set_xlabel(textwrap.fill(axes_names[0], 48))
    axes.set_ylabel(textwrap.fill(axes_names[1], 40))
    axes.legend(loc="best", fontsize="small")
    figure.suptitle(title, fontsize="large")
    if note:
        figure.text(0.5, 0.915, textwrap.fill(note, 64), ha="center", va="top",
                    fontsize="small", color="black")  # fmt: skip
    return figure


def _arrow_steps(points: int, count: int = 3) -> list[int]:
    """The steps of a path of ``points`` that carry an arrowhead: a few, spread along it.

    Examples:
        >>> _arrow_steps(11), _arrow_steps(2), _arrow_steps(1)
        ([0, 4, 9], [0], [])
    """
    if points < 2:
        return []
    last = points - 2  # the first point of the last segment
    return sorted({round(i * last / max(count - 1, 1)) for i in range(count)})


def contour_levels(loss: np.ndarray, count: int = 12) -> np.ndarray:
    """``count`` increasing levels from just above the grid's lowest loss to its highest,
    spaced evenly on a log scale of the loss above that lowest value (a quadratic's
    contours crowd near its rim otherwise).

    Examples:
        >>> contour_levels(np.array([[1.0, 2.0], [5.0, 101.0]]), count=3).round(3).tolist()
        [2.0, 11.0, 101.0]
    """
    low, high = float(loss.min()), float(loss.max())
    excess = loss - low
    smallest = float(excess[excess > 0].min()) if (excess > 0).any() else 1.0
    return low + np.geomspace(smallest, max(high - low, smallest * 10), count)


def save_landscape_animation(
    path: str | os.PathLike[str],
    a: np.ndarray,
    b: np.ndarray,
    loss: np.ndarray,
    route: np.ndarray,
    optimum: np.ndarray,
    axes_names: Sequence[str],
    fps: int = 5,
    max_frames: int = 40,
) -> None:
    """Write an animated GIF of the path growing on the landscape (arguments as
    `landscape_figure`'s; ``route`` is its ``path``), a frame per recorded point
    (at most ``max_frames``, evenly spread, the last always among them).

    The landscape is drawn once; each frame redraws only the path over it
    (matplotlib's blitting: ``copy_from_bbox``, ``restore_region``, ``draw_artist``).
    """
    from PIL import Image

    figure = landscape_figure(a, b, loss, route, optimum, axes_names, whole_path=False)
    axes = figure.axes[0]
    (line,) = axes.plot(route[:1, 0], route[:1, 1], color="red", linewidth=1.2, marker=".",
                        markersize=4, animated=True)  # fmt: skip
    title = figure.text(0.5, 0.93, "", ha="center", fontsize="medium", animated=True)
    canvas = figure.canvas
    canvas.draw()
    background = canvas.copy_from_bbox(figure.bbox)  # type: ignore[attr-defined]
    count = len(route)
    drawn = sorted({round(i * (count - 1) / max(min(count, max_frames) - 1, 1))
                    for i in range(min(count, max_frames))})  # fmt: skip
    frames = []
    for index in drawn:
        raise_if_stopped()  # a stop signal came: no frame more (nothing is kept of the GIF)
        canvas.restore_region(background)  # type: ignore[attr-defined]
        line.set_data(route[: index + 1, 0], route[: index + 1, 1])
        title.set_text(f"the path after {index} of {count - 1} recorded steps")
        axes.draw_artist(line)
        figure.draw_artist(title)
        width, height = canvas.get_width_height()
        frame = Image.frombuffer("RGBA", (width, height), bytes(canvas.buffer_rgba()))  # type: ignore[attr-defined]
        frames.append(frame.convert("RGB").quantize(colors=64, method=Image.Quantize.FASTOCTREE))
    with atomic_path(path) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:],
                       duration=round(1000 / fps), loop=0)  # fmt: skip
