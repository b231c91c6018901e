"""The data and parameter layout of a batch of fits, and its residuals and Jacobians.

A `FitBatch` holds one law, the points of one or more data rows (languages), which fitted slot
each law parameter reads at each point (shared across languages or not), the slots' bounds and
transforms, and how residuals are measured. `FitBatchView` evaluates residuals and Jacobians for
some batch rows; the solver in `fits._solver` only talks to these two.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from fits._blocks import BlockLayout
from fits.space import LIN, to_internal, to_natural

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from fits._registry import Law, Partials

_FD_STEP = 1e-7  # forward differences, relative step ~ sqrt(machine epsilon)


@dataclass(frozen=True)
class FitBatch:
    """A batch of fits of one law that share a parameter layout.

    Attributes:
        func: the law.
        names: the law's parameter names, in the order of `index`'s columns.
        index: shape (n, p_law): for each point and law parameter, the slot it reads; slots
            below `n_free` are fitted, the rest are `constants`.
        kinds: transform of every slot (fitted then constant), `LIN`, `LOG` or `NEGLOG`.
        lower: internal lower bounds of the fitted slots, shape (B, P).
        upper: internal upper bounds of the fitted slots, shape (B, P).
        d: data sizes, shape (B, n) with B = 1 (shared by the batch) or the batch size.
        y: values, shape (B, n).
        covariates: other inputs of the law per point (`n` of `chinchilla`), shape (B, n).
        constants: values of the constant slots.
        log_residuals: log residuals if true, else residuals divided by `scale`.
        scale: shape (B, 1), the size of the values for scaled residuals.
        partials: the law's analytic partial derivatives; finite differences when None.
        groups: the group (language) of each point in a pooled fit; its normal equations are
            then solved by block elimination (see `fits._blocks`).
    """

    func: Law
    names: tuple[str, ...]
    index: NDArray[np.intp]
    kinds: NDArray[np.int64]
    lower: NDArray[np.float64]
    upper: NDArray[np.float64]
    d: NDArray[np.float64]
    y: NDArray[np.float64]
    covariates: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    constants: NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    log_residuals: bool = True
    scale: NDArray[np.float64] = field(default_factory=lambda: np.ones((1, 1)))
    partials: Partials | None = None
    groups: NDArray[np.intp] | None = None

    @cached_property
    def blocks(self) -> BlockLayout | None:
        """Block structure of a pooled fit (shared and per-group slots), when `groups` is set."""
        if self.groups is None or self.uniform:
            return None
        return BlockLayout.build(self.index, self.groups, self.n_free)

    @cached_property
    def identity(self) -> bool:
        """Whether every point reads slot j as law parameter j (a plain per-language fit)."""
        return (
            self.uniform
            and np.array_equal(self.index[0], np.arange(len(self.names)))
            and (self.n_free == len(self.names))
        )

    @cached_property
    def uniform(self) -> bool:
        """Whether every point reads the same slots (a per-language fit)."""
        return bool((self.index == self.index[:1]).all())

    @property
    def n_free(self) -> int:
        """Number of fitted slots."""
        return int(self.lower.shape[1])

    def bounds(self, rows: NDArray[np.intp]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Internal lower and upper bounds for batch rows `rows`, each (k, P)."""
        return _take(self.lower, rows), _take(self.upper, rows)

    def view(self, rows: NDArray[np.intp]) -> FitBatchView:
        """The data of batch rows `rows`, gathered once for many evaluations."""
        y = _take(self.y, rows)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_y = np.log(y) if self.log_residuals else y
        return FitBatchView(
            self,
            _take(self.d, rows),
            y,
            log_y,
            {k: _take(v, rows) for k, v in self.covariates.items()},
            _take(self.scale, rows),
        )

    def residuals(self, u: NDArray[np.float64], rows: NDArray[np.intp]) -> NDArray[np.float64]:
        """Residuals (k, n) at internal coordinates u (k, P) for batch rows `rows`."""
        return self.view(rows).residuals(u)

    @cached_property
    def _scatter(self) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
        """Sparse maps from per-point law parameters to fitted slots: (n*p, P), (n*p*p, P*P)."""
        n, p = self.index.shape
        free = self.n_free
        flat = self.index.ravel()
        ok = flat < free
        to_slots = sparse.csr_matrix(
            (np.ones(ok.sum()), (np.nonzero(ok)[0], flat[ok])), shape=(n * p, free)
        )
        first, second = self.index[:, :, None], self.index[:, None, :]
        ok2 = ((first < free) & (second < free)).ravel()
        pair = np.broadcast_to(first * free + second, (n, p, p)).ravel()
        to_pairs = sparse.csr_matrix(
            (np.ones(ok2.sum()), (np.nonzero(ok2)[0], pair[ok2])), shape=(n * p * p, free * free)
        )
        return to_slots, to_pairs

    def _full_jacobian(self, local: NDArray[np.float64]) -> NDArray[np.float64]:
        if self.identity:
            return local
        full = np.zeros((*local.shape[:2], self.n_free))
        slots = self.index[0]
        ok = slots < self.n_free
        full[:, :, slots[ok]] = local[:, :, ok]
        return full

    def gradient(
        self, local: NDArray[np.float64], psi: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Sum over points of `psi * d residual / d slot`: shape (k, P)."""
        if self.uniform:
            return np.einsum("knp,kn->kp", self._full_jacobian(local), psi)
        k = len(local)
        per_point = (local * psi[..., None]).reshape(k, -1)
        return np.asarray((self._scatter[0].T @ per_point.T).T)

    def directional(
        self, local: NDArray[np.float64], step: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Change of each residual per unit of `step` (k, P): the Jacobian times the step."""
        slots = np.where(self.index < self.n_free, self.index, 0)
        along = np.where(self.index < self.n_free, step[:, slots], 0.0)  # (k, n, p)
        return np.einsum("knp,knp->kn", local, along)

    def normal_matrix(
        self, local: NDArray[np.float64], weights: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """`J^T diag(weights) J` over the fitted slots: shape (k, P, P)."""
        if self.uniform:
            full = self._full_jacobian(local)
            return np.matmul((full * weights[..., None]).transpose(0, 2, 1), full)
        k = len(local)
        outer = (local * weights[..., None])[:, :, :, None] * local[:, :, None, :]
        flat = np.asarray((self._scatter[1].T @ outer.reshape(k, -1).T).T)
        return flat.reshape(k, self.n_free, self.n_free)


def _take(array: NDArray[np.float64], rows: NDArray[np.intp]) -> NDArray[np.float64]:
    return array if array.shape[0] == 1 else array[rows]


@dataclass(frozen=True)
class FitBatchView:
    """A `FitBatch`'s data for some batch rows; evaluates residuals and their Jacobian."""

    batch: FitBatch
    d: NDArray[np.float64]
    y: NDArray[np.float64]
    log_y: NDArray[np.float64]
    covariates: dict[str, NDArray[np.float64]]
    scale: NDArray[np.float64]

    def law_values(self, u: NDArray[np.float64]) -> list[NDArray[np.float64]]:
        """Each law parameter, (k, n), or (k, 1) when every point reads the same slot."""
        batch = self.batch
        full = np.concatenate(
            [
                to_natural(u, batch.kinds[: batch.n_free]),
                np.broadcast_to(batch.constants, (len(u), batch.constants.size)),
            ],
            axis=1,
        )
        if batch.uniform:
            return [full[:, batch.index[0, j], None] for j in range(len(batch.names))]
        return [full[:, batch.index[:, j]] for j in range(len(batch.names))]

    def residuals_from(self, values: list[NDArray[np.float64]]) -> NDArray[np.float64]:
        """Residuals (k, n) for per-point parameter values; see the module docstring."""
        params = dict(zip(self.batch.names, values, strict=True))
        pred = np.asarray(self.batch.func(self.d, **params, **self.covariates))
        if not self.batch.log_residuals:
            out = (pred - self.y) / self.scale
        else:
            floor = 1e-6 * np.abs(self.y)
            low = ~(pred > floor)
            with np.errstate(divide="ignore", invalid="ignore"):
                out = np.log(pred) - self.log_y
            if low.any():
                # Below a floor, continue log linearly so that a negative prediction still has
                # a finite residual with a gradient pointing back towards positive values.
                linear = np.log(floor) + (pred - floor) / floor - self.log_y
                out = np.where(low, linear, out)
        bad = ~np.isfinite(out)
        return np.where(bad, 1e6, out) if bad.any() else out

    def residuals(self, u: NDArray[np.float64]) -> NDArray[np.float64]:
        """Residuals (k, n) at internal coordinates u (k, P)."""
        return self.residuals_from(self.law_values(u))

    def jacobian(
        self, u: NDArray[np.float64], base: NDArray[np.float64] | None = None
    ) -> NDArray[np.float64]:
        """d residual / d (internal law parameter), shape (k, n, p_law), by forward differences.

        `FitBatch.gradient` and `FitBatch.normal_matrix` scatter it onto the fitted slots.

        Args:
            u: internal coordinates, (k, P).
            base: the residuals at `u` when already known (saves one evaluation).
        """
        batch = self.batch
        values = self.law_values(u)
        if batch.partials is not None:
            return self._analytic_jacobian(values)
        r0 = self.residuals_from(values) if base is None else base
        k, n = len(u), self.d.shape[1]
        jac = np.zeros((k, n, len(batch.names)))
        for j in range(len(batch.names)):
            slots = batch.index[:, j]
            if not (slots < batch.n_free).any():
                continue
            kinds_j = batch.kinds[slots[:1]] if batch.uniform else batch.kinds[slots]
            internal = to_internal(values[j], kinds_j)
            step = _FD_STEP * (1.0 + np.abs(internal))
            moved = list(values)
            moved[j] = to_natural(internal + step, kinds_j)
            jac[:, :, j] = (self.residuals_from(moved) - r0) / step
        return jac

    def _analytic_jacobian(self, values: list[NDArray[np.float64]]) -> NDArray[np.float64]:
        """The Jacobian from the law's analytic partial derivatives (see `fits._partials`)."""
        batch = self.batch
        assert batch.partials is not None
        params = dict(zip(batch.names, values, strict=True))
        pred, parts = batch.partials(self.d, **params, **self.covariates)
        if batch.log_residuals:
            floor = 1e-6 * np.abs(self.y)
            with np.errstate(divide="ignore", invalid="ignore"):
                dr_dpred = 1.0 / np.where(pred > floor, pred, floor)
        else:
            dr_dpred = np.broadcast_to(1.0 / self.scale, pred.shape)
        jac = np.empty((*pred.shape, len(batch.names)))
        for j, part in enumerate(parts):
            slots = batch.index[:1, j] if batch.uniform else batch.index[:, j]
            # d value / d internal coordinate: 1 for linear slots, the value for log slots.
            chain = np.where(batch.kinds[slots] == LIN, 1.0, values[j])
            jac[:, :, j] = part * dr_dpred * chain
        bad = ~np.isfinite(jac)
        if bad.any():
            jac[bad] = 0.0
        return jac
