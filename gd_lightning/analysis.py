r"""Exact facts about a least-squares fit: its optimum, its curvature, and how fast
gradient descent approaches the one along the other.

Every model here is linear in its parameters: predictions are ``A @ theta`` for a
design matrix ``A`` (``[x, 1]`` for the linear model, ``[t**2, t, 1]`` for the
quadratic) and parameters ``theta`` of shape (p, K), one column per target. The mean
squared error over all ``n * K`` values is an exact quadratic in ``theta``. It is
computed here from the triangular factor of a QR decomposition of the table
``[A | y]``, never from ``AᵀA`` (forming it squares the condition number and loses
every digit of an ill-conditioned design):

$$
[A \mid y] = Q \begin{pmatrix} R & c \\ 0 & S \end{pmatrix}, \qquad
L(\theta) = \frac{1}{nK} \sum_k \Big(\lVert R\,\theta_k - c_k \rVert^2
+ \lVert S_k \rVert^2\Big).
$$

So the optimum solves ``R θ = c`` (back substitution), the loss any ``θ`` is above it is
``‖R (θ - θ*)‖² / (nK)`` with nothing cancelled, and the Hessian ``2 RᵀR / (nK)`` has the
squared singular values of ``R`` (times ``2 / (nK)``) as its eigenvalues. All in float64.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class LeastSquaresReference:
    """The loss as a quadratic in the parameters, with its optimum and curvature.

    Built in one pass over the rows by a blocked ("tall-skinny") QR decomposition of
    ``[A | y]`` in float64: each block of rows is stacked under the triangle so far
    and factored again (``R ← qr([R; block]).R``), every column first scaled by a power
    of two (exact) to a size near 1. Rank and conditioning are decided on the design
    with its columns scaled to unit length, where they do not depend on the columns'
    units; the optimum is solved there too, so a badly scaled design (a column of
    values near 1e6 beside its square near 1e12) keeps the digits its conditioning
    allows, as ``numpy.linalg.lstsq`` does.

    Attributes:
        triangle: the upper triangular factor of ``[A | y]``, shape (p + K, p + K): its
            top left (p, p) block is ``R``, its top right ``c``, its bottom right ``S``.
        rows: ``n``, the number of rows.
        target_scale: per target, the factor that turns the fitted targets' units
            into original units (1 unless targets are standardized), shape (K,).
        epsilon: the machine epsilon of the numbers the fit computes with (float32's,
            or float64's under ``precision="64-true"``): it decides which losses are
            rounding (`resolution`).
        solution: the least-squares parameters (minimum norm when columns are
            collinear), shape (p, K).
        rank: the rank of ``A``.
        eigenvalues: of the Hessian ``2 AᵀA / (nK)``, ascending, shape (p,); those of
            directions the data cannot tell apart (beyond the rank) are 0.
        eigenvectors: of ``AᵀA`` (and so of the Hessian), one column per eigenvalue,
            shape (p, p): the curvature is decomposed once, when the reference is built.
        condition_equal_columns: the Hessian's condition number with the design's
            columns scaled to equal length, the part of `condition_number` that
            rescaling the columns cannot remove.
    """

    triangle: Tensor
    rows: int
    target_scale: Tensor
    epsilon: float
    solution: Tensor
    rank: int
    eigenvalues: Tensor
    eigenvectors: Tensor
    condition_equal_columns: float

    @classmethod
    def from_data(
        cls, design: Tensor, targets: Tensor, target_scale: Tensor | None = None
    ) -> "LeastSquaresReference":
        """Build from the design matrix (n, p) and targets (n, K) the model is fitted to.

        Examples:
            >>> t = torch.arange(5.0)
            >>> design = torch.stack([t, torch.ones(5)], dim=1)  # a line: [x, 1]
            >>> ref = LeastSquaresReference.from_data(design, (2 * t + 1)[:, None])
            >>> ref.solution.T.round(decimals=6), ref.rank, ref.optimum_loss < 1e-12
            (tensor([[2., 1.]], dtype=torch.float64), 2, True)
        """
        return cls.from_blocks([(design, targets)], target_scale)

    @classmethod
    def from_blocks(
        cls,
        blocks: Iterable[tuple[Tensor, Tensor]],
        target_scale: Tensor | None = None,
        epsilon: float | None = None,
    ) -> "LeastSquaresReference":
        """Build from the design matrix and targets given a block of rows at a time: one
        pass, with memory for one block and a (p + K) square triangle.

        Where ``blocks`` can be iterated again (a list, or an object whose ``__iter__``
        starts over, not a generator), the optimum is refined by two more passes
        (`refined`) when the data are small (`REFINE_VALUES`, milliseconds) or the design
        so ill-conditioned that float64 keeps fewer than about ten digits of it (its
        condition number with columns of equal size above `REFINE_ABOVE`): that wins
        the digits the QR's rounding lost, up to those the data's own rounding allows.

        A reference built per process (each on its share of the rows) combines with
        another by one more QR of the two triangles stacked (`combined`).

        ``epsilon`` is the machine epsilon of the numbers the fit computes with: by
        default the blocks' own dtype's.
        """
        rows = TriangleOfRows()
        seen, width = 0.0, 0
        for design, targets in blocks:
            for part in (design, targets):
                if part.is_floating_point():
                    seen = max(seen, torch.finfo(part.dtype).eps)
            width = design.shape[1]
            rows.add(design, targets)
        epsilon = seen if epsilon is None else epsilon
        reference = cls.from_triangle(rows.factor(), rows.count, width, target_scale, epsilon)
        if reference.worth_refining and iter(blocks) is not blocks:
            reference = reference.refined(blocks).refined(blocks)
        return reference

    @property
    def worth_refining(self) -> bool:
        """Whether two passes of `refined` win digits worth their cost: the data are
        small (`REFINE_VALUES` values, milliseconds), or the design so ill-conditioned
        that float64 QR keeps fewer than about ten digits of its optimum."""
        small = self.rows * self.triangle.shape[1] <= REFINE_VALUES
        return small or self.condition_equal_columns > REFINE_ABOVE**2

    def refined(self, blocks: Iterable[tuple[Tensor, Tensor]]) -> "LeastSquaresReference":
        """This reference with its optimum improved by one step of iterative refinement
        (the corrected semi-normal equations, Björck): the residual ``y - A θ*`` and
        ``Aᵀ`` times it summed in extended precision (NumPy's ``longdouble``) over the
        rows ``blocks`` gives again, then ``RᵀR δ = Aᵀr`` solved with the triangle.
        Unchanged where the columns are collinear.

        Examples:
            >>> t = torch.arange(6.0, dtype=torch.float64)
            >>> a, y = torch.stack([t, torch.ones(6)], 1), (3 * t - 1)[:, None]
            >>> LeastSquaresReference.from_data(a, y).refined([(a, y)]).solution.T
            tensor([[ 3., -1.]], dtype=torch.float64)
        """
        if self.rank_deficient:
            return self
        theta = self.solution.numpy().astype(np.longdouble)  # (p, K)
        pulled = np.zeros(theta.shape, dtype=np.longdouble)
        for design, targets in blocks:
            a = design.detach().cpu().double().numpy().astype(np.longdouble)
            y = targets.detach().cpu().double().numpy().astype(np.longdouble)
            pulled += a.T @ (y - a @ theta)  # (p, K)
        p = self.num_parameters
        r = self.triangle[:p, :p]
        equal, unit = _equal_columns(r)
        # RᵀR δ = g with R = E diag(unit): EᵀE (unit δ) = g / unit
        g = torch.from_numpy(pulled.astype(np.float64)) / unit[:, None]
        w = torch.linalg.solve_triangular(equal.T, g, upper=False)
        step = torch.linalg.solve_triangular(equal, w, upper=True) / unit[:, None]
        return replace(self, solution=self.solution + step)

    @classmethod
    def from_triangle(
        cls,
        triangle: Tensor,
        rows: int,
        num_parameters: int,
        target_scale: Tensor | None = None,
        epsilon: float = torch.finfo(torch.float32).eps,
    ) -> "LeastSquaresReference":
        """Build from the triangular factor of ``[A | y]`` (of ``rows`` rows, the first
        ``num_parameters`` columns the design's), as `from_blocks` computes it."""
        size = triangle.shape[1]
        triangle = torch.cat([triangle, triangle.new_zeros(size - len(triangle), size)])
        triangle = triangle.double().triu()
        p, k = num_parameters, size - num_parameters
        r, c = triangle[:p, :p], triangle[:p, p:]
        equal, unit = _equal_columns(r)
        singular = torch.linalg.svdvals(equal)  # descending
        tolerance = max(rows, p) * torch.finfo(torch.float64).eps * float(singular[0])
        rank = int((singular > tolerance).sum()) if p else 0
        u, values, vh = torch.linalg.svd(r)  # the Hessian's directions, descending
        if rank == p and p:
            # scaled back substitution: each parameter's digits, whatever its column's units
            solution = torch.linalg.solve_triangular(equal, c, upper=True) / unit[:, None]
            if float(unit.max() / unit.min()) > GRADED:
                # the smallest singular value of a graded R (columns of very different
                # lengths), from its inverse: one of the scaled triangle's (accurate)
                # over the column lengths; an SVD of R itself keeps only its absolute size
                inverse = (
                    torch.linalg.solve_triangular(
                        equal, torch.eye(p, dtype=torch.float64), upper=True
                    )
                    / unit[:, None]
                )
                values = values.clone()
                values[-1] = 1 / torch.linalg.matrix_norm(inverse, ord=2)
        else:
            # collinear columns: the minimum-norm optimum, from the directions in the rank
            kept = values[:rank]
            solution = vh[:rank].T @ ((u[:, :rank].T @ c) / kept[:, None])
            values = torch.cat([kept, values.new_zeros(p - rank)])
        equal_kept = singular[:rank]
        condition_equal = float((equal_kept[0] / equal_kept[-1]) ** 2) if rank else math.inf
        scale = torch.ones(k, dtype=torch.float64) if target_scale is None else target_scale
        return cls(
            triangle=triangle,
            rows=rows,
            target_scale=scale.detach().double().cpu(),
            epsilon=float(epsilon),
            solution=solution,
            rank=rank,
            eigenvalues=(2 * values**2 / (rows * k)).flip(0),
            eigenvectors=vh.T.flip(1),
            condition_equal_columns=condition_equal,
        )

    def combined(self, other: "LeastSquaresReference") -> "LeastSquaresReference":
        """The reference of this one's rows and ``other``'s together (data split across
        processes): one QR of the two triangles stacked.

        Examples:
            >>> t = torch.arange(6.0)
            >>> a, y = torch.stack([t, torch.ones(6)], 1), (3 * t - 1)[:, None]
            >>> one = LeastSquaresReference.from_data(a[:4], y[:4]).combined(
            ...     LeastSquaresReference.from_data(a[4:], y[4:]))
            >>> one.rows, one.solution.T.round(decimals=6)
            (6, tensor([[ 3., -1.]], dtype=torch.float64))
        """
        stacked = torch.cat([self.triangle, other.triangle])
        return LeastSquaresReference.from_triangle(
            torch.linalg.qr(stacked, mode="r").R,
            self.rows + other.rows,
            self.num_parameters,
            self.target_scale,
            max(self.epsilon, other.epsilon),
        )

    @property
    def num_parameters(self) -> int:
        """``p``, the parameters per target."""
        return self.solution.shape[0]

    @cached_property
    def gram(self) -> Tensor:
        """``AᵀA / n``, shape (p, p) (for reading only: nothing here is solved with it)."""
        r = self.triangle[: self.num_parameters, : self.num_parameters]
        return r.T @ r / self.rows

    # --- the landscape ---------------------------------------------------------------

    def plane(self, names: list[str] | None = None) -> "Plane":
        """The plane a picture of the loss draws: for two parameters, the parameters
        themselves (axes named ``names``, in their own units); for more, the plane
        through the optimum spanned by the directions of largest and smallest non-zero
        curvature (the Hessian's extreme eigenvectors), the same direction for every
        target.

        Examples:
            >>> t = torch.arange(5.0)
            >>> design = torch.stack([t, torch.ones(5)], 1)
            >>> ref = LeastSquaresReference.from_data(design, t[:, None])
            >>> ref.plane(["slope", "bias"]).axes
            ('slope', 'bias')
        """
        p, k = self.solution.shape
        if p * k == 2:
            basis = torch.eye(2, dtype=torch.float64).reshape(2, p, k)
            axes = (names[0], names[1]) if names and len(names) >= 2 else ("θ₀", "θ₁")
            return Plane(torch.zeros(p, k, dtype=torch.float64), basis[0], basis[1], axes)
        positive = (self.eigenvalues > 0).nonzero().flatten().tolist()
        steep = positive[-1] if positive else p - 1
        flat = positive[0] if len(positive) > 1 else (0 if steep != 0 else 1)
        spread = torch.full((1, k), k**-0.5, dtype=torch.float64)
        u = self.eigenvectors[:, steep : steep + 1] * spread
        v = self.eigenvectors[:, flat : flat + 1] * spread
        steepest, flattest = (
            f"{kind} direction{direction_in_words(vector, names)} "
            f"(λ {float(self.eigenvalues[index]):.4g})"
            for kind, vector, index in (("steepest", u, steep), ("flattest", v, flat))
        )
        return Plane(self.solution, u, v, (steepest, flattest))

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
        p = self.num_parameters
        r, c = self.triangle[:p, :p], self.triangle[:p, p:]
        misfit = r @ thetas.double().cpu() - c  # (count, p, K)
        per_target = ((misfit**2).sum(1) + self._unexplained) / self.rows  # (count, K)
        if original_units:
            per_target = per_target * self.target_scale**2
        return per_target.mean(1).tolist()

    @cached_property
    def _unexplained(self) -> Tensor:
        """``‖S_k‖²`` per target (K,): the squares no parameters of this design explain."""
        p = self.num_parameters
        return (self.triangle[p:, p:] ** 2).sum(0)

    @cached_property
    def optimum_loss(self) -> float:
        """The smallest MSE any parameters reach on this data, in original units."""
        return self.loss(self.solution)

    @cached_property
    def zero_loss(self) -> float:
        """The MSE of predicting 0 everywhere (all parameters 0), in original units."""
        return self.loss(torch.zeros_like(self.solution))

    @cached_property
    def resolution(self) -> float:
        """The smallest excess loss the fit's numbers resolve, in original units: the
        loss of predicting zero and the mean square of each of the fit's terms
        (``θ*_j`` times its column), whichever is larger, times ``p ε²`` (``ε`` the
        fit's machine `epsilon`). Parameters rounded to the fit's precision, and the
        rounding of the data the fit reads, are that far from the optimum; a loss
        closer to it than that is rounding, not fitting."""
        p = self.num_parameters
        lengths = self.triangle[:p, :p].norm(dim=0)  # (p,) the design's column lengths
        terms = (self.solution**2 * lengths[:, None] ** 2).sum(0) / self.rows  # (K,)
        terms = (terms * self.target_scale**2).mean()
        return max(self.zero_loss, float(terms)) * max(p, 1) * self.epsilon**2

    @property
    def exact_fit(self) -> bool:
        """Whether the optimum fits the data exactly, up to the fit's rounding
        (`resolution`)."""
        return self.optimum_loss <= self.resolution

    @property
    def gap_scale(self) -> float:
        """What a gap is a fraction of: the optimum's loss; where the data can be fitted
        exactly (`exact_fit`), a fraction of 0 means nothing, and a gap is absolute: the
        loss above the optimum itself, in the targets' squared units (scale 1)."""
        return 1.0 if self.exact_fit else self.optimum_loss

    @property
    def gap_of(self) -> str:
        """What a gap is measured against, in words."""
        if self.exact_fit:
            return "the best possible loss, absolute (the data can be fitted exactly)"
        return "the best possible loss"

    def in_words(self, gap: float) -> str:
        """A gap as the lines print it: a fraction with its digits (`fraction`), or the
        absolute loss above the optimum where the data can be fitted exactly.

        Examples:
            >>> LeastSquaresReference.from_data(torch.ones(3, 1), torch.ones(3, 1)).in_words(0.01)
            '0.01'
        """
        return f"{gap:.2g}" if self.exact_fit else fraction(gap)

    @property
    def smallest_gap(self) -> float:
        """The smallest gap the fit's precision resolves (`resolution` over `gap_scale`):
        a fit asked for less stops there."""
        scale = self.gap_scale
        return self.resolution / scale if scale > 0 else 0.0

    def reachable_gap(self, gap: float) -> float:
        """``gap``, or `smallest_gap` when that is larger."""
        return max(gap, self.smallest_gap)

    def excess(self, theta: Tensor) -> float:
        """How far the loss at ``theta`` (p, K) is above the optimum, in original units:
        ``‖R (θ - θ*)‖² / (nK)``, computed without subtracting two losses."""
        p = self.num_parameters
        offset = self.triangle[:p, :p] @ (theta.double().cpu() - self.solution)  # (p, K)
        per_target = (offset**2).sum(0) / self.rows * self.target_scale**2
        return float(per_target.mean())

    def relative(self, excess: float) -> float:
        """An excess loss relative to `gap_scale` (0.01 is 1%): the excess itself where
        the data can be fitted exactly.

        Examples:
            >>> ref = LeastSquaresReference.from_data(torch.ones(3, 1), torch.zeros(3, 1))
            >>> ref.relative(0.0), ref.relative(1e-9)
            (0.0, 1e-09)
        """
        scale = self.gap_scale
        if scale <= 0:
            return 0.0 if excess <= 0 else math.inf
        return excess / scale

    def gap(self, theta: Tensor) -> float:
        """How far the loss at ``theta`` is above the optimum, relatively (0.01 is 1%)."""
        return self.relative(self.excess(theta))

    @property
    def rank_deficient(self) -> bool:
        return self.rank < self.num_parameters

    # --- curvature -----------------------------------------------------------------------

    @property
    def _positive(self) -> Tensor:
        """The Hessian's eigenvalues of the directions within the rank."""
        return self.eigenvalues[self.eigenvalues > 0]

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
        """Largest over smallest non-zero eigenvalue of the Hessian (``inf`` when flat):
        the square of the design's condition number."""
        return self.largest_eigenvalue / self.smallest_eigenvalue if not self.flat else math.inf

    @property
    def badly_scaled(self) -> bool:
        """Whether rescaling the design's columns would lower its `condition_number` by
        a factor above 100 (and it is above `CONDITION_TO_STANDARDIZE`): columns in
        very different units, which gradient descent crawls along."""
        return (
            not self.flat
            and self.condition_number > CONDITION_TO_STANDARDIZE
            and self.condition_number > 100 * self.condition_equal_columns
        )

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
        """Full-batch steps at ``lr`` from ``theta`` until the relative gap is at most ``gap``
        (or `smallest_gap`, when ``gap`` is below what the fit's precision resolves).

        Exact for gradient descent on this quadratic (in exact arithmetic): the error
        along each eigenvector of the Hessian shrinks by ``|1 - lr λ|`` per step. An
        integer, to within one part in 10⁹ when it is past 10⁹ (a badly scaled design
        can need 10²⁴); ``math.inf`` when the rate never gets there (``lr`` at or above
        the stable bound).

        Examples:
            >>> design = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
            >>> ref = LeastSquaresReference.from_data(design, torch.tensor([[1.0], [1.0], [0.0]]))
            >>> start = torch.zeros(2, 1)
            >>> round(ref.condition_number, 3), ref.epochs_to_gap(start, ref.best_lr, 0.01)
            (3.124, 4)
        """
        target = self.reachable_gap(gap) * self.gap_scale
        values, vectors = self.eigenvalues, self.eigenvectors
        error = vectors.T @ (theta.double().cpu() - self.solution)  # (p, K) in the eigenbasis
        scale = self.target_scale**2
        # excess(t) = sum over directions and targets of λ/2 · e² · (1 - lr λ)^(2t) · scale
        weights = (values[:, None] / 2 * error**2 * scale).sum(1)  # (p,)
        # directions of zero curvature (collinear columns) do not change the loss
        keep = (weights > 0) & (values > 0)
        weights, step = weights[keep], lr * values[keep]
        if bool((step >= 2).any()) or bool((step <= 0).any()):
            return 0 if float(weights.sum()) <= target else math.inf
        # log |1 - lr λ|, with every digit where lr λ is tiny (a badly scaled design)
        log_rates = torch.where(step < 1, torch.log1p(-step.clamp(max=1)), (step - 1).log())

        def excess_after(steps: float) -> float:
            return float((weights * torch.exp(2 * steps * log_rates)).sum())

        if excess_after(0) <= target:
            return 0
        high = 1.0
        while excess_after(high) > target:
            high *= 2
            if high > 1e300:
                return math.inf
        low = high / 2 if high > 1 else 0.0
        while high - low > max(1.0, high * 1e-9):
            middle = float(math.floor((low + high) / 2))
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
            >>> ref = LeastSquaresReference.from_data(design, torch.tensor([[1.0], [1.0], [0.0]]))
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
        `fastest_lr` to within ``gap`` (other optimizers follow other paths: no
        prediction)."""
        lines = [
            f"curvature of the MSE: λ_max {self.largest_eigenvalue:.4g}, "
            f"λ_min {self.smallest_eigenvalue:.4g}, condition number {self.condition_number:.4g}",
        ]
        aim = self.reachable_gap(gap)
        if gradient_descent:
            fastest = self.fastest_lr(theta, gap)
            lines += [
                f"learning rate: {lr:.4g}; stable below {self.stable_lr:.4g}; fastest from "
                f"this start {fastest:.4g}",
                f"full-batch epochs to within {self.in_words(aim)} of the optimum"
                f"{' (absolute)' if self.exact_fit else ''}: "
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
            + (
                f": the data can be fitted exactly (a loss below {self.resolution:.2g} is "
                f"rounding at this precision), so gaps are absolute: the loss above it, in "
                f"the targets' squared units"
                if self.exact_fit
                else ""
            )
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
            >>> ref = LeastSquaresReference.from_data(design, torch.tensor([[1.0], [3.0], [2.0]]))
            >>> ref.summary(ref.solution)
            'loss 0.5; the best possible loss is 0.5 (least squares): reached'
            >>> ref.summary(torch.zeros(2, 1))
            'loss 4.667; the best possible loss is 0.5 (least squares): 9.33 times as much'
        """
        excess = self.excess(theta)
        return describe_loss(
            self.optimum_loss + excess,
            self.optimum_loss,
            self.exact_fit,
            excess=excess,
            resolution=self.resolution,
        )


#: a ratio of the design's longest column to its shortest above which the smallest
#: singular value is computed again from the triangle's inverse (a graded triangle's SVD
#: gets it only to within ε σ_max)
GRADED = 16.0

#: a design condition number (columns of equal size) above which the optimum is refined
#: whatever the data's size: float64 QR keeps about ``16 - log10(κ)`` digits, ten from
#: here on
REFINE_ABOVE = 1e6

#: data of at most this many values (rows times columns of ``[A | y]``) get their optimum
#: refined whatever their conditioning: two passes in extended precision take tens of
#: milliseconds there (NumPy's ``longdouble`` has no BLAS: about 0.1 s a million values)
REFINE_VALUES = 1 << 18

#: a condition number above which gradient descent on data left raw is told to
#: standardize (the standardized tutorials' are all below 100)
CONDITION_TO_STANDARDIZE = 1e3


class TriangleOfRows:
    """The upper triangular factor ``R`` of the QR decomposition of a table whose rows
    come a block at a time: one pass, with memory for one block and the triangle
    (``R ← qr([R; block]).R``, a blocked "tall-skinny" QR), in float64, every column
    first scaled by a power of two (exact) to a size near 1.

    Examples:
        >>> rows = TriangleOfRows()
        >>> rows.add(torch.tensor([[3.0], [0.0]]), torch.tensor([[0.0], [1.0]]))
        >>> rows.add(torch.tensor([[4.0]]), torch.tensor([[0.0]]))
        >>> rows.count, rows.factor().abs()
        (3, tensor([[5., 0.],
                [0., 1.]], dtype=torch.float64))
    """

    def __init__(self) -> None:
        self.triangle: Tensor | None = None
        self.scale: Tensor | None = None
        #: the rows added so far
        self.count = 0

    def add(self, *parts: Tensor) -> None:
        """Add the rows whose columns ``parts`` (each (rows, columns)) hold, side by side."""
        top = 0 if self.triangle is None else len(self.triangle)
        width = sum(part.shape[1] for part in parts)
        # [R; block] in one float64 buffer, each part copied (and converted) once
        stacked = torch.empty(top + len(parts[0]), width, dtype=torch.float64)
        if self.triangle is not None:
            stacked[:top] = self.triangle
        first = 0
        for part in parts:
            stacked[top:, first : first + part.shape[1]] = part.detach()
            first += part.shape[1]
        if self.scale is None:
            self.scale = _power_of_two_scale(stacked)
        stacked[top:] *= self.scale  # exact: powers of two
        factored, _ = torch.geqrf(stacked)  # R in the upper triangle of the top rows
        self.triangle = factored[:width].triu()
        self.count += len(parts[0])

    def factor(self) -> Tensor:
        """``R`` of the rows added, in their own units; one line when there are none."""
        if self.triangle is None or self.scale is None or self.count == 0:
            raise ValueError("no rows to build the least-squares reference from")
        return self.triangle / self.scale


def _equal_columns(r: Tensor) -> tuple[Tensor, Tensor]:
    """The triangle ``r`` (p, p) with its columns scaled to length 1 (a column of zeros
    left as it is), and the lengths it was divided by: the design's column lengths, which
    Q keeps."""
    lengths = r.norm(dim=0)
    unit = torch.where(lengths > 0, lengths, torch.ones_like(lengths))
    return r / unit, unit


def _power_of_two_scale(table: Tensor) -> Tensor:
    """Per column of ``table`` (n, m), a power of two that brings its largest value near 1
    (1 for a column of zeros): multiplying by it changes no digit."""
    largest = table.abs().amax(0)
    exponents = torch.frexp(torch.where(largest > 0, largest, torch.ones_like(largest))).exponent
    return torch.ldexp(torch.ones_like(largest), -exponents.to(torch.float64))


def direction_in_words(direction: Tensor, names: list[str] | None) -> str:
    """A direction in parameter space (p, K) as the parameters it moves, in ``names``
    (one per parameter, in ``theta``'s order): its largest components, rounded, the
    largest made positive (a direction's sign is arbitrary); ``""`` without names.

    Examples:
        >>> direction_in_words(torch.tensor([[0.1], [-0.99], [0.05]]), ["a", "b", "c"])
        ': -0.1·a + 0.99·b'
        >>> direction_in_words(torch.tensor([[-1.0], [0.0]]), ["a", "b"])
        ': a'
    """
    weights = direction.flatten().tolist()
    if not names or len(names) != len(weights):
        return ""
    largest = max(range(len(weights)), key=lambda i: abs(weights[i]))
    sign = 1.0 if weights[largest] > 0 else -1.0
    named = [i for i in range(len(weights)) if abs(weights[i]) >= 0.1 * abs(weights[largest])]
    terms = ""
    for i in named:
        weight = sign * weights[i]
        joint = (" + " if weight >= 0 else " - ") if terms else ("" if weight >= 0 else "-")
        size = f"{abs(weight):.2g}"
        terms += f"{joint}{'' if size == '1' else size + '·'}{names[i]}"
    return f": {terms}"


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


def describe_loss(
    loss: float,
    optimum: float,
    exact_fit: bool,
    excess: float | None = None,
    resolution: float = 0.0,
) -> str:
    """``loss X; the best possible loss is Y ...: how much more``, in words a learner checks.
    ``excess`` is ``loss - optimum`` computed without that subtraction, when known;
    within ``resolution`` (the fit's rounding) the optimum counts as reached.

    Examples:
        >>> describe_loss(0.4879, 0.4831, False)
        'loss 0.4879; the best possible loss is 0.4831 (least squares): 0.994% above it'
        >>> describe_loss(0.4831 + 1.9e-8, 0.4831, False, excess=1.9e-8)
        'loss 0.4831; the best possible loss is 0.4831 (least squares): 3.9e-08 above it'
        >>> describe_loss(2e-3, 0.0, True)
        'loss 0.002; the data can be fitted exactly (best possible loss 0): 0.002 above it'
    """
    excess = loss - optimum if excess is None else excess
    if exact_fit:
        return (
            f"loss {loss:.4g}; the data can be fitted exactly (best possible loss "
            f"{optimum:.4g}): " + ("reached" if excess <= resolution else f"{excess:.4g} above it")
        )
    head = f"loss {loss:.4g}; the best possible loss is {optimum:.4g} (least squares): "
    if excess <= max(resolution, 0.0):
        return head + "reached"
    ratio = loss / optimum
    if ratio >= 2:
        return head + f"{ratio:.3g} times as much"
    return head + f"{fraction(excess / optimum)} above it"


def fraction(value: float) -> str:
    """A fraction as a reader checks it: a percentage with three digits down to 0.01%,
    below that the number itself with two; never a rounded "0%".

    Examples:
        >>> fraction(0.01), fraction(0.00994), fraction(3.9e-8), fraction(0.0)
        ('1%', '0.994%', '3.9e-08', '0')
    """
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if abs(value) >= 1e-4:
        return f"{value * 100:.3g}%"
    return f"{value:.2g}"


def _count(epochs: float) -> str:
    """An epoch count as said: in full up to a billion, then its power of ten."""
    if math.isinf(epochs):
        return "never"
    if epochs >= 1e9:
        return f"about 10^{round(math.log10(epochs))}"
    return f"{int(epochs):,}"
