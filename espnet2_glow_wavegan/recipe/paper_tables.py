"""The paper's two comparison tables from stage-9 scores: reconstruction and TTS.

    python -m espnet2_glow_wavegan.recipe.paper_tables --test_set eval1 --out RESULTS_paper.md \\
        --reconstruction "inner-GAN (mel)=exp/tts_inner_gan/copy_synthesis/eval1/scores" \\
        --reconstruction "WaveGAN (z)=exp/tts_wavegan_vae/copy_synthesis/eval1/scores" \\
        --tts "Glow-TTS + inner-GAN (mel)=exp/tts_glow_mel/decode_train.total_count.ave/eval1/scores" \\
        --tts "Glow-WaveGAN (z)=exp/tts_glow_wavegan/decode_train.total_count.ave/eval1/scores"

Cong et al. (2021) compare, by MOS: (1) reconstruction: ground truth, HiFi-GAN (mel),
"inner-GAN" (their decoder and discriminators trained as a mel vocoder) and WaveGAN
(encoder -> z -> decoder); (2) TTS: Glow-TTS + HiFi-GAN, Glow-TTS + inner-GAN and
Glow-WaveGAN. The same rows here carry objective metrics against the ground-truth
recordings instead of MOS (MCD, log-F0 RMSE, V/UV error, duration ratio, RTF; see
espnet2_glow_wavegan.scoring). The inner-GAN is the like-for-like mel vocoder; the paper's
separately published HiFi-GAN checkpoint is not part of this offline recipe.
"""

import argparse
import json
from pathlib import Path

METRICS = (("wer", "WER", "{:.2f}"), ("cer", "CER", "{:.2f}"), ("mcd", "MCD [dB]", "{:.2f}"), ("log_f0_rmse", "log-F0 RMSE", "{:.3f}"), ("vuv_error", "V/UV err.", "{:.3f}"),
           ("duration_ratio", "dur. ratio", "{:.2f}"), ("rtf", "RTF", "{:.3f}"))


def rows(specs):
    out = []
    for spec in specs:
        name, _, scores = spec.partition("=")
        summary_file = Path(scores) / "summary.json"
        if not summary_file.is_file():
            raise SystemExit(f"ERROR: {summary_file} is missing: score {name} first")
        out.append(dict(system=name, scores=str(scores), **json.loads(summary_file.read_text())))
    return out


def table(title, entries, ground_truth):
    header = "| system | " + " | ".join(label for _, label, _ in METRICS) + " | utts |"
    lines = [f"### {title}", "", header, "|---|" + "---|" * (len(METRICS) + 1)]
    if ground_truth:
        # The recordings' own error rates (the ASR's floor), as every scored set measured them.
        floor = next((e for e in entries if e.get("wer_recordings") is not None or e.get("cer_recordings") is not None), {})
        cells = [fmt.format(floor[key + "_recordings"]) if floor.get(key + "_recordings") is not None else "-"
                 for key, _, fmt in METRICS]
        lines.append("| ground truth (the reference of every row) | " + " | ".join(cells) + " | - |")
    for e in entries:
        # NaN: no frame voiced in both signals (an untrained model's noise), so no log-F0 error to give.
        cells = [fmt.format(e[key]) if e.get(key) is not None and e[key] == e[key] else "-" for key, _, fmt in METRICS]
        lines.append(f"| {e['system']} | " + " | ".join(cells) + f" | {e['num_utts']} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reconstruction", action="append", required=True, help="NAME=<scores dir> (copy synthesis)")
    parser.add_argument("--tts", action="append", required=True, help="NAME=<scores dir> (text to speech)")
    parser.add_argument("--test_set", required=True)
    parser.add_argument("--out", type=Path, required=True, help="Markdown file (JSON goes next to it)")
    args = parser.parse_args(argv)
    reconstruction, tts = rows(args.reconstruction), rows(args.tts)
    text = (f"# The paper's comparison on {args.test_set}: learned latent vs mel bridge\n\n"
            "Objective metrics against the ground-truth recordings (lower is better, duration ratio near 1), "
            "in place of the paper's MOS; WER/CER of an offline Whisper, the ground truth row giving its error "
            "rates on the recordings (its floor on this voice).\n\n"
            + table("Reconstruction (copy synthesis of the recordings)", reconstruction, ground_truth=True) + "\n"
            + table("Text to speech", tts, ground_truth=True))
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(dict(test_set=args.test_set, reconstruction=reconstruction,
                                                             tts=tts), indent=2) + "\n")
    print(text)


if __name__ == "__main__":
    main()
