"""Objective TTS metrics: MCD with DTW, log-F0 RMSE, V/UV error, duration ratio.

Settings (the common TTS-literature recipe, e.g. as in ESPnet's evaluate_mcd/f0):
* analysis: WORLD (pyworld) with a 5 ms frame period; F0 by DIO + StoneMask in
  [f0_floor, f0_ceil] = [40, 800] Hz; spectral envelope by CheapTrick;
* mel-cepstrum: ``pysptk.sp2mc`` of the envelope, order 24 (25 coefficients),
  all-pass constant ``pysptk.util.mcepalpha(fs)`` (0.455 at 22.05 kHz);
* alignment: DTW (fastdtw, Euclidean) between the reference and generated
  mel-cepstra without c0; every metric is computed along that path;
* MCD [dB] = mean over aligned frames of (10 / ln 10) * sqrt(2 * sum_d (c_d - c'_d)^2),
  d = 1..24 (c0, the energy, excluded);
* log-F0 RMSE [cent-free, natural log of Hz] over aligned frames voiced in both;
* V/UV error = share of aligned frames whose voicing decisions differ;
* duration ratio = generated length / reference length (seconds).
Both waveforms are resampled to the reference rate when they differ.
"""

import math
from typing import Dict

import numpy as np

FRAME_PERIOD_MS = 5.0
MCEP_ORDER = 24
F0_FLOOR, F0_CEIL = 40.0, 800.0


def world_features(wav: np.ndarray, fs: int):
    """(log-F0 with 0 for unvoiced frames, mel-cepstrum without c0) per 5 ms frame."""
    import pysptk
    import pyworld

    x = wav.astype(np.float64)
    f0, t = pyworld.dio(x, fs, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=FRAME_PERIOD_MS)
    f0 = pyworld.stonemask(x, f0, t, fs)
    sp = pyworld.cheaptrick(x, f0, t, fs)
    mcep = pysptk.sp2mc(sp, order=MCEP_ORDER, alpha=pysptk.util.mcepalpha(fs))
    log_f0 = np.where(f0 > 0, np.log(np.maximum(f0, 1e-8)), 0.0)
    return log_f0, mcep[:, 1:]


def score_pair(reference: np.ndarray, generated: np.ndarray, fs: int, generated_fs: int = None) -> Dict[str, float]:
    """All metrics for one utterance (mono float waveforms)."""
    from fastdtw import fastdtw

    if generated_fs and generated_fs != fs:
        import soxr

        generated = soxr.resample(generated, generated_fs, fs)
    ref_f0, ref_mc = world_features(reference, fs)
    gen_f0, gen_mc = world_features(generated, fs)
    _, path = fastdtw(ref_mc, gen_mc, dist=lambda a, b: np.linalg.norm(a - b))
    path = np.asarray(path)
    diff = ref_mc[path[:, 0]] - gen_mc[path[:, 1]]
    mcd = float(np.mean(10.0 / math.log(10.0) * np.sqrt(2.0 * np.sum(diff**2, axis=1))))
    rf, gf = ref_f0[path[:, 0]], gen_f0[path[:, 1]]
    voiced_both = (rf > 0) & (gf > 0)
    f0_rmse = float(np.sqrt(np.mean((rf[voiced_both] - gf[voiced_both]) ** 2))) if voiced_both.any() else float("nan")
    vuv_error = float(np.mean((rf > 0) != (gf > 0)))
    duration_ratio = (len(generated) / fs) / (len(reference) / fs)
    return dict(mcd=mcd, log_f0_rmse=f0_rmse, vuv_error=vuv_error, duration_ratio=duration_ratio)
