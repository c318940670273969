"""Time to first audio (streaming) and batched throughput of glow_wavegan, beside ESPnet's VITS, in one run.

    .venv/bin/python benchmarks/streaming.py            # paper-size LJSpeech configs, 2 threads
    .venv/bin/python benchmarks/streaming.py --tiny     # tiny configs (smoke test)

Models and inputs as benchmarks/benchmark_tts.py: random weights of the configs' architectures,
every token forced to 4 latent frames (so all systems make the same audio), noise_scale 0.667,
glow_wavegan prepared with ``optimize_for_inference()`` (float32: same output), the same iSTFT model
exported to ONNX and streamed by the torch-free runtime (the same streaming code over its graphs;
batch 1 only), and ESPnet's VITS as shipped, which does not stream: its first audio is its whole
synthesis.

Latency: sentences of 3, 10 and 30 s; median of --runs after --warmup runs. "First audio" is the
call of ``inference_stream`` (text encoder, durations, prior sample) plus the first chunk; the
profile splits it into those parts, the first chunk's flow and its decoder.
Throughput: 32 sentences of 1-4 s (seeded), sorted by length, synthesised at batch 1, 4, 8 and 16
through ``batch_inference``; seconds of audio per second of wall time, the median of
--throughput_runs passes after a warm-up on one batch.
Writes benchmarks/results/streaming.{md,json}.
"""

import argparse
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from benchmark_tts import FRAMES_PER_TOKEN, VOCAB, build, couplings_with_weights  # noqa: E402

SENTENCE_SECONDS = (3, 10, 30, 60)
# Text windows short enough for a flatter first audio, by system-name suffix: (tokens, context each side). A
# model setting: the windows' text states differ from the whole text's, so it changes the voice a little
# (benchmarks/text_windows.py); the default windows are 512 tokens + 64 each side.
SHORT_WINDOWS = {"_window64": (64, 16), "_window128": (128, 32)}
BATCH_SIZES = (1, 4, 8, 16)
SYSTEMS = {"glow_wavegan_istft": "glow_wavegan, iSTFT decoder",
           "glow_wavegan_istft_onnx": "glow_wavegan, iSTFT decoder, ONNX Runtime float32 (batch 1)",
           "glow_wavegan_istft_onnx_window64": "the same, text windows of 64 tokens (+16 each side)",
           "glow_wavegan_istft_onnx_window128": "the same, text windows of 128 tokens (+32 each side)",
           "glow_wavegan": "glow_wavegan, HiFi-GAN decoder", "vits": "ESPnet VITS (no streaming, batch 1)"}
BATCH_1_ONLY = ("vits", "glow_wavegan_istft_onnx", "glow_wavegan_istft_onnx_window64",
                "glow_wavegan_istft_onnx_window128")


def samples(wav):
    """Samples of a torch or numpy waveform."""
    return wav.numel() if hasattr(wav, "numel") else wav.size


class OnnxModel:
    """The model exported to ONNX, synthesised by the torch-free runtime, called here as the torch model is."""

    def __init__(self, model, threads):
        import tempfile

        from espnet2_glow_wavegan.onnx.export import export
        from espnet2_glow_wavegan.onnx.runtime import OnnxText2Speech

        self.folder = tempfile.TemporaryDirectory()
        frontend = dict(token_type="char", token_list=["<blank>", "<unk>"] + [f"t{i}" for i in range(2, VOCAB)],
                        cleaner=None, g2p=None)
        export(model, frontend, Path(self.folder.name) / "onnx")
        self.tts = OnnxText2Speech(Path(self.folder.name) / "onnx", threads=threads)
        self.fs = self.tts.fs

    def inference_stream(self, text, durations, noise_scale, chunk_frames, first_chunk_frames):
        return self.tts.stream_ids(text.numpy(), durations=durations.numpy(), noise_scale=noise_scale, seed=0,
                                   chunk_frames=chunk_frames, first_chunk_frames=first_chunk_frames)

    def inference(self, text, durations, noise_scale):
        return self.tts.synthesize_ids(text.numpy(), durations=durations.numpy(), noise_scale=noise_scale, seed=0)


def tokens_for(seconds, fs, hop):
    return max(1, round(seconds * fs / hop / FRAMES_PER_TOKEN))


def latency(model, system, seconds, args):
    import torch

    hop = 256
    n = tokens_for(seconds, model.fs, hop)
    text = torch.randint(2, VOCAB - 1, (n,))
    durations = torch.full((n,), FRAMES_PER_TOKEN)
    rows = []
    for i in range(args.warmup + args.runs):
        torch.manual_seed(0)
        if system == "vits":
            start = time.perf_counter()
            wav = model.inference(text, durations=durations, noise_scale=0.667)["wav"]
            total = time.perf_counter() - start
            row = dict(first_audio=total, total=total, audio=wav.numel() / model.fs)
        else:
            timed = {}
            start = time.perf_counter()
            stream = model.inference_stream(text, durations=durations, noise_scale=0.667,
                                            chunk_frames=args.chunk_frames, first_chunk_frames=args.first_chunk_frames)
            timed["sentence"] = time.perf_counter() - start
            flow_latent, flow_prior = stream.flow.latent, stream.flow.prior

            def timed_prior(frames):  # the prior sample, and the text windows it needs beyond the first
                t = time.perf_counter()
                out = flow_prior(frames)
                if "first_chunk_flow" not in timed:
                    timed["first_chunk_prior"] = timed.get("first_chunk_prior", 0.0) + time.perf_counter() - t
                return out

            def timed_latent(lo, hi):
                t = time.perf_counter()
                z = flow_latent(lo, hi)
                timed.setdefault("first_chunk_flow", time.perf_counter() - t - timed.get("first_chunk_prior", 0.0))
                return z

            stream.flow.latent, stream.flow.prior = timed_latent, timed_prior
            chunks = iter(stream)
            first = next(chunks)
            first_audio = time.perf_counter() - start
            timed["first_chunk_decoder"] = (first_audio - timed["sentence"] - timed["first_chunk_prior"]
                                            - timed["first_chunk_flow"])
            total_samples = samples(first) + sum(samples(c) for c in chunks)
            total = time.perf_counter() - start
            torch.manual_seed(0)
            start = time.perf_counter()
            model.inference(text, durations=durations, noise_scale=0.667)
            one_pass = time.perf_counter() - start
            row = dict(first_audio=first_audio, total=total, one_pass=one_pass, audio=total_samples / model.fs,
                       first_chunk_seconds=samples(first) / model.fs, **timed)
        if i >= args.warmup:
            rows.append(row)
    return {k: statistics.median(r[k] for r in rows) for k in rows[0]}


def throughput(model, system, batch_size, args):
    import torch

    rng = random.Random(0)
    seconds = sorted(rng.uniform(1.0, 4.0) for _ in range(32))
    texts = [torch.randint(2, VOCAB - 1, (tokens_for(s, model.fs, 256),)) for s in seconds]
    times = []
    for i in range(1 + args.throughput_runs):  # run 0 warms up on the first batch only
        torch.manual_seed(0)
        audio = 0
        start = time.perf_counter()
        for first in range(0, batch_size if i == 0 else len(texts), batch_size):
            group = texts[first : first + batch_size]
            if batch_size == 1:
                out = [model.inference(group[0], durations=torch.full_like(group[0], FRAMES_PER_TOKEN),
                                       noise_scale=0.667)]
            else:
                sizes = [t.numel() for t in group]
                text = torch.zeros(len(group), max(sizes), dtype=torch.long)
                durations = torch.zeros_like(text)
                for b, t in enumerate(group):
                    text[b, : sizes[b]] = t
                    durations[b, : sizes[b]] = FRAMES_PER_TOKEN
                out = model.batch_inference(text, torch.tensor(sizes), durations=durations, noise_scale=0.667)
            audio += sum(samples(o["wav"]) for o in out)
        elapsed = time.perf_counter() - start
        if i > 0:
            times.append(elapsed)
    audio_seconds = audio / model.fs
    return dict(seconds=statistics.median(times), audio_seconds=audio_seconds,
                audio_per_second=audio_seconds / statistics.median(times))


def report(results, args):
    lines = [f"Machine: {platform.platform()}, {platform.machine()}, CPU, {args.threads} threads; configs: "
             f"{'tiny' if args.tiny else 'paper-size'} LJSpeech; glow_wavegan optimize_for_inference() float32; "
             f"chunks: first {args.first_chunk_frames} frames, then doubling up to {args.chunk_frames} (hop 256 at "
             f"22.05 kHz: {args.first_chunk_frames * 256 / 22.05:.0f} / {args.chunk_frames * 256 / 22.05:.0f} ms of audio).", ""]
    lines += ["| time to first audio [ms] (whole synthesis [ms]) | " + " | ".join(f"{s} s sentence" for s in SENTENCE_SECONDS)
              + " | 30 s / 3 s first audio |", "|---" * (len(SENTENCE_SECONDS) + 2) + "|"]
    for system in results:
        label = SYSTEMS[system]
        cells = [f"{r['first_audio'] * 1e3:.0f} ({r['total'] * 1e3:.0f})" for r in results[system]["latency"]]
        first_audio = dict(zip(SENTENCE_SECONDS, (r["first_audio"] for r in results[system]["latency"])))
        ratio = first_audio[30] / first_audio[3]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {ratio:.2f}x |")
    lines += ["", "| first audio, where the time goes [ms] | sentence | checks, first text window, durations | "
              "first chunk: prior sample (+ further text windows) | first chunk: flow | first chunk: decoder | "
              "one-pass synthesis |",
              "|---|---|---|---|---|---|---|"]
    for system in results:
        label = SYSTEMS[system]
        if system == "vits":
            continue
        for seconds, r in zip(SENTENCE_SECONDS, results[system]["latency"]):
            lines.append(f"| {label} | {seconds} s | {r['sentence'] * 1e3:.1f} | {r['first_chunk_prior'] * 1e3:.1f} | "
                         f"{r['first_chunk_flow'] * 1e3:.1f} | "
                         f"{r['first_chunk_decoder'] * 1e3:.1f} | {r['one_pass'] * 1e3:.0f} |")
    lines += ["", "| throughput, 32 sentences of 1-4 s [s of audio per s] | " + " | ".join(f"batch {b}" for b in BATCH_SIZES)
              + " | best / batch 1 |", "|---" * (len(BATCH_SIZES) + 2) + "|"]
    for system in results:
        label = SYSTEMS[system]
        rows = results[system]["throughput"]
        if not rows:
            continue
        cells = [f"{rows[str(b)]['audio_per_second']:.1f}" if str(b) in rows else "-" for b in BATCH_SIZES]
        best = max(r["audio_per_second"] for r in rows.values()) / rows["1"]["audio_per_second"]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {best:.2f}x |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each latency measurement")
    parser.add_argument("--throughput_runs", type=int, default=2, help="timed passes over the 32 sentences (0: latency only)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--chunk_frames", type=int, default=256)
    parser.add_argument("--first_chunk_frames", type=int, default=16)
    parser.add_argument("--systems", nargs="+", choices=list(SYSTEMS), default=list(SYSTEMS))
    parser.add_argument("--out_dir", type=Path, default=ROOT / "benchmarks/results")
    parser.add_argument("--report_name", default="streaming", help="the files' name (--tiny adds _tiny)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    results = {}
    with torch.inference_mode():
        for system in args.systems:
            model = build(system.split("_onnx")[0], args.tiny).eval()
            for suffix, (tokens, context) in SHORT_WINDOWS.items():
                if system.endswith(suffix):
                    model.generator.prior.synthesis_window_tokens = tokens
                    model.generator.prior.synthesis_window_context = context
            if system != "vits":
                couplings_with_weights(model)
            if "_onnx" in system:
                model = OnnxModel(model, args.threads)
            elif system != "vits":
                model.optimize_for_inference()
            results[system] = dict(latency=[latency(model, system, s, args) for s in SENTENCE_SECONDS], throughput={})
            for batch_size in (BATCH_SIZES if system not in BATCH_1_ONLY else (1,)) if args.throughput_runs else ():
                results[system]["throughput"][str(batch_size)] = throughput(model, system, batch_size, args)
            print(system, json.dumps(results[system]), file=sys.stderr, flush=True)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    name = args.report_name + ("_tiny" if args.tiny else "")
    (args.out_dir / f"{name}.json").write_text(json.dumps(dict(settings=vars(args) | {"out_dir": None}, results=results),
                                                           indent=1) + "\n")
    table = report(results, args)
    (args.out_dir / f"{name}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
