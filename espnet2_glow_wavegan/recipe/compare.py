"""Tabulate experiments side by side: system, parameters, WER/CER, MCD, log-F0 RMSE, V/UV, RTF.

    python -m espnet2_glow_wavegan.recipe.compare exp/tts_glow_wavegan exp/tts_vits \\
        --inference_tag decode_train.total_count.ave --test_sets eval1 --out RESULTS_compare.md

Reads each experiment's ``config.yaml``, its model file (parameter counts) and
the stage-9 ``scores/summary.json`` of every test set; writes a Markdown table
and the same numbers as JSON next to it.
"""

import argparse
import json
from pathlib import Path

import torch
import yaml

from espnet2_glow_wavegan.legacy import composed_generator_params

# Sub-networks that training needs and synthesis does not.
TRAINING_ONLY = ("tts.discriminator.", "tts.generator.wavegan.encoder.", "tts.generator.posterior_encoder.")


def parameter_counts(model_file: Path):
    state = torch.load(model_file, map_location="cpu", weights_only=True)
    total = synthesis = 0
    for key, value in state.items():
        if not key.startswith("tts.") or not torch.is_floating_point(value) or key.endswith(("melmat", "window")):
            continue
        if key.split(".")[-1] in ("initialized", "trained_architecture"):  # buffers, not weights
            continue
        total += value.numel()
        if not key.startswith(TRAINING_ONLY):
            synthesis += value.numel()
    return total, synthesis


def collect(exp: Path, inference_tag: str, inference_model: str, test_sets):
    # A model decoded from the hub (--download_model) has no config or weights in its dir.
    config = yaml.safe_load((exp / "config.yaml").read_text()) if (exp / "config.yaml").is_file() else {"tts": exp.name}
    total, synthesis = parameter_counts(exp / inference_model) if (exp / inference_model).is_file() else (None, None)
    rows = []
    for dset in test_sets:
        summary_file = exp / inference_tag / dset / "scores" / "summary.json"
        if not summary_file.exists():
            raise SystemExit(f"ERROR: {summary_file} is missing: run stage 9 for {exp} first")
        summary = json.loads(summary_file.read_text())
        rows.append(dict(system=system_name(config), exp=exp.name, test_set=dset, params_total=total,
                         params_synthesis=synthesis, **summary))
    return rows


def system_name(config) -> str:
    """The ``tts`` class, with the WaveGAN decoder when it is not the paper's HiFi-GAN."""
    wavegan = composed_generator_params((config.get("tts_conf") or {}).get("wavegan_params") or {}, quiet=True)
    decoder = (wavegan.get("decoder") or {}).get("type", "hifigan")
    return config["tts"] if decoder == "hifigan" else f"{config['tts']} ({decoder} decoder)"


def params(row) -> str:
    if row["params_total"] is None:
        return "-"
    return f"{row['params_synthesis'] / 1e6:.2f}M / {row['params_total'] / 1e6:.2f}M"


def error_rate_cell(row, metric):
    """'0.35 (0.12)': the system's WER or CER, and in brackets the ASR's on the recordings (its floor)."""
    if row.get(metric) is None:
        return "-"
    return f"{row[metric]:.2f} ({row[metric + '_recordings']:.2f})"


def markdown(rows):
    with_dnsmos = any(r.get("dnsmos_ovrl") is not None for r in rows)
    with_similarity = any(r.get("spk_similarity") is not None for r in rows)
    header = ("| system | exp | test set | params synth. / total | WER (rec.) | CER (rec.) |"
              + (" spk. sim. (rec.) |" if with_similarity else "")
              + " MCD [dB] | log-F0 RMSE | V/UV err. | dur. ratio | RTF |"
              + (" DNSMOS ovrl / P.808 |" if with_dnsmos else "") + " utts |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if with_similarity else "")
              + ("---|" if with_dnsmos else "") + "---|\n")

    def f(row, key, fmt):
        value = row.get(key)
        return fmt.format(value) if value is not None else "-"

    return header + "".join(
        f"| {r['system']} | {r['exp']} | {r['test_set']} | {params(r)} "
        f"| {error_rate_cell(r, 'wer')} | {error_rate_cell(r, 'cer')} |"
        + (f" {error_rate_cell(r, 'spk_similarity')} |" if with_similarity else "")
        + f" {f(r, 'mcd', '{:.2f}')} | {f(r, 'log_f0_rmse', '{:.3f}')} | {f(r, 'vuv_error', '{:.3f}')} "
        f"| {f(r, 'duration_ratio', '{:.2f}')} | {f(r, 'rtf', '{:.3f}')} |"
        + (f" {f(r, 'dnsmos_ovrl', '{:.2f}')} / {f(r, 'dnsmos_p808', '{:.2f}')} |" if with_dnsmos else "")
        + f" {r['num_utts']} |\n"
        for r in rows
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("exps", type=Path, nargs="+", help="experiment dirs (exp/tts_<tag>)")
    parser.add_argument("--inference_tag", default="decode_train.total_count.ave")
    parser.add_argument("--inference_model", default="train.total_count.ave.pth")
    parser.add_argument("--test_sets", nargs="+", required=True)
    parser.add_argument("--out", type=Path, required=True, help="Markdown file (JSON goes next to it)")
    args = parser.parse_args(argv)
    rows = [r for exp in args.exps for r in collect(exp, args.inference_tag, args.inference_model, args.test_sets)]
    table = markdown(rows)
    notes = ("\nWER/CER: an offline Whisper's word/character error rate on the generated speech, in brackets "
             "the same ASR's on the recordings (its floor on this voice); speaker similarity: cosine of "
             "resemblyzer embeddings to the speaker's other recordings, in brackets the recordings' own. "
             "MCD with DTW on 24-order WORLD mel-cepstra (c0 excluded), log-F0 RMSE on frames voiced in "
             "both, V/UV error, generated/reference duration; RTF = synthesis time / audio time of "
             "decoding (CPU threads as the decoding jobs had them). Parameters: synthesis = without the "
             "discriminator and the training-only encoders.\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("# Results\n\n" + table + notes)
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    print(table)


if __name__ == "__main__":
    main()
