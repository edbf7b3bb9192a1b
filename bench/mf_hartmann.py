"""MF-Hartmann-6, the multi-fidelity Hartmann function of mf-prior-bench 1.10 (``mfh6`` preset), in numpy alone.

Written from the public definition (Hartmann-6: Dixon and Szegő 1978; the fidelity terms: Kandasamy et al.
2017, as mf-prior-bench's ``MFHartmann6`` generator realises them):

    s(z)   = ln z / ln z_max                                   (1 at the top fidelity)
    f(z,x) = -sum_i (alpha_i - bias * (1 - s(z))) * exp(-sum_j A_ij (x_j - P_ij)^2)
             + |N(0, 1)| * noise * (1 - s(z))

with the ``mfh6`` preset's ``bias = 0.5`` and ``noise = 0.1``. The noise draw is mf-prior-bench's: a
``numpy.random.default_rng`` seeded with ``abs(seed * z * hash(x))`` (``seed`` 1337 unless one is given),
so the same config at the same fidelity always gets the same value. Here one fidelity step is one
epoch and ``z_max`` = 27 epochs: at 27 epochs the value is the exact Hartmann-6 function (no bias, no
noise), whose minimum is -3.32237. `check_against_mfpbench` compares this with mf-prior-bench's class.
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Sequence

import numpy as np

MAX_FIDELITY = 27
BIAS, NOISE = 0.5, 0.1  # mf-prior-bench 1.10 MFHartmannBenchmark.mfh_bias_noise: the `mfh6` preset
NOISE_SEED = 1337  # mf-prior-bench's MFHartmannGenerator._default_seed
OPTIMUM = -3.32237
OPTIMUM_X = (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573)
DIMS = 6

_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)


def mf_hartmann6(z: int, xs: Sequence[float], *, max_fidelity: int = MAX_FIDELITY, bias: float = BIAS,
                 noise: float = NOISE, seed: Optional[int] = None) -> float:
    """The value at fidelity ``z`` (1..``max_fidelity``) of the config ``xs`` (6 floats in [0, 1])."""
    xs = tuple(float(x) for x in xs)
    scaled = math.log(z) / math.log(max_fidelity)
    alpha = _ALPHA - bias * (1 - scaled)
    value = -float(np.sum(alpha * np.exp(-np.sum(_A * (np.array(xs) - _P) ** 2, axis=1))))
    rng = np.random.default_rng(abs((seed or NOISE_SEED) * int(z) * hash(xs)))
    return value + abs(float(rng.normal(size=1)[0])) * noise * (1 - scaled)


def check_against_mfpbench(points: int = 6, seeds: Sequence[Optional[int]] = (None, 7)) -> Dict[str, object]:
    """Compare `mf_hartmann6` with mf-prior-bench's ``MFHartmann6`` (same preset, fidelities 1..27).

    Returns ``{"ok", "compared", "max_abs_diff", "preset", "optimum"}``, or ``{"ok": None, "reason"}``
    when mf-prior-bench does not import.
    """
    try:
        from mfpbench.synthetic.hartmann.benchmark import MFHartmann6Benchmark, MFHartmann6Result
        from mfpbench.synthetic.hartmann.generators import MFHartmann6
    except ImportError as err:
        return {"ok": None, "reason": f"mf-prior-bench does not import ({err})"}
    rng = np.random.default_rng(0)
    configs = [OPTIMUM_X, *(tuple(float(v) for v in rng.uniform(size=DIMS)) for _ in range(points - 1))]
    worst, compared = 0.0, 0
    for seed in seeds:
        theirs = MFHartmann6(n_fidelities=MAX_FIDELITY, fidelity_bias=BIAS, fidelity_noise=NOISE, seed=seed)
        for xs in configs:
            for z in (1, 2, 3, 5, 9, 26, MAX_FIDELITY):
                worst = max(worst, abs(theirs(z=z, Xs=xs) - mf_hartmann6(z, xs, seed=seed)))
                compared += 1
    preset = tuple(MFHartmann6Benchmark.mfh_bias_noise)
    optimum = MFHartmann6Result.metric_defs["value"].bounds[0]
    ok = worst <= 1e-12 and preset == (BIAS, NOISE) and optimum == OPTIMUM
    return {"ok": ok, "compared": compared, "max_abs_diff": worst, "preset": preset, "optimum": optimum,
            "value_at_optimum": mf_hartmann6(MAX_FIDELITY, OPTIMUM_X)}
