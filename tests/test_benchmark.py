"""Benchmark smoke test (tiny configs; asserts the report, not a speed) and optimised inference."""

import importlib.util
import json
import math
import subprocess
import sys

import pytest
import torch

from conftest import REPO, tiny_glow_wavegan

# The benchmark's variant names (a script, not a package module; its heavy imports are lazy).
_spec = importlib.util.spec_from_file_location("benchmark_tts", REPO / "benchmarks/benchmark_tts.py")
_benchmark = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_benchmark)
SYSTEMS = _benchmark.SYSTEMS


# One process per measurement, each paying ESPnet's start-up: the smoke test takes a subset.
MEASURED = ["glow_wavegan", "glow_wavegan_optimized", "glow_wavegan_bf16", "vits", "vits_optimized"]
TRAINED = ["glow_prior_stored", "vits"]


@pytest.mark.slow
def test_benchmark_command_produces_a_finite_table(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/benchmark_tts.py"), "--tiny", "--runs", "1", "--train_runs", "1",
         "--warmup", "0", "--lengths", "medium", "--train_batches", "2x2", "--out_dir", str(tmp_path),
         "--systems", *MEASURED, "--train_systems", *TRAINED],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "benchmark.json").read_text())
    assert list(result["synthesis"]) == ["medium"]
    for row in result["synthesis"].values():
        assert list(row) == MEASURED
        for system in MEASURED:
            assert math.isfinite(row[system]["rtf"]) and row[system]["rtf"] > 0 and row[system]["peak_rss_mb"] > 0
    # The float32 paths equal their unoptimised outputs to rounding; bfloat16 deviates, but boundedly.
    deviation = result["deviation"]
    assert deviation["glow_wavegan_optimized"]["max_abs_deviation"] < 1e-4
    assert deviation["vits_optimized"]["max_abs_deviation"] < 1e-4
    assert 0 < deviation["glow_wavegan_bf16"]["relative_rms_deviation"] < 0.1
    assert list(result["training"]) == ["2x2"]
    for steps in result["training"].values():
        assert list(steps) == TRAINED
        assert all(math.isfinite(v["seconds"]) and v["seconds"] > 0 and v["peak_rss_mb"] > 0 for v in steps.values())
    table = (tmp_path / "benchmark.md").read_text()
    assert "speed vs ESPnet VITS" in table and "| glow_wavegan, optimize_for_inference() float32 |" in table
    assert "| glow_wavegan prior (stage 2), stored latents (default) |" in table


def synthesize(model, text, durations):
    torch.manual_seed(0)
    return model.inference(text, durations=durations, noise_scale=0.667)["wav"]


def test_optimized_inference_matches_the_unoptimized_model():
    model = tiny_glow_wavegan().eval()
    text = torch.randint(2, 20, (30,))
    durations = torch.full((30,), 3)
    with torch.inference_mode():
        before = synthesize(model, text, durations)
        # tile_elements=1: the smallest tiles, so the tiled decoder really cuts this short input.
        model.optimize_for_inference(tile_elements=1)
        after = synthesize(model, text, durations)
    assert not any(n.endswith("weight_v") for n, _ in model.generator.wavegan.decoder.named_parameters())
    assert model.generator.wavegan.decoder.synthesis_tile_elements == 1
    # Folding weight norm and decoding in tiles change only float rounding.
    assert torch.allclose(before, after, atol=1e-5, rtol=1e-4), (before - after).abs().max()


def test_bfloat16_decoder_is_an_opt_in_close_to_float32():
    model = tiny_glow_wavegan().eval()
    text = torch.randint(2, 20, (30,))
    durations = torch.full((30,), 3)
    with torch.inference_mode():
        before = synthesize(model, text, durations)
        model.optimize_for_inference(decoder_dtype=torch.bfloat16)
        after = synthesize(model, text, durations)
    assert model.generator.wavegan.decoder.input_conv.weight.dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in model.generator.prior.parameters())  # only the decoder is cast
    assert after.dtype == torch.float32 and after.shape == before.shape
    relative_rms = ((after - before).pow(2).mean() / before.pow(2).mean()).sqrt()
    # bfloat16 keeps 8 bits of mantissa; the tiny random decoder measures about 5% here,
    # the paper-size one about 0.3% (benchmark report).
    assert 0 < relative_rms < 0.1, relative_rms
    with pytest.raises(ValueError, match="decoder_dtype"):
        tiny_glow_wavegan().optimize_for_inference(decoder_dtype=torch.float16)


@pytest.mark.slow
def test_streaming_benchmark_command_produces_a_finite_table(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/streaming.py"), "--tiny", "--runs", "1", "--warmup", "0",
         "--throughput_runs", "1", "--threads", "1", "--systems", "glow_wavegan_istft", "glow_wavegan_istft_onnx", "vits",
         "--out_dir", str(tmp_path)],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "streaming_tiny.json").read_text())["results"]
    assert list(results) == ["glow_wavegan_istft", "glow_wavegan_istft_onnx", "vits"]
    for system in ("glow_wavegan_istft", "glow_wavegan_istft_onnx"):
        for row in results[system]["latency"]:
            parts = row["sentence"] + row["first_chunk_prior"] + row["first_chunk_flow"]
            assert 0 < row["first_audio"] <= row["total"] and 0 < parts < row["first_audio"]
    # the forced durations reach the runtime: the same audio for every sentence as torch
    assert [r["audio"] for r in results["glow_wavegan_istft_onnx"]["latency"]] == \
        [r["audio"] for r in results["glow_wavegan_istft"]["latency"]]
    assert list(results["glow_wavegan_istft"]["throughput"]) == ["1", "4", "8", "16"]
    assert list(results["glow_wavegan_istft_onnx"]["throughput"]) == list(results["vits"]["throughput"]) == ["1"]
    assert all(math.isfinite(r["audio_per_second"]) for s in results.values() for r in s["throughput"].values())
    assert "| glow_wavegan, iSTFT decoder |" in (tmp_path / "streaming_tiny.md").read_text()


@pytest.mark.slow
def test_the_gpu_check_runs_its_cpu_smoke_mode(tmp_path):
    """benchmarks/gpu_check.py, the one command for a GPU machine, in its CPU smoke mode (tiny configs, one step)."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/gpu_check.py"), "--device", "cpu", "--tiny", "--steps", "1",
         "--warmup", "0", "--synthesis_runs", "1", "--out_dir", str(tmp_path)],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "gpu.json").read_text())
    assert report["machine"]["device"] == "cpu" and report["training"] and report["synthesis"]
    failed = {f"{system}/{precision}": r["error"] for system, runs in report["training"].items()
              for precision, r in runs.items() if "error" in r}
    assert not failed, failed
    assert (tmp_path / "gpu.md").read_text().startswith("# GPU check: cpu")
