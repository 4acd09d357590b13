"""The statistics behind every verdict of the scorecard, in one place.

Every claim of the scorecard is an effect with a bootstrap interval (resampling the
explained samples, the classes, or the seeds where a study has several), a null control
computed by the same code (the same statistic between untrained networks, under permutation
or under random placement), and a verdict from `decide`:

- "yes": n is large enough, the point effect is at least the smallest effect worth
  reporting, and the whole interval lies beyond the null bound in the claimed direction;
- "inconclusive": too few samples, or the point effect is beyond the null bound in the
  claimed direction but the interval reaches it (or the effect is below the smallest effect);
- "no": the point effect is not beyond the null bound in the claimed direction;
- "n/a": the data cannot say (no flipped samples, no comparable run).

Every verdict carries its reason as text.  docs/interactions.md ("Verdicts") states the rule
of every claim.

Intervals contain their point by construction: `claim` widens the effect's interval to the
point effect and the null's interval to the null's point value where a skewed or degenerate
replicate distribution leaves them outside (widening only ever makes a "yes" harder).  With
few resampled units the percentile interval is the expanded one (`expanded_level`), whose
coverage holds at small n where the plain percentile interval's falls short.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

YES, NO, INCONCLUSIVE, NOT_APPLICABLE = "yes", "no", "inconclusive", "n/a"
VERDICTS = (YES, NO, INCONCLUSIVE, NOT_APPLICABLE)
GREATER, LESS = "greater", "less"
LEVEL = 0.95
N_BOOT = 1000


def bootstrap_weights(units: int, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """(n_boot, units) resampling counts: row b says how often unit i is drawn in replicate b.

    A statistic that is a weighted mean over units is then one matrix product per replicate
    set, and the same rows can resample several checkpoints of the same samples (paired).
    """
    if units < 1:
        raise ValueError(f"bootstrap needs at least one unit, got {units}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, units, size=(n_boot, units))
    counts = np.zeros((n_boot, units), dtype=np.float64)
    np.add.at(counts, (np.repeat(np.arange(n_boot), units), draws.ravel()), 1.0)
    return counts


def expanded_level(level: float, units: int) -> float:
    """The percentile level of the expanded percentile interval for `units` resampled units.

    The plain percentile interval of a mean is too narrow at small n (it is about
    mean ± z·s/√n with the divisor-n spread s, where the exact interval for normal data is
    mean ± t_{n−1}·s'/√n).  The expanded interval (Hesterberg 2015, "What teachers should
    know about the bootstrap") takes the quantiles at Φ(±√(n/(n−1))·t_{n−1,1−α/2}) instead,
    which makes up for both; e.g. 95 % becomes 96.8 % at n = 20, 98.3 % at n = 10, and
    the whole replicate range at n ≤ 2.
    """
    from scipy.stats import norm, t

    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if units < 1:
        raise ValueError(f"units must be >= 1, got {units}")
    if units <= 2:
        return 1.0
    z = math.sqrt(units / (units - 1)) * t.ppf(1 - (1 - level) / 2, units - 1)
    return float(1 - 2 * norm.sf(z))


def interval(replicates, level: float = LEVEL, *, units: int | None = None) -> tuple[float, float]:
    """Percentile interval of bootstrap (or null) replicates, nan-free replicates only.

    `units`: the number of units the replicates resample; given, the interval is the
    expanded percentile interval (`expanded_level`)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if units is not None:
        level = expanded_level(level, units)
    values = np.asarray(replicates, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)


def null_bound(null_replicates, direction: str, level: float = LEVEL) -> float:
    """The value the effect must beat: the one-sided `level` quantile of a null distribution
    (upper for a claimed increase, lower for a claimed decrease)."""
    values = np.asarray(null_replicates, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan
    q = level if direction == GREATER else 1 - level
    return float(np.quantile(values, q))


def clustered_bootstrap(
    replicates_per_cluster: Sequence[np.ndarray], n_boot: int = N_BOOT, seed: int = 0
) -> np.ndarray:
    """Two-stage bootstrap of the mean over clusters (seeds): resample the clusters, and for
    each drawn cluster one of its own (within-cluster, over samples) bootstrap replicates.

    `replicates_per_cluster[c]`: cluster c's replicates of its effect.  Returns n_boot
    replicates of the mean effect over clusters.
    """
    clusters = [np.asarray(r, dtype=np.float64).ravel() for r in replicates_per_cluster]
    if not clusters or any(r.size == 0 for r in clusters):
        raise ValueError("every cluster needs at least one replicate")
    rng = np.random.default_rng(seed)
    picked = rng.integers(0, len(clusters), size=(n_boot, len(clusters)))
    out = np.empty(n_boot)
    for b in range(n_boot):
        out[b] = np.mean([clusters[c][rng.integers(clusters[c].size)] for c in picked[b]])
    return out


@dataclass(frozen=True)
class Claim:
    """One claim measured: effect with interval, the null it must beat, verdict and reason."""

    effect: float
    low: float
    high: float
    null: float
    null_low: float
    null_high: float
    bound: float
    direction: str
    n: int
    verdict: str
    reason: str

    def as_row(self) -> dict:
        return asdict(self)


def decide(
    effect: float,
    low: float,
    high: float,
    bound: float,
    *,
    direction: str,
    n: int,
    min_n: int,
    smallest_effect: float = 0.0,
) -> tuple[str, str]:
    """(verdict, reason) for an effect with interval [low, high] against the null `bound`.

    `direction` GREATER claims effect > bound, LESS claims effect < bound.  `smallest_effect`
    (≥ 0): the point effect must also beat the bound by at least this much for a "yes".
    """
    if direction not in (GREATER, LESS):
        raise ValueError(f"direction must be {GREATER!r} or {LESS!r}, got {direction!r}")
    if n < min_n:
        return INCONCLUSIVE, f"too few samples: n = {n} < {min_n}"
    if not all(math.isfinite(x) for x in (effect, low, high, bound)):
        return INCONCLUSIVE, "effect, interval or null not defined"
    sign = 1.0 if direction == GREATER else -1.0
    word = "above" if direction == GREATER else "below"
    margin = sign * (effect - bound)
    if margin <= 0:
        return NO, f"effect {effect:.3g} not {word} the null bound {bound:.3g}"
    if margin < smallest_effect:
        return (
            INCONCLUSIVE,
            f"effect beyond the null by {margin:.3g} < smallest effect {smallest_effect:.3g}",
        )
    edge = low if direction == GREATER else high
    if sign * (edge - bound) <= 0:
        return INCONCLUSIVE, f"interval reaches the null bound {bound:.3g}"
    return YES, f"interval {word} the null bound {bound:.3g}"


def claim(
    effect: float,
    effect_replicates,
    *,
    null: float,
    null_replicates,
    direction: str,
    n: int,
    min_n: int,
    smallest_effect: float = 0.0,
    null_kind: str = "distribution",
    level: float = LEVEL,
    floor: float | None = None,
    units: int | None = None,
) -> Claim:
    """A `Claim` from an effect, its bootstrap replicates and the null's replicates.

    null_kind "distribution": the null replicates are draws of the statistic under the null
    (permutation, random placement, random sets): the bound is their one-sided `level`
    quantile.  "interval": they are bootstrap replicates of the same statistic on null data
    (untrained networks): the bound is the far end of their interval in the claimed
    direction, so that the two intervals must not overlap.  `floor` (optional): the bound is
    at least as far as this value in the claimed direction (e.g. 0 for a difference that
    must be positive whatever the null).  `units` (optional): the number of units the
    bootstrap resamples, for the expanded percentile interval (`interval`); it applies to
    the effect's replicates and, with null_kind "interval", to the null's.

    Containment by construction: the effect's interval is widened to reach `effect` and the
    null's to reach `null` where the replicates leave them outside (never narrowed), so
    low ≤ effect ≤ high and null_low ≤ null ≤ null_high whenever they are finite.
    """
    low, high = _containing(interval(effect_replicates, level, units=units), effect)
    null_units = units if null_kind == "interval" else None
    null_low, null_high = _containing(interval(null_replicates, level, units=null_units), null)
    if null_kind == "distribution":
        bound = null_bound(null_replicates, direction, level)
    elif null_kind == "interval":
        bound = null_high if direction == GREATER else null_low
    else:
        raise ValueError(f"null_kind must be 'distribution' or 'interval', got {null_kind!r}")
    if floor is not None and math.isfinite(bound):
        bound = max(bound, floor) if direction == GREATER else min(bound, floor)
    verdict, reason = decide(
        effect,
        low,
        high,
        bound,
        direction=direction,
        n=n,
        min_n=min_n,
        smallest_effect=smallest_effect,
    )
    return Claim(
        effect=float(effect),
        low=low,
        high=high,
        null=float(null),
        null_low=null_low,
        null_high=null_high,
        bound=bound,
        direction=direction,
        n=int(n),
        verdict=verdict,
        reason=reason,
    )


def _containing(bounds: tuple[float, float], point: float) -> tuple[float, float]:
    """`bounds` widened to contain `point` (unchanged where either is not finite)."""
    low, high = bounds
    if not (math.isfinite(point) and math.isfinite(low) and math.isfinite(high)):
        return low, high
    return min(low, float(point)), max(high, float(point))


def not_applicable(reason: str, *, direction: str = GREATER, n: int = 0) -> Claim:
    nan = math.nan
    return Claim(nan, nan, nan, nan, nan, nan, nan, direction, n, NOT_APPLICABLE, reason)


def detectable_difference(
    sd_a: float, n_a: int, sd_b: float, n_b: int, *, level: float = LEVEL, power: float = 0.8
) -> float:
    """Smallest difference of two group means that a two-sided test at 1 − `level` detects
    with probability `power` (normal approximation): (z_{1−α/2} + z_power)·√(s_a²/n_a + s_b²/n_b).
    """
    from scipy.stats import norm

    if n_a < 1 or n_b < 1:
        return math.inf
    z = norm.ppf(1 - (1 - level) / 2) + norm.ppf(power)
    return float(z * math.sqrt(sd_a**2 / n_a + sd_b**2 / n_b))


def samples_needed(
    difference: float, sd_a: float, sd_b: float, *, level: float = LEVEL, power: float = 0.8
) -> int:
    """Samples per group (equal sizes) for `detectable_difference` to reach `difference`."""
    from scipy.stats import norm

    if not difference > 0:
        raise ValueError(f"difference must be > 0, got {difference!r}")
    z = norm.ppf(1 - (1 - level) / 2) + norm.ppf(power)
    return max(2, math.ceil((z / difference) ** 2 * (sd_a**2 + sd_b**2)))


def placement_distance_null(positions: int, draws: int = 0, runs: int = 1, seed: int = 0):
    """Null of the checkpoint distance |i − j| between two points placed independently and
    uniformly on `positions` grid positions.

    With `draws` = 0 the exact distribution (array of P(|i − j| = d), d = 0..positions−1);
    otherwise `draws` Monte-Carlo draws of the mean distance over `runs` independent runs.
    """
    if positions < 1:
        raise ValueError(f"need at least one position, got {positions}")
    if draws == 0:
        d = np.arange(positions)
        p = np.where(d == 0, positions, 2 * (positions - d)) / positions**2
        return p
    rng = np.random.default_rng(seed)
    i = rng.integers(0, positions, size=(draws, runs))
    j = rng.integers(0, positions, size=(draws, runs))
    return np.abs(i - j).mean(axis=1)
