"""How often the phase claims say "yes" where nothing is there, old rules against new.

python3 scripts/verdict_null_rates.py [SIMULATIONS]

20 samples × 14 checkpoints (the default study's grid); each sample's strength per order is
a profile (n = 6) times independent log-normal noise at every checkpoint.  Pure noise: the
profile never changes.  Phase 1 then nothing: mean order 3.5 → 1.5 in three checkpoints,
then flat.  Old rules: phase 1 "minimum after epoch 0 < epoch 0", phase 2 "last > minimum
after epoch 0"; new: `two_phase.phase_claims`.
"""

import sys

import numpy as np

from harsanyi.analyses import two_phase

N, SAMPLES, CHECKPOINTS = 6, 20, 14


def noise_cube(rng: np.random.Generator, means) -> np.ndarray:
    k = np.arange(1, N + 1)
    scale = rng.uniform(0.5, 1.5, size=(SAMPLES, 1))
    cube = []
    for mean in means:
        profile = np.exp(-0.5 * (k - mean) ** 2)
        cube.append(scale * profile / profile.sum() * np.exp(rng.normal(0, 0.3, (SAMPLES, N))))
    return np.stack(cube)


def rates(simulations: int, means, seed0: int) -> tuple[dict, dict]:
    old = {"phase1_drop": 0, "phase2_rise": 0}
    new = dict(old)
    for seed in range(simulations):
        cube = noise_cube(np.random.default_rng(seed0 + seed), means)
        m = two_phase.pooled_mean_orders(cube, np.ones((1, SAMPLES)))[0]
        old["phase1_drop"] += int(m[1:].min() < m[0])
        old["phase2_rise"] += int(m[-1] > m[1:].min())
        for key, (result, _) in two_phase.phase_claims(cube, n_boot=200, seed=seed).items():
            new[key] += int(result.verdict == "yes")
    return old, new


def main(simulations: int) -> None:
    print(f"{simulations} simulated runs each, {CHECKPOINTS} checkpoints, {SAMPLES} samples")
    old, new = rates(simulations, (3.0,) * CHECKPOINTS, 1000)
    for key in old:
        print(f"pure noise, {key}: old rule yes {old[key]}, new rule yes {new[key]}")
    old, new = rates(simulations, (3.5, 2.5, 1.8) + (1.5,) * (CHECKPOINTS - 3), 2000)
    print(
        f"phase 1 then flat, phase2_rise: old rule yes {old['phase2_rise']}, "
        f"new rule yes {new['phase2_rise']} (phase1_drop new rule yes {new['phase1_drop']})"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
