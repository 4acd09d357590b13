"""Similarity of interactions: Jaccard per order, coverage, top-K overlap, bootstrap.

Interactions are arrays of shape (samples, 2^n) in the mask convention of
docs/interactions.md; ∅ (index 0) never takes part.  Random baselines draw sets uniformly
without replacement from the same universe as the real sets, with a seeded generator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from harsanyi.masks import n_players_of, orders
from harsanyi.stats import interaction_pair, salient_masks

JACCARD_VARIANTS = ("average_then_split", "split_then_average")
DEFAULT_COVERAGE_TAUS = np.linspace(0.05, 0.3, 6)
DEFAULT_TOPK_RATIOS = np.round(np.arange(0.05, 0.451, 0.05), 2)


def split_sign(a) -> np.ndarray:
    """[max(a, 0), max(−a, 0)] concatenated along the last axis (twice as long, ≥ 0)."""
    x = np.asarray(a, dtype=np.float64)
    return np.concatenate((np.clip(x, 0, None), np.clip(-x, 0, None)), axis=-1)


def _nonnegative_jaccard(x: np.ndarray, y: np.ndarray) -> float:
    """Σ min(x, y) / Σ max(x, y) for non-negative vectors; 0/0 (both all zero) gives nan."""
    if x.shape != y.shape:
        raise ValueError(f"vectors to compare differ in shape: {x.shape} vs {y.shape}")
    denominator = np.maximum(x, y).sum()
    return float(np.minimum(x, y).sum() / denominator) if denominator > 0 else float("nan")


def jaccard(a, b) -> float:
    """Sim(a, b) = Σ min(ã, b̃) / Σ max(ã, b̃) with ã = split_sign(a), b̃ = split_sign(b).

    Inputs are flattened.  Identical non-zero vectors give 1, vectors with no common
    signed support give 0, two all-zero vectors give nan (nothing to compare).
    """
    x, y = np.ravel(np.asarray(a, dtype=np.float64)), np.ravel(np.asarray(b, dtype=np.float64))
    return _nonnegative_jaccard(split_sign(x), split_sign(y))


def order_vector(I_and, I_or, k: int, n: int) -> np.ndarray:
    """(samples, 2·C(n,k)): AND then OR values of all order-k coalitions, by mask index."""
    a, o, n_found = interaction_pair(I_and, I_or)
    if n_found != n:
        raise ValueError(f"n={n} but the interactions hold 2^{n_found} values per sample")
    if not 1 <= k <= n:
        raise ValueError(f"order k must be in 1..{n}, got {k}")
    of_order = orders(n) == k
    return np.concatenate((a[:, of_order], o[:, of_order]), axis=1)


def _labels(labels, samples: int, name: str) -> np.ndarray:
    out = np.asarray(labels).ravel()
    if out.shape[0] != samples:
        raise ValueError(f"{name} has {out.shape[0]} entries for {samples} samples")
    return out


def jaccard_per_order(
    I_and_a,
    I_or_a,
    labels_a,
    I_and_b,
    I_or_b,
    labels_b,
    *,
    variant: str = "average_then_split",
    order_list: Iterable[int] | None = None,
    per_class: bool = False,
) -> pd.DataFrame:
    """Jaccard similarity per order between two sample sets (e.g. train a vs test b).

    For order k and class c: the order-k vectors (`order_vector`) are averaged over a's
    class-c samples and over b's, and compared with `jaccard` ("average_then_split",
    default); "split_then_average" splits each sample's vector into its sign halves first,
    then averages.  Only classes present in both sets count.  Returns one row per order with
    `similarity` (mean over classes, nan classes skipped) and `n_classes`; with
    `per_class=True` the long table (order, label, similarity) instead.
    """
    if variant not in JACCARD_VARIANTS:
        raise ValueError(f"variant must be one of {JACCARD_VARIANTS}, got {variant!r}")
    a_and, a_or, n = interaction_pair(I_and_a, I_or_a)
    b_and, b_or, n_b = interaction_pair(I_and_b, I_or_b)
    if n_b != n:
        raise ValueError(f"set a has n={n} players but set b has n={n_b}")
    la = _labels(labels_a, a_and.shape[0], "labels_a")
    lb = _labels(labels_b, b_and.shape[0], "labels_b")
    classes = np.intersect1d(la, lb)
    if classes.size == 0:
        raise ValueError("labels_a and labels_b share no class")
    ks = list(range(1, n + 1)) if order_list is None else [int(k) for k in order_list]

    rows = []
    for k in ks:
        vec_a, vec_b = order_vector(a_and, a_or, k, n), order_vector(b_and, b_or, k, n)
        if variant == "split_then_average":
            vec_a, vec_b = split_sign(vec_a), split_sign(vec_b)
        for c in classes:
            mean_a, mean_b = vec_a[la == c].mean(axis=0), vec_b[lb == c].mean(axis=0)
            if variant == "average_then_split":
                mean_a, mean_b = split_sign(mean_a), split_sign(mean_b)
            rows.append((k, c, _nonnegative_jaccard(mean_a, mean_b)))
    table = pd.DataFrame(rows, columns=["order", "label", "similarity"])
    if per_class:
        return table
    grouped = table.groupby("order", sort=True)["similarity"]
    return pd.DataFrame({"similarity": grouped.mean(), "n_classes": grouped.count()})


def coverage(omega1, omega2) -> float:
    """|Ω₁ ∩ Ω₂| / |Ω₁| for bool membership arrays of the same shape; nan if Ω₁ is empty."""
    s1, s2 = np.asarray(omega1, dtype=bool), np.asarray(omega2, dtype=bool)
    if s1.shape != s2.shape:
        raise ValueError(f"omega1 and omega2 differ in shape: {s1.shape} vs {s2.shape}")
    size1 = s1.sum()
    return float((s1 & s2).sum() / size1) if size1 > 0 else float("nan")


def random_coverage_expectation(size1: int, size2: int, universe: int) -> float:
    """E |A ∩ B| / |A| for uniform random sets |A| = size1, |B| = size2: size2 / universe."""
    if not (0 <= size1 <= universe and 0 <= size2 <= universe and universe > 0):
        raise ValueError(
            f"need 0 <= size1, size2 <= universe > 0, got size1={size1}, size2={size2}, "
            f"universe={universe}"
        )
    return size2 / universe if size1 > 0 else float("nan")


def _random_subsets(rng: np.random.Generator, sizes: np.ndarray, universe: int) -> np.ndarray:
    """Bool (len(sizes), universe): row i is a uniform random subset of size sizes[i]."""
    keys = rng.random((sizes.shape[0], universe))
    ranks = np.argsort(np.argsort(keys, axis=1), axis=1)
    return ranks < sizes[:, None]


def _random_overlap(
    rng: np.random.Generator, size1: np.ndarray, size2: np.ndarray, universe: int, draws: int
) -> np.ndarray:
    """Mean over `draws` of |A ∩ B| / |A| for random A, B of the given sizes (nan if |A|=0)."""
    total = np.zeros(size1.shape[0])
    for _ in range(draws):
        a = _random_subsets(rng, size1, universe)
        b = _random_subsets(rng, size2, universe)
        total += (a & b).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(size1 > 0, total / draws / np.maximum(size1, 1), np.nan)


def coverage_sweep(
    I1_and,
    I1_or,
    I2_and,
    I2_or,
    taus=DEFAULT_COVERAGE_TAUS,
    tau2: float = 0.05,
    seed: int = 0,
    n_draws: int = 1,
) -> pd.DataFrame:
    """Coverage of model 1's salient set by model 2's, per sample and threshold ratio τ₁.

    Ω₁ = salient AND and OR interactions of model 1 at ratio τ₁ (of its max|I|), Ω₂ those of
    model 2 at ratio `tau2`; AND and OR of the same S are distinct elements, sign is
    ignored, ∅ is excluded, so the universe has 2·(2^n − 1) elements.  Columns: sample,
    tau1, size1, size2, coverage, random_expected (`random_coverage_expectation`) and
    random_empirical (mean over `n_draws` seeded draws of random sets of the same sizes).
    """
    a1, o1, n = interaction_pair(I1_and, I1_or)
    a2, o2, n2 = interaction_pair(I2_and, I2_or)
    if a1.shape != a2.shape:
        raise ValueError(f"model 1 interactions have shape {a1.shape}, model 2 {a2.shape}")
    if n_draws < 1:
        raise ValueError(f"n_draws must be >= 1, got {n_draws}")
    universe = 2 * (2**n - 1)
    omega2 = np.concatenate(salient_masks(a2, o2, ratio=tau2), axis=1)
    samples = np.arange(a1.shape[0])
    frames = []
    for tau1 in np.asarray(taus, dtype=np.float64):
        omega1 = np.concatenate(salient_masks(a1, o1, ratio=tau1), axis=1)
        size1, size2 = omega1.sum(axis=1), omega2.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            covered = np.where(size1 > 0, (omega1 & omega2).sum(axis=1) / size1, np.nan)
            expected = np.where(size1 > 0, size2 / universe, np.nan)
        frames.append(
            pd.DataFrame(
                {
                    "sample": samples,
                    "tau1": tau1,
                    "size1": size1,
                    "size2": size2,
                    "coverage": covered,
                    "random_expected": expected,
                }
            )
        )
    table = pd.concat(frames, ignore_index=True)
    rng = np.random.default_rng(seed)
    table["random_empirical"] = _random_overlap(
        rng, table["size1"].to_numpy(), table["size2"].to_numpy(), universe, n_draws
    )
    return table


def _topk(r: float, n: int) -> int:
    if not 0 < r <= 1:
        raise ValueError(f"top-K ratio r must be in (0, 1], got {r!r}")
    return int(min(max(1, round(r * 2**n)), 2**n - 1))


def _strength_ranks(values: np.ndarray) -> np.ndarray:
    """Rank (0 = largest |I|) of every non-empty coalition per row, ties by mask index."""
    order = np.argsort(-np.abs(values[:, 1:]), axis=1, kind="stable")
    return np.argsort(order, axis=1)


def topk_overlap(I1, I2, r: float) -> float:
    """|topK₁ ∩ topK₂| / K for one sample's interactions of one kind (AND or OR), (2^n,).

    K = max(1, round(r·2^n)) (at most 2^n − 1), top by |I| with ∅ excluded; ties are
    broken by lower mask index.
    """
    x, y = np.asarray(I1, dtype=np.float64), np.asarray(I2, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"I1 and I2 must be 1-D of equal length, got {x.shape} and {y.shape}")
    n = n_players_of(x.shape[0])
    if n < 1:
        raise ValueError("top-K overlap needs at least one player")
    k = _topk(r, n)
    top1, top2 = _strength_ranks(x[None]) < k, _strength_ranks(y[None]) < k
    return float((top1 & top2).sum() / k)


def topk_overlap_sweep(
    I1_and,
    I1_or,
    I2_and,
    I2_or,
    ratios=DEFAULT_TOPK_RATIOS,
    seed: int = 0,
    n_draws: int = 1,
) -> pd.DataFrame:
    """Top-K overlap per sample, AND and OR separately, for each r in `ratios`.

    Columns: sample, op ("and"/"or"), r, k, overlap, random_expected = K/(2^n − 1) and
    random_empirical (mean over `n_draws` seeded draws of two random K-sets).
    """
    a1, o1, n = interaction_pair(I1_and, I1_or)
    a2, o2, _ = interaction_pair(I2_and, I2_or)
    if a1.shape != a2.shape:
        raise ValueError(f"model 1 interactions have shape {a1.shape}, model 2 {a2.shape}")
    if n_draws < 1:
        raise ValueError(f"n_draws must be >= 1, got {n_draws}")
    r_values = np.asarray(ratios, dtype=np.float64).ravel()
    ks = [_topk(float(r), n) for r in r_values]
    samples = np.arange(a1.shape[0])
    frames = []
    for op, first, second in (("and", a1, a2), ("or", o1, o2)):
        ranks1, ranks2 = _strength_ranks(first), _strength_ranks(second)
        for r, k in zip(r_values, ks, strict=True):
            shared = ((ranks1 < k) & (ranks2 < k)).sum(axis=1)
            frames.append(
                pd.DataFrame(
                    {
                        "sample": samples,
                        "op": op,
                        "r": r,
                        "k": k,
                        "overlap": shared / k,
                        "random_expected": k / (2**n - 1),
                    }
                )
            )
    table = pd.concat(frames, ignore_index=True)
    sizes = table["k"].to_numpy()
    rng = np.random.default_rng(seed)
    table["random_empirical"] = _random_overlap(rng, sizes, sizes, 2**n - 1, n_draws)
    return table


def bootstrap_ci(
    values,
    stat: Callable[[np.ndarray], float] = np.mean,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(stat(values), low, high): percentile bootstrap interval at `level`, seeded."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    resampled = x[rng.integers(0, x.size, size=(n_boot, x.size))]
    boot = np.array([stat(row) for row in resampled], dtype=np.float64)
    tail = (1 - level) / 2
    low, high = np.quantile(boot, [tail, 1 - tail])
    return float(stat(x)), float(low), float(high)
