"""Token pooling for stored documents (Clavié, Chaffin & Adams 2024): cluster a page's token vectors with
hierarchical (Ward) clustering into ``ceil(n / pool_factor)`` groups and keep each group's mean, renormalised.
Pool factor 3 keeps ~98% of ColPali's retrieval quality with a third of the vectors. Queries are never pooled.

>>> mv = np.array([[1, 0], [0.99, 0.141], [0, 1], [0.141, 0.99]], dtype=np.float32)
>>> pooled = pool_tokens(mv, 2)
>>> pooled.shape
(2, 2)
>>> sorted(round(float(v), 2) for v in pooled[:, 0])     # the near-x rows and the near-y rows merged
[0.07, 1.0]
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.cluster.hierarchy import fcluster, linkage

from colbert.errors import InvalidDocumentError

__all__ = ["pool_tokens"]


def pool_tokens(mv: npt.ArrayLike, pool_factor: int, protected: int = 0) -> npt.NDArray[np.float32]:
    """Pool an (n, d) multi-vector to about n / pool_factor rows.

    ``protected``: the first ``protected`` rows are kept as they are (e.g. special tokens) and the rest pooled.
    ``pool_factor`` 1 returns the input unchanged (as float32).
    """
    x = np.ascontiguousarray(mv, dtype=np.float32)  # (n, d)
    if x.ndim != 2:
        raise InvalidDocumentError(f"expected an (n, d) multi-vector, got shape {x.shape}")
    if pool_factor < 1:
        raise InvalidDocumentError(f"pool_factor must be ≥ 1, got {pool_factor}")
    if not 0 <= protected <= x.shape[0]:
        raise InvalidDocumentError(f"protected must be in [0, {x.shape[0]}], got {protected}")
    keep, rest = x[:protected], x[protected:]  # (p, d), (n - p, d)
    if pool_factor == 1 or rest.shape[0] <= 1:
        return x.copy()
    clusters = max(1, math.ceil(rest.shape[0] / pool_factor))
    tree = linkage(rest.astype(np.float64), method="ward")  # (n-p-1, 4) merge tree
    labels = fcluster(tree, t=clusters, criterion="maxclust")  # (n - p,) in 1..clusters
    uniq, inverse = np.unique(labels, return_inverse=True)
    sums = np.zeros((uniq.size, x.shape[1]), dtype=np.float64)  # (m, d)
    np.add.at(sums, inverse, rest)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)  # (m, 1)
    pooled = (sums / np.where(norms > 0, norms, 1.0)).astype(np.float32)  # (m, d) unit rows
    return np.concatenate([keep, pooled], axis=0)
