"""Block elimination for pooled fits: shared parameters plus a few per language.

A pooled fit's normal matrix has an arrow shape: a small block for the shared parameters, a
tiny block per language for its own parameters, and the couplings between them. Eliminating
the per-language blocks first (a Schur complement) solves it in time linear in the number of
languages, with only tiny dense solves, instead of one dense solve that grows with the cube.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray


@dataclass(frozen=True)
class BlockLayout:
    """Which fitted slots are shared, which belong to one group (language), point by point.

    Attributes:
        shared: slot ids read by points of more than one group, shape (s,).
        own: per group, the slot ids only it reads, padded with -1, shape (L, o).
        s_pos: per point and law parameter, its position in `shared`, or -1.
        o_pos: per point and law parameter, its position in its group's `own` row, or -1.
        starts: index of each group's first point; points are stored group by group.
    """

    shared: NDArray[np.intp]
    own: NDArray[np.intp]
    s_pos: NDArray[np.intp]
    o_pos: NDArray[np.intp]
    starts: NDArray[np.intp]

    @classmethod
    def build(cls, index: NDArray[np.intp], groups: NDArray[np.intp], n_free: int) -> BlockLayout:
        """From a problem's slot index (n, p) and each point's group (n,)."""
        n_groups = int(groups.max()) + 1
        readers: dict[int, set[int]] = {}
        for point, slots in enumerate(index):
            for slot in slots:
                if slot < n_free:
                    readers.setdefault(int(slot), set()).add(int(groups[point]))
        shared = sorted(slot for slot, gs in readers.items() if len(gs) > 1)
        own_lists: list[list[int]] = [[] for _ in range(n_groups)]
        for slot, gs in sorted(readers.items()):
            if len(gs) == 1:
                own_lists[next(iter(gs))].append(slot)
        width = max(1, max(len(o) for o in own_lists))
        own = np.full((n_groups, width), -1, dtype=np.intp)
        for g, slots in enumerate(own_lists):
            own[g, : len(slots)] = slots
        shared_at = {slot: i for i, slot in enumerate(shared)}
        s_pos = np.full(index.shape, -1, dtype=np.intp)
        o_pos = np.full(index.shape, -1, dtype=np.intp)
        for point, slots in enumerate(index):
            row = list(own[groups[point]])
            for j, slot in enumerate(slots):
                if slot in shared_at:
                    s_pos[point, j] = shared_at[slot]
                elif slot < n_free:
                    o_pos[point, j] = row.index(slot)
        if np.any(np.diff(groups) < 0) or np.unique(groups).size != n_groups:
            raise ValueError("Points of a pooled fit must be stored group by group.")
        starts = np.searchsorted(groups, np.arange(n_groups)).astype(np.intp)
        return cls(np.asarray(shared, dtype=np.intp), own, s_pos, o_pos, starts)

    def _split(
        self, local: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Jacobian columns for the shared slots (k, n, s) and the point's own slots (k, n, o)."""
        k, n, p = local.shape
        j_s = np.zeros((k, n, self.shared.size))
        j_o = np.zeros((k, n, self.own.shape[1]))
        for j in range(p):
            at_s = np.nonzero(self.s_pos[:, j] >= 0)[0]
            j_s[:, at_s, self.s_pos[at_s, j]] += local[:, at_s, j]
            at_o = np.nonzero(self.o_pos[:, j] >= 0)[0]
            j_o[:, at_o, self.o_pos[at_o, j]] += local[:, at_o, j]
        return j_s, j_o

    def _by_group(self, per_point: NDArray[np.float64]) -> NDArray[np.float64]:
        """Sum (k, n, ...) over the points of each group: (k, L, ...).

        Points are stored group by group, so this is a segmented sum (no BLAS call, which
        matters where OpenBLAS threads contend for few cores).
        """
        return np.add.reduceat(per_point, self.starts, axis=1)

    def to_full(
        self, x_s: NDArray[np.float64], x_o: NDArray[np.float64], n_free: int
    ) -> NDArray[np.float64]:
        """Slot vectors (k, P) from shared (k, s) and per-group (k, L, o) parts."""
        full = np.zeros((len(x_s), n_free))
        full[:, self.shared] = x_s
        valid = self.own >= 0
        full[:, self.own[valid]] = x_o[:, valid]
        return full

    def newton_steps(
        self,
        local: NDArray[np.float64],
        psi: NDArray[np.float64],
        curvatures: list[NDArray[np.float64]],
        lam: NDArray[np.float64],
        keep: NDArray[np.bool_],
    ) -> list[NDArray[np.float64]]:
        """Damped steps `-(H_c + ridge)^-1 g` for each curvature weighting, as (k, P) arrays.

        The ridge is `lam * diag(H_0)` (the first curvature's diagonal) on kept slots; slots
        not kept (pinned at a bound) do not move.
        """
        n_free = keep.shape[1]
        j_s, j_o = self._split(local)
        g_s = np.einsum("kns,kn->ks", j_s, psi)
        g_o = self._by_group(j_o * psi[..., None])
        valid = self.own >= 0
        keep_s = keep[:, self.shared]
        keep_o = np.zeros((len(keep), *self.own.shape), dtype=bool)
        keep_o[:, valid] = keep[:, self.own[valid]]
        g_s, g_o = g_s * keep_s, g_o * keep_o
        systems = []
        for weights in curvatures:
            wj_s = j_s * weights[..., None]
            a = np.einsum("kns,knt->kst", wj_s, j_s)
            b = self._by_group(wj_s[:, :, :, None] * j_o[:, :, None, :])
            dd = self._by_group((j_o * weights[..., None])[:, :, :, None] * j_o[:, :, None, :])
            a = a * keep_s[:, :, None] * keep_s[:, None, :]
            b = b * keep_s[:, None, :, None] * keep_o[:, :, None, :]
            dd = dd * keep_o[:, :, :, None] * keep_o[:, :, None, :]
            systems.append((a, b, dd))
        diag_s = np.einsum("kss->ks", systems[0][0])
        diag_o = np.einsum("kloo->klo", systems[0][2])
        scale = 1e-12 * (1.0 + np.maximum(diag_s.max(axis=1), diag_o.max(axis=(1, 2))))
        ridge_s = lam * (diag_s + scale[:, None]) + ~keep_s
        ridge_o = lam[:, :, None] * (diag_o + scale[:, None, None]) + ~keep_o
        eye_s, eye_o = np.eye(self.shared.size), np.eye(self.own.shape[1])
        steps = []
        for a, b, dd in systems:
            x_s, x_o = _solve_arrow(
                a + ridge_s[:, :, None] * eye_s, b, dd + ridge_o[..., None] * eye_o, g_s, g_o
            )
            steps.append(-self.to_full(x_s, x_o, n_free))
        return steps


def _solve_arrow(
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    dd: NDArray[np.float64],
    g_s: NDArray[np.float64],
    g_o: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Solve `[[A, B], [B^T, D]] [x_s; x_o] = [g_s; g_o]` with D block-diagonal per group.

    Shapes: A (k, s, s), B (k, L, s, o), D (k, L, o, o), g_s (k, s), g_o (k, L, o).
    """
    d_inv_g = np.linalg.solve(dd, g_o[..., None])[..., 0]  # (k, L, o)
    d_inv_bt = np.linalg.solve(dd, b.transpose(0, 1, 3, 2))  # (k, L, o, s)
    schur = a - np.einsum("klso,klot->kst", b, d_inv_bt)
    rhs = g_s - np.einsum("klso,klo->ks", b, d_inv_g)
    x_s = np.linalg.solve(schur, rhs[..., None])[..., 0]
    x_o = d_inv_g - np.einsum("klos,ks->klo", d_inv_bt, x_s)
    return x_s, x_o
