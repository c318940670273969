"""Benchmark smoke test (tiny configs; asserts the report, not a speed) and optimised inference."""

import json
import math
import subprocess
import sys

import torch

from conftest import REPO
from test_glow_wavegan import tiny_glow


def test_benchmark_command_produces_a_finite_table(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/benchmark_tts.py"), "--tiny", "--runs", "1", "--warmup", "0",
         "--out_dir", str(tmp_path)], capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "benchmark.json").read_text())
    for row in result["synthesis"].values():
        for system in ("glow_wavegan", "glow_wavegan_optimized", "vits"):
            assert math.isfinite(row[system]["rtf"]) and row[system]["rtf"] > 0 and row[system]["peak_rss_mb"] > 0
    assert set(result["training"]) == {"wavegan_vae", "glow_wavegan", "vits"}
    assert all(math.isfinite(v["seconds"]) for v in result["training"].values())
    table = (tmp_path / "benchmark.md").read_text()
    assert "| long | 250 |" in table and "VITS / glow optimized" in table


def test_optimized_inference_matches_the_unoptimized_model():
    model = tiny_glow().eval()
    text = torch.randint(2, 20, (30,))
    durations = torch.full((30,), 3)
    with torch.inference_mode():
        torch.manual_seed(0)
        before = model.inference(text, durations=durations, noise_scale=0.667)["wav"]
        model.optimize_for_inference()
        torch.manual_seed(0)
        after = model.inference(text, durations=durations, noise_scale=0.667)["wav"]
    assert not any(n.endswith("weight_v") for n, _ in model.generator.wavegan.decoder.named_parameters())
    # Folding weight norm changes only float rounding.
    assert torch.allclose(before, after, atol=1e-5, rtol=1e-4), (before - after).abs().max()
