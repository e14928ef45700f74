"""How many digits of NIST's certified least-squares coefficients each solver gets.

For each problem of the NIST StRD linear least-squares suite (``tests/data/strd/``), on
its design as NIST states it (raw) and with the columns but the constant standardized
(the solution mapped back to the raw coefficients): the fewest significant digits over
the coefficients (NIST's log relative error, 0 to 15) of the package's `LeastSquaresReference`,
NumPy's ``lstsq``, statsmodels' ``OLS`` (where installed) and scikit-learn's
``LinearRegression(fit_intercept=False)``, each with its defaults, and, for
comparison, the normal equations solved as they stand. Prints a Markdown
table; takes a second or two.

    python benchmarks/certified.py
"""

import datetime
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from strd import baselines, design, digits, load, problems, to_raw  # noqa: E402

from gd_lightning.analysis import LeastSquaresReference  # noqa: E402


def reference(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The package's least-squares optimum for design ``a`` and response ``y``."""
    return (
        LeastSquaresReference.from_data(torch.tensor(a), torch.tensor(y)[:, None])
        .solution[:, 0]
        .numpy()
    )


def normal_equations(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``AᵀA θ = Aᵀy`` solved as it stands: what not to do, for comparison."""
    return np.linalg.solve(a.T @ a, a.T @ y)


def main() -> None:
    solvers = {
        "gd-lightning LeastSquaresReference": reference,
        **baselines(),
        "normal equations": normal_equations,
    }
    header = ["problem", "NIST level", "design", "κ(design)", *solvers]
    print(f"NIST StRD linear least squares: fewest correct digits (LRE) over the coefficients, "
          f"{datetime.date.today().isoformat()}\n")  # fmt: skip
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] * 3 + ["---:"] * (len(header) - 3)) + "|")
    for name in problems():
        x, y, certified, level = load(name)
        for standardized in (False, True):
            a = design(name, x, standardized)
            cells = [name, level, "standardized" if standardized else "raw"]
            cells.append(f"{np.linalg.cond(a):.1e}")
            for solve in solvers.values():
                solution = solve(a, y)
                estimate = to_raw(name, x, solution) if standardized else solution
                cells.append(f"{digits(estimate, certified):.1f}")
            print("| " + " | ".join(cells) + " |")
    versions = [f"torch {torch.__version__}", f"numpy {np.__version__}"]
    for module in ("statsmodels", "sklearn"):
        try:
            versions.append(f"{module} {__import__(module).__version__}")
        except ImportError:
            versions.append(f"{module} not installed")
    print(f"\n15 is all the digits NIST certifies; 0, none right. {', '.join(versions)}.")


if __name__ == "__main__":
    main()
