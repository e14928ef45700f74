"""Exact facts about a least-squares fit: its optimum, its curvature, and how fast
gradient descent approaches the one along the other.

Every model here is linear in its parameters: predictions are ``A @ theta`` for a
design matrix ``A`` (``[x, 1]`` for the linear model, ``[t**2, t, 1]`` for the
quadratic) and parameters ``theta`` of shape (p, targets). The mean squared error
over all ``n * targets`` values is then an exact quadratic in ``theta``,

.. math::
    L(\\theta) = \\frac{1}{K}\\sum_k \\big(\\theta_k^T G \\theta_k - 2\\theta_k^T c_k + s_k\\big),
    \\quad G = A^T A / n,\\; c = A^T y / n,\\; s_k = y_k^T y_k / n,

with Hessian ``2 G / K`` for every target, so its minimum, its eigenvalues and the
path of full-batch gradient descent are known in closed form. All in float64.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor


@dataclass(frozen=True)
class FitReference:
    """The loss as a quadratic in the parameters, with its optimum and curvature.

    Attributes:
        gram: ``A^T A / n``, shape (p, p).
        cross: ``A^T y / n``, shape (p, K).
        square: ``y^T y / n`` per target, shape (K,).
        target_scale: per target, the factor that turns the fitted targets' units
            into original units (1 unless targets are standardized), shape (K,).
        solution: the least-squares parameters (minimum norm), shape (p, K).
        rank: the rank of ``A``.
        eigenvalues: of the Hessian ``2 G / K``, ascending, shape (p,).
        eigenvectors: of ``G`` (and so of the Hessian), one column per eigenvalue, shape
            (p, p): the curvature is decomposed once, when the reference is built.
    """

    gram: Tensor
    cross: Tensor
    square: Tensor
    target_scale: Tensor
    solution: Tensor
    rank: int
    eigenvalues: Tensor
    eigenvectors: Tensor

    @classmethod
    def from_data(
        cls, design: Tensor, targets: Tensor, target_scale: Tensor | None = None
    ) -> "FitReference":
        """Build from the design matrix (n, p) and targets (n, K) the model is fitted to.

        Examples:
            >>> t = torch.arange(5.0)
            >>> design = torch.stack([t, torch.ones(5)], dim=1)  # a line: [x, 1]
            >>> ref = FitReference.from_data(design, (2 * t + 1)[:, None])
            >>> ref.solution.T.round(decimals=6), ref.rank, abs(ref.optimum_loss) < 1e-12
            (tensor([[2., 1.]], dtype=torch.float64), 2, True)
        """
        return cls.from_blocks([(design, targets)], target_scale)

    @classmethod
    def from_blocks(
        cls, blocks: Iterable[tuple[Tensor, Tensor]], target_scale: Tensor | None = None
    ) -> "FitReference":
        """Build from the design matrix and targets given a block of rows at a time:
        one pass, summing ``A^T A``, ``A^T y`` and ``y^T y`` in float64.

        The optimum is the minimum-norm solution of the normal equations, from the
        eigenvectors of ``G`` whose eigenvalues are not zero up to rounding (their
        number is the rank of ``A``). That squares the condition number of ``A``:
        float64 keeps about ``16 - 2 log10(κ(A))`` digits of the solution, ample for
        the losses and gaps it is used for.
        """
        totals: list[Tensor] = []
        rows = 0
        for design, targets in blocks:
            a, y = design.double(), targets.double()  # (n, p), (n, K)
            parts = [a.T @ a, a.T @ y, (y * y).sum(0)]
            totals = parts if not totals else [t + p for t, p in zip(totals, parts, strict=True)]
            rows += len(a)
        if rows == 0:
            raise ValueError("no rows to build the least-squares reference from")
        gram, cross, square = (total / rows for total in totals)
        values, vectors = torch.linalg.eigh(gram)
        keep = values > values[-1].clamp(min=0) * len(values) * 1e-12
        kept = vectors[:, keep]
        solution = kept @ ((kept.T @ cross) / values[keep, None])
        k = cross.shape[1]
        scale = torch.ones(k, dtype=torch.float64) if target_scale is None else target_scale
        return cls(
            gram=gram,
            cross=cross,
            square=square,
            target_scale=scale.double().cpu(),
            solution=solution,
            rank=int(keep.sum()),
            eigenvalues=2 * values / k,
            eigenvectors=vectors,
        )

    # --- the landscape ---------------------------------------------------------------

    def plane(self, names: list[str] | None = None) -> "Plane":
        """The plane a picture of the loss draws: for two parameters, the parameters
        themselves (axes named ``names``, in their own units); for more, the plane
        through the optimum spanned by the directions of largest and smallest non-zero
        curvature (the Hessian's extreme eigenvectors), the same direction for every
        target.

        Examples:
            >>> t = torch.arange(5.0)
            >>> ref = FitReference.from_data(torch.stack([t, torch.ones(5)], 1), t[:, None])
            >>> ref.plane(["slope", "bias"]).axes
            ('slope', 'bias')
        """
        p, k = self.solution.shape
        if p * k == 2:
            basis = torch.eye(2, dtype=torch.float64).reshape(2, p, k)
            axes = (names[0], names[1]) if names and len(names) >= 2 else ("θ₀", "θ₁")
            return Plane(torch.zeros(p, k, dtype=torch.float64), basis[0], basis[1], axes)
        positive = (self.eigenvalues > self._zero_tolerance).nonzero().flatten().tolist()
        steep = positive[-1] if positive else p - 1
        flat = positive[0] if len(positive) > 1 else (0 if steep != 0 else 1)
        spread = torch.full((1, k), k**-0.5, dtype=torch.float64)
        u = self.eigenvectors[:, steep : steep + 1] * spread
        v = self.eigenvectors[:, flat : flat + 1] * spread
        axes = (
            f"steepest direction (λ {float(self.eigenvalues[steep]):.4g})",
            f"flattest direction (λ {float(self.eigenvalues[flat]):.4g})",
        )
        return Plane(self.solution, u, v, (axes[0], axes[1]))

    def landscape(
        self, plane: "Plane", a: Tensor, b: Tensor, original_units: bool = False
    ) -> Tensor:
        """The loss over the grid of plane coordinates ``a`` (m,) by ``b`` (n,): shape
        (n, m), exactly `losses` at those parameters (in the fitted units, the
        ones the model logs, unless ``original_units``)."""
        grid_b, grid_a = torch.meshgrid(b.double(), a.double(), indexing="ij")
        thetas = plane.points(grid_a.flatten(), grid_b.flatten())
        losses = self.losses(thetas, original_units)
        return torch.tensor(losses, dtype=torch.float64).reshape(len(b), len(a))

    # --- losses ------------------------------------------------------------------------

    def loss(self, theta: Tensor, original_units: bool = True) -> float:
        """The MSE over the whole data at parameters ``theta`` (p, K), in original units
        (or in the fitted ones, the units the model computes its loss in)."""
        return self.losses(theta.unsqueeze(0), original_units)[0]

    def losses(self, thetas: Tensor, original_units: bool = True) -> list[float]:
        """`loss` at each of several parameters ``thetas`` (count, p, K), at once."""
        theta = thetas.double()
        per_target = (
            (theta * (self.gram @ theta)).sum(1) - 2 * (theta * self.cross).sum(1) + self.square
        )
        per_target = per_target.clamp_min(0.0)  # rounding can dip a hair below an exact 0
        if original_units:
            per_target = per_target * self.target_scale**2
        return per_target.mean(1).tolist()

    @cached_property
    def optimum_loss(self) -> float:
        """The smallest MSE any parameters reach on this data, in original units."""
        return self.loss(self.solution)

    @property
    def exact_fit(self) -> bool:
        """Whether the optimum fits the data exactly (up to rounding)."""
        return self.optimum_loss <= self.gap_floor

    @cached_property
    def gap_floor(self) -> float:
        """A millionth of the loss of predicting zero: the smallest loss the gap is relative
        to, so that data with an exact fit (an optimum of 0 up to rounding) has a gap too."""
        return 1e-6 * self.loss(torch.zeros_like(self.solution))

    def excess(self, theta: Tensor) -> float:
        """How far the loss at ``theta`` is above the optimum, in original units."""
        return self.loss(theta) - self.optimum_loss

    def relative(self, excess: float) -> float:
        """An excess loss relative to the optimum (0.01 is 1%), or to `gap_floor`
        where the optimum is smaller; where both are 0 (every target is 0, so the zero
        model is exact) any excess is infinitely far, and none is 0.

        Examples:
            >>> ref = FitReference.from_data(torch.ones(3, 1), torch.zeros(3, 1))
            >>> ref.relative(0.0), ref.relative(1e-9)
            (0.0, inf)
        """
        scale = max(self.optimum_loss, self.gap_floor)
        if scale <= 0:
            return 0.0 if excess <= 0 else math.inf
        return excess / scale

    def gap(self, theta: Tensor) -> float:
        """How far the loss at ``theta`` is above the optimum, relatively (0.01 is 1%)."""
        return self.relative(self.excess(theta))

    @property
    def num_parameters(self) -> int:
        return self.gram.shape[0]

    @property
    def rank_deficient(self) -> bool:
        return self.rank < self.num_parameters

    # --- curvature -----------------------------------------------------------------------

    @property
    def _zero_tolerance(self) -> float:
        """Eigenvalues at or below this are zero up to rounding."""
        return float(self.eigenvalues[-1]) * self.num_parameters * 1e-12

    @property
    def _positive(self) -> Tensor:
        """The Hessian's eigenvalues that are not zero up to rounding."""
        return self.eigenvalues[self.eigenvalues > self._zero_tolerance]

    @property
    def largest_eigenvalue(self) -> float:
        return float(self.eigenvalues[-1])

    @property
    def flat(self) -> bool:
        """Whether the loss does not depend on the parameters at all: every eigenvalue is
        zero (a design matrix of zeros, such as all-zero inputs and no bias)."""
        return len(self._positive) == 0

    @property
    def smallest_eigenvalue(self) -> float:
        """The smallest eigenvalue that is not zero (zeros come with rank deficiency);
        0 when the loss is `flat`."""
        positive = self._positive
        return float(positive[0]) if len(positive) else 0.0

    @property
    def condition_number(self) -> float:
        """Largest over smallest non-zero eigenvalue of the Hessian (``inf`` when flat)."""
        return self.largest_eigenvalue / self.smallest_eigenvalue if not self.flat else math.inf

    @property
    def stable_lr(self) -> float:
        """Full-batch gradient descent diverges at or above this learning rate (2 / λ_max;
        ``inf`` when the loss is flat)."""
        return 2.0 / self.largest_eigenvalue if not self.flat else math.inf

    @property
    def best_lr(self) -> float:
        """The constant learning rate that converges fastest: 2 / (λ_max + λ_min) (``inf``
        when the loss is flat: no rate changes anything)."""
        if self.flat:
            return math.inf
        return 2.0 / (self.largest_eigenvalue + self.smallest_eigenvalue)

    def epochs_to_gap(self, theta: Tensor, lr: float, gap: float) -> float:
        """Full-batch steps at ``lr`` from ``theta`` until the relative gap is at most ``gap``.

        Exact for gradient descent on this quadratic (in exact arithmetic): the error
        along each eigenvector of the Hessian shrinks by ``|1 - lr λ|`` per step.
        ``math.inf`` when the rate never gets there (``lr`` at or above the stable bound).

        Examples:
            >>> design = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
            >>> ref = FitReference.from_data(design, torch.tensor([[1.0], [1.0], [0.0]]))
            >>> start = torch.zeros(2, 1)
            >>> round(ref.condition_number, 3), ref.epochs_to_gap(start, ref.best_lr, 0.01)
            (3.124, 4)
        """
        target = gap * max(self.optimum_loss, self.gap_floor)
        values, vectors = self.eigenvalues, self.eigenvectors
        error = vectors.T @ (theta.double() - self.solution)  # (p, K) in the eigenbasis
        scale = self.target_scale**2
        # excess(t) = sum over directions and targets of λ/2 · e² · (1 - lr λ)^(2t) · scale
        weights = (values[:, None] / 2 * error**2 * scale).sum(1)  # (p,)
        rates = (1 - lr * values).abs()
        # directions of zero curvature (collinear columns) do not change the loss
        keep = (weights > 0) & (values > self._zero_tolerance)
        weights, rates = weights[keep], rates[keep]

        def excess_after(steps: float) -> float:
            return float((weights * rates ** (2 * steps)).sum())

        if excess_after(0) <= target:
            return 0
        if bool((rates >= 1).any()):
            return math.inf
        high = 1.0
        while excess_after(high) > target:
            high *= 2
            if high > 1e18:
                return math.inf
        low = high / 2 if high > 1 else 0.0
        while high - low > 1:
            middle = math.floor((low + high) / 2)
            low, high = (middle, high) if excess_after(middle) > target else (low, middle)
        return int(high)

    def fastest_lr(self, theta: Tensor, gap: float = 0.01) -> float:
        """The constant learning rate that full-batch gradient descent from ``theta`` is
        predicted (`epochs_to_gap`) to bring within ``gap`` of the optimum soonest.

        The candidates run from ``0.05 / λ_max`` to ``1.8 / λ_max`` (and
        ``2 / (λ_max + λ_min)`` when below that): never near the stable bound
        ``2 / λ_max``, where the steepest direction barely shrinks (and a loss in float32
        rounding swings); at ``1.8 / λ_max`` it still shrinks by a factor 0.8 a step.
        Among rates predicted equally fast the smallest is taken.
        ``1 / λ_max`` when ``theta`` is within ``gap`` already.

        Examples:
            >>> design = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
            >>> ref = FitReference.from_data(design, torch.tensor([[1.0], [1.0], [0.0]]))
            >>> lr = ref.fastest_lr(torch.zeros(2, 1))
            >>> round(lr, 4), ref.epochs_to_gap(torch.zeros(2, 1), lr, 0.01)
            (0.2687, 3)
        """
        largest = self.largest_eigenvalue
        candidates = [step / 20 / largest for step in range(1, 37)]
        if self.best_lr < candidates[-1]:
            candidates.append(self.best_lr)
        epochs = {lr: self.epochs_to_gap(theta, lr, gap) for lr in sorted(candidates)}
        fastest = min(epochs.values())
        if fastest == 0 or math.isinf(fastest):
            return 1 / largest
        return min(lr for lr, count in epochs.items() if count == fastest)

    def describe(
        self, lr: float, theta: Tensor, gap: float = 0.01, gradient_descent: bool = True
    ) -> str:
        """A short block: the curvature, the optimum, and for plain gradient descent the
        learning rates it allows and the epochs predicted from ``theta`` at ``lr`` and at
        `fastest_lr` (other optimizers follow other paths: no prediction)."""
        lines = [
            f"curvature of the MSE: λ_max {self.largest_eigenvalue:.4g}, "
            f"λ_min {self.smallest_eigenvalue:.4g}, condition number {self.condition_number:.4g}",
        ]
        if gradient_descent:
            fastest = self.fastest_lr(theta, gap)
            lines += [
                f"learning rate: {lr:.4g}; stable below {self.stable_lr:.4g}; fastest from "
                f"this start {fastest:.4g}",
                f"full-batch epochs to within {gap:.0%} of the optimum: "
                f"{_count(self.epochs_to_gap(theta, lr, gap))} at lr {lr:.4g}"
                + (
                    ""
                    if math.isclose(fastest, lr)
                    else f", {_count(self.epochs_to_gap(theta, fastest, gap))} at lr {fastest:.4g}"
                ),
            ]
        else:
            lines.append(f"learning rate: {lr:.4g} (not plain gradient descent: no prediction)")
        lines.append(
            f"best possible loss {self.optimum_loss:.6g} (least squares)"
            + (": the data can be fitted exactly" if self.exact_fit else "")
        )
        if self.rank_deficient:
            lines.append(
                f"the design matrix has rank {self.rank} of {self.num_parameters} (collinear "
                f"columns): many parameters reach that loss; the reference is the minimum-norm one"
            )
        return "\n".join(lines)

    def summary(self, theta: Tensor) -> str:
        """How far the loss at ``theta`` is above the best possible, in words.

        Examples:
            >>> design = torch.tensor([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0]])
            >>> ref = FitReference.from_data(design, torch.tensor([[1.0], [3.0], [2.0]]))
            >>> ref.summary(ref.solution)
            'loss 0.5; the best possible loss is 0.5 (least squares): reached'
            >>> ref.summary(torch.zeros(2, 1))
            'loss 4.667; the best possible loss is 0.5 (least squares): 9.33 times as much'
        """
        return describe_loss(self.loss(theta), self.optimum_loss, self.exact_fit)


@dataclass(frozen=True)
class Plane:
    """A plane in parameter space: ``theta = origin + a * u + b * v``, with ``u`` and
    ``v`` orthonormal (as flat vectors), each of the parameters' shape (p, K).

    Attributes:
        origin: the point at coordinates (0, 0).
        u: the first axis' direction.
        v: the second axis' direction.
        axes: the axes' names.
    """

    origin: Tensor
    u: Tensor
    v: Tensor
    axes: tuple[str, str]

    def coordinates(self, thetas: Tensor) -> Tensor:
        """The coordinates (count, 2) of parameters ``thetas`` (count, p, K): of their
        projection onto the plane, for parameters off it.

        Examples:
            >>> e = torch.eye(2)
            >>> plane = Plane(torch.zeros(2, 1), e[:, :1], e[:, 1:], ("a", "b"))
            >>> plane.coordinates(torch.tensor([[[3.0], [4.0]]]))
            tensor([[3., 4.]], dtype=torch.float64)
        """
        offset = thetas.double() - self.origin.double()
        along = [(offset * axis.double()).sum((1, 2)) for axis in (self.u, self.v)]
        return torch.stack(along, dim=1)

    def points(self, a: Tensor, b: Tensor) -> Tensor:
        """The parameters (count, p, K) at coordinates ``a`` and ``b`` (each (count,))."""
        origin, u, v = self.origin.double(), self.u.double(), self.v.double()
        return origin + a.double()[:, None, None] * u + b.double()[:, None, None] * v


def describe_loss(loss: float, optimum: float, exact_fit: bool) -> str:
    """``loss X; the best possible loss is Y ...: how much more``, in words a learner checks.

    Examples:
        >>> describe_loss(0.4879, 0.4831, False)
        'loss 0.4879; the best possible loss is 0.4831 (least squares): 0.99% above it'
        >>> describe_loss(2e-3, 0.0, True)
        'loss 0.002; the data can be fitted exactly (best possible loss 0): 0.002 above it'
    """
    if exact_fit:
        return f"loss {loss:.4g}; the data can be fitted exactly (best possible loss 0): " + (
            "reached" if loss <= 0 else f"{loss:.4g} above it"
        )
    head = f"loss {loss:.4g}; the best possible loss is {optimum:.4g} (least squares): "
    ratio = loss / optimum
    if ratio >= 2:
        return head + f"{ratio:.3g} times as much"
    if loss - optimum <= 1e-9 * optimum:
        return head + "reached"
    return head + f"{ratio - 1:.2%} above it"


def _count(epochs: float) -> str:
    return "never" if math.isinf(epochs) else f"{int(epochs):,}"
