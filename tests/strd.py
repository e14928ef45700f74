"""The NIST StRD linear least-squares problems (``tests/data/strd/``): data, designs and
the certified coefficients, and the number of digits an estimate gets right.

Each problem's model is a list of design columns (``certified.json``): ``"1"`` the
constant, ``"x^k"`` the k-th power of the one predictor ``x``, otherwise a predictor by
name. The columns come in the package's order (the constant last, as in ``[x, 1]``);
`load` returns the certified coefficients in that same order, whatever NIST's
``B0, B1, ...`` numbering.

Examples:
    >>> x, y, certified, level = load("Norris")
    >>> x.shape, y.shape, certified.tolist(), level
    ((36, 1), (36,), [1.00211681802045, -0.262323073774029], 'lower')
    >>> design("Norris", x)[:2].tolist()
    [[0.2, 1.0], [337.4, 1.0]]
    >>> round(digits(np.array([1.0021168180, -0.26232307]), certified), 1)  # the worst one
    7.8
"""

import csv
import json
import math
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parent / "data" / "strd"
#: NIST quotes the certified values to 15 significant digits: no estimate can be shown
#: to get more right than that, so the log relative error is capped there
MAX_DIGITS = 15.0


@cache
def _certified() -> dict[str, dict[str, Any]]:
    """``certified.json``: per problem, its model and certified values."""
    return json.loads((DATA / "certified.json").read_text())


def problems() -> list[str]:
    """The problems' names, in NIST's order (Norris ... Wampler5)."""
    return list(_certified())


def info(name: str) -> dict[str, Any]:
    """Problem ``name``'s entry of ``certified.json`` (model columns, parameters, certified
    values as strings, difficulty, number of observations)."""
    return _certified()[name]


def load(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Problem ``name``'s data and certified solution.

    Args:
        name: one of `problems`.

    Returns:
        The predictors (n, q) as float64 (q = 1 but for Longley's 6), the response (n,),
        the certified coefficients (p,) as float64 in the order of `design`'s columns, and
        NIST's difficulty level (``"lower"``, ``"average"`` or ``"higher"``).
    """
    entry = info(name)
    with (DATA / f"{name}.csv").open(newline="") as file:
        header, *rows = list(csv.reader(file))
    table = np.array(rows, dtype=np.float64)
    certified = np.array([float(entry["coefficients"][b]) for b in entry["parameters"]])
    return table[:, 1:], table[:, 0], certified, entry["difficulty"]


def _predictors(name: str) -> list[str]:
    """The predictors' names, in the order of `load`'s table (the CSV header but ``y``)."""
    return ["x"] if name != "Longley" else [f"x{j}" for j in range(1, 7)]


def _raw_design(name: str, x: np.ndarray) -> np.ndarray:
    """The unscaled design (n, p): each model column from the predictors ``x``."""
    where = {predictor: j for j, predictor in enumerate(_predictors(name))}
    columns = []
    for column in info(name)["columns"]:
        if column == "1":
            columns.append(np.ones(len(x)))
        elif column.startswith("x^"):
            columns.append(x[:, where["x"]] ** int(column[2:]))
        else:
            columns.append(x[:, where[column]])
    return np.stack(columns, axis=1).astype(np.float64)


def _scaling(name: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per design column: whether it is the constant, the mean subtracted and the standard
    deviation (population, ``ddof=0``) divided by when standardizing, in float64.

    A model without a constant (NoInt1, NoInt2) is only scaled (mean 0 taken): centring
    its column would change the model, since ``x - m`` is not a multiple of ``x``.
    """
    raw = _raw_design(name, x)
    constant = np.array([column == "1" for column in info(name)["columns"]])
    means = raw.mean(axis=0) if constant.any() else np.zeros(raw.shape[1])
    scales = raw.std(axis=0) if constant.any() else np.sqrt((raw * raw).mean(axis=0))
    means[constant], scales[constant] = 0.0, 1.0
    return constant, means, scales


def design(name: str, x: np.ndarray, standardized: bool = False) -> np.ndarray:
    """Problem ``name``'s design matrix (n, p), float64, columns in the order of the
    coefficients `load` returns.

    Args:
        name: one of `problems`.
        x: the predictors, as `load` returns them.
        standardized: each column but the constant shifted by its mean and divided by its
            standard deviation (float64; without a constant, only divided by its root mean
            square); the model is the same, its coefficients are not: `to_raw` maps them
            back.
    """
    raw = _raw_design(name, x)
    if not standardized:
        return raw
    _, means, scales = _scaling(name, x)
    return (raw - means) / scales


def to_raw(name: str, x: np.ndarray, solution: np.ndarray) -> np.ndarray:
    """The raw design's coefficients from those (p,) of the standardized design.

    ``b_raw_j = b_std_j / s_j`` for each standardized column, and the constant's
    ``b_raw_0 = b_std_0 - sum_j b_std_j m_j / s_j``.

    Examples:
        >>> x, y, certified, _ = load("Pontius")
        >>> b = np.linalg.lstsq(design("Pontius", x, standardized=True), y, rcond=None)[0]
        >>> digits(to_raw("Pontius", x, b), certified) > 10
        True
    """
    constant, means, scales = _scaling(name, x)
    solution = np.asarray(solution, dtype=np.float64)
    raw = solution / scales
    raw[constant] = solution[constant] - (solution * means / scales)[~constant].sum()
    return raw


def lre(estimate: float, certified: float) -> float:
    """NIST's log relative error: the number of significant digits ``estimate`` shares
    with ``certified``, ``-log10(|estimate - certified| / |certified|)`` (the absolute
    error where ``certified`` is 0), capped at 15 (`MAX_DIGITS`) and floored at 0 (an
    estimate off by more than itself has no digit right; so has a NaN).
    """
    if not math.isfinite(estimate):
        return 0.0
    error = abs(estimate - certified) / (abs(certified) if certified != 0 else 1.0)
    if error == 0:
        return MAX_DIGITS
    return min(MAX_DIGITS, max(0.0, -math.log10(error)))


def digits(estimate: np.ndarray, certified: np.ndarray) -> float:
    """The fewest correct significant digits (`lre`) over the coefficients."""
    estimate, certified = np.ravel(estimate), np.ravel(certified)
    if estimate.shape != certified.shape:
        raise ValueError(f"{estimate.shape[0]} estimates for {certified.shape[0]} coefficients")
    return min(lre(float(e), float(c)) for e, c in zip(estimate, certified, strict=True))


def _lstsq(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """NumPy's SVD least squares (LAPACK gelsd), its default cutoff (``rcond=None``)."""
    return np.linalg.lstsq(a, y, rcond=None)[0]


def _scikit_learn(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """scikit-learn's ``LinearRegression`` on the design as given (its own defaults)."""
    from sklearn.linear_model import LinearRegression

    return LinearRegression(fit_intercept=False).fit(a, y).coef_


def _statsmodels(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """statsmodels' ``OLS`` on the design as given (its default ``fit()``: a pseudo-inverse).
    Its warning that a design is rank-deficient (raw Filip, to its cutoff) is silenced:
    the digits it gets say as much."""
    from statsmodels.regression.linear_model import OLS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(OLS(y, a).fit().params)


def baselines() -> dict[str, Any]:
    """The established float64 solvers installed here, by name: each takes a design (n, p)
    and response (n,) and returns the coefficients (p,). statsmodels is left out where it
    is not installed (it is not in the ``test`` extra)."""
    solvers: dict[str, Any] = {"numpy lstsq": _lstsq}
    try:
        import statsmodels  # noqa: F401
    except ImportError:
        pass
    else:
        solvers["statsmodels OLS"] = _statsmodels
    solvers["scikit-learn"] = _scikit_learn
    return solvers
