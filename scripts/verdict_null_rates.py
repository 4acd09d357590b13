"""How often the phase claims say "yes" on pure noise, old rule against new.

python3 scripts/verdict_null_rates.py [SIMULATIONS]

Noise: 20 samples × 14 checkpoints (the default study's grid), each sample's strength per
order a fixed profile (mean order 3 of n = 6) times independent log-normal noise at every
checkpoint, so that nothing changes in training.  Old rules: phase 1 "minimum after epoch 0
< epoch 0", phase 2 "last > minimum after epoch 0"; new: `two_phase.phase_claims`.
"""

import sys

import numpy as np

from harsanyi.analyses import two_phase

N, SAMPLES, CHECKPOINTS = 6, 20, 14


def noise_cube(rng: np.random.Generator) -> np.ndarray:
    k = np.arange(1, N + 1)
    profile = np.exp(-0.5 * (k - 3.0) ** 2)
    base = rng.uniform(0.5, 1.5, size=(SAMPLES, 1)) * profile / profile.sum()
    return np.stack([base * np.exp(rng.normal(0, 0.3, (SAMPLES, N))) for _ in range(CHECKPOINTS)])


def main(simulations: int) -> None:
    old = {"phase1_drop": 0, "phase2_rise": 0}
    new = dict(old)
    for seed in range(simulations):
        cube = noise_cube(np.random.default_rng(1000 + seed))
        m = two_phase.pooled_mean_orders(cube, np.ones((1, SAMPLES)))[0]
        old["phase1_drop"] += int(m[1:].min() < m[0])
        old["phase2_rise"] += int(m[-1] > m[1:].min())
        for key, (result, _) in two_phase.phase_claims(cube, n_boot=200, seed=seed).items():
            new[key] += int(result.verdict == "yes")
    print(f"{simulations} runs of pure noise, {CHECKPOINTS} checkpoints, {SAMPLES} samples")
    for key in old:
        print(f"{key}: old rule yes {old[key]}/{simulations}, new rule yes {new[key]}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
