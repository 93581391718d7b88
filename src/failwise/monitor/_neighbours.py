"""Exact nearest-neighbour distances to a fixed set of feature rows.

The unseen-input detector (:class:`~failwise.monitor.UnseenInputDetector`) scores every
input by its distance to the ``k``-th nearest row of its index, and calibrates with every
index row's distance to the other rows (``leave_one_out``): both are one blocked search.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

__all__ = ["NeighbourIndex"]


class NeighbourIndex:
    """Exact k-th nearest-neighbour distances by blocked float32 matrix products.

    Float32 products (twice as fast as float64, and BLAS uses every core) give every
    query's approximate k-th distance; every index row within float32's rounding bound of
    it is then measured again in float64, so the distance returned is the float64 one.
    """

    #: Entries of one block's product (queries x index rows): 64 MB of float32.
    BLOCK_ENTRIES: ClassVar[int] = 1 << 24
    #: Rounding bound of a float32 squared distance, in units of eps * sqrt(d) * norms.
    SLACK: ClassVar[float] = 64.0

    def __init__(self, rows: NDArray[np.float64]) -> None:
        self.rows = np.ascontiguousarray(rows, dtype=np.float64)
        self.rows32 = self.rows.astype(np.float32)
        self.norms = np.einsum("ij,ij->i", self.rows, self.rows)
        self.norms32 = self.norms.astype(np.float32)

    def kth_distance(
        self, queries: NDArray[np.float64], k: int, *, leave_one_out: bool = False
    ) -> NDArray[np.float64]:
        """Distance of each query to its ``k``-th nearest row (queries = rows, minus itself)."""
        n_rows, dims = self.rows.shape
        out = np.empty(queries.shape[0])
        step = max(1, self.BLOCK_ENTRIES // n_rows)
        slack = self.SLACK * float(np.finfo(np.float32).eps) * math.sqrt(dims)
        for start in range(0, queries.shape[0], step):
            block = np.asarray(queries[start : start + step], dtype=np.float64)
            size = block.shape[0]
            own = np.einsum("ij,ij->i", block, block)
            approx = block.astype(np.float32) @ self.rows32.T  # |r|^2 - 2 q.r, in float32
            approx *= -2.0
            approx += self.norms32[None, :]
            if leave_one_out:
                approx[np.arange(size), np.arange(start, start + size)] = np.inf
            kth = approx.min(axis=1) if k == 1 else np.partition(approx, k - 1, axis=1)[:, k - 1]
            bound = kth + slack * (own + float(self.norms.max()))
            query, row = np.nonzero(approx <= bound[:, None].astype(np.float32))
            if query.size > 32 * size:  # many near-ties: measure the whole block in float64
                exact_all = own[:, None] + self.norms[None, :] - 2.0 * (block @ self.rows.T)
                if leave_one_out:
                    exact_all[np.arange(size), np.arange(start, start + size)] = np.inf
                kth64 = np.partition(exact_all, k - 1, axis=1)[:, k - 1]
            else:
                exact = (
                    own[query]
                    + self.norms[row]
                    - 2.0 * np.einsum("ij,ij->i", block[query], self.rows[row])
                )
                order = np.lexsort((exact, query))
                first = np.searchsorted(query[order], np.arange(size))
                kth64 = exact[order][first + k - 1]
            out[start : start + size] = np.sqrt(np.maximum(kth64, 0.0))
        return out
