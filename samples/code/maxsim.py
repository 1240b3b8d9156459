"""Late-interaction (MaxSim) scoring of a query against document pages."""

import numpy as np


def maxsim(query: np.ndarray, page: np.ndarray) -> float:
    """Sum over query tokens of the best cosine with any page token.

    query: (Lq, d) and page: (Ld, d), rows L2-normalised.
    """
    similarities = query @ page.T  # (Lq, Ld)
    return float(similarities.max(axis=1).sum())


def rank_pages(query: np.ndarray, pages: list[np.ndarray], top_k: int = 3) -> list[tuple[int, float]]:
    """The top_k pages by MaxSim, best first, as (page index, score)."""
    scores = [maxsim(query, page) for page in pages]
    order = np.argsort(scores)[::-1][:top_k]
    return [(int(i), scores[i]) for i in order]
