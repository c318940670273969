"""Stage 2: read, check and resample one job's share of a data dir into dump/raw.

wav.scp entries may be file paths, Kaldi pipes (``cmd |``) or ark offsets (``x.ark:123``).

Every utterance is decoded, checked (readable, non-empty, finite, mono, at
``--fs`` or resampled to it) and written as ``<out>/data/<utt>.<format>``.
Outputs of job N: ``<out>/split/wav.scp.N``, ``utt2num_samples.N`` and
``bad_utts.N`` (utterances skipped with ``--on_error skip``, with the reason).
"""

import argparse
import io
import math
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from espnet2_glow_wavegan.recipe.kaldi_dir import DataError, die, read_table


def read_entry(utt, entry):
    """A wav.scp entry -> (float32 audio (T, channels), rate).

    A file path is read with soundfile; a command whose output is the audio (``sox in.flac -t
    wav - |``) is run here (so that its failure is named); an offset into an ark of audio
    (``feats.ark:123``) is read with kaldiio, as ESPnet's data loaders do.
    """
    if entry.rstrip().endswith("|"):
        return read_pipe(utt, entry)
    kaldi_form = _is_ark_offset(entry)
    try:
        if not kaldi_form:
            return sf.read(entry, dtype="float32", always_2d=True)
        import kaldiio

        loaded = kaldiio.load_mat(entry)
    except Exception as e:  # soundfile and kaldiio raise several types for bad input
        raise DataError(f"utterance '{utt}': cannot read {entry}: {type(e).__name__}: {e}") from None
    if not (isinstance(loaded, tuple) and len(loaded) == 2 and np.isscalar(loaded[0])):
        raise DataError(f"utterance '{utt}': {entry} holds a matrix, not audio (a feature ark?)")
    fs, samples = int(loaded[0]), np.asarray(loaded[1])
    if samples.dtype.kind == "i":  # PCM: scale to [-1, 1] as soundfile does
        samples = samples.astype(np.float32) / float(np.iinfo(samples.dtype).max + 1)
    samples = samples.astype(np.float32)
    return (samples[:, None] if samples.ndim == 1 else samples), fs


def read_pipe(utt, entry):
    """A Kaldi pipe (``cmd |``): the command's standard output, read as audio. A failing command is named
    with its exit status and the last line it wrote to standard error."""
    command = entry.rstrip()[:-1].strip()
    proc = subprocess.run(command, shell=True, capture_output=True)
    if proc.returncode != 0:
        said = proc.stderr.decode(errors="replace").strip().splitlines()
        raise DataError(f"utterance '{utt}': the command of its wav.scp entry {entry!r} failed with exit status "
                        f"{proc.returncode}" + (f": {said[-1]}" if said else " (it wrote nothing to standard error)"))
    try:
        return sf.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)
    except Exception as e:
        raise DataError(f"utterance '{utt}': the command of its wav.scp entry {entry!r} wrote no audio that "
                        f"soundfile can read ({len(proc.stdout)} bytes: {type(e).__name__}: {e})") from None


def _is_ark_offset(entry: str) -> bool:
    path, sep, offset = entry.rpartition(":")
    return bool(sep) and offset.split("[")[0].isdigit() and not Path(entry).exists()


def load_utterance(utt, wav_scp, segments):
    if segments:
        if utt not in segments:
            raise DataError(f"utterance '{utt}': not in segments")
        rec, start, end = segments[utt].split()
        path = wav_scp.get(rec)
        if path is None:
            raise DataError(f"utterance '{utt}': recording '{rec}' (segments) is not in wav.scp")
    else:
        path, start, end = wav_scp.get(utt), None, None
        if path is None:
            raise DataError(f"utterance '{utt}': not in wav.scp")
    audio, fs = read_entry(utt, path)
    if start is not None:
        audio = audio[int(float(start) * fs) : int(math.ceil(float(end) * fs))]
    return path, audio, fs


def check_and_convert(utt, path, audio, fs, target_fs, resample, channel_policy):
    if audio.shape[0] == 0:
        raise DataError(f"utterance '{utt}': {path} has no samples")
    if not np.isfinite(audio).all():
        raise DataError(f"utterance '{utt}': {path} contains NaN or Inf samples")
    if audio.shape[1] > 1:
        if channel_policy == "error":
            raise DataError(
                f"utterance '{utt}': {path} has {audio.shape[1]} channels; TTS needs mono "
                "(pass --multi_channel first or --multi_channel mix)"
            )
        audio = audio[:, :1] if channel_policy == "first" else audio.mean(axis=1, keepdims=True)
    audio = audio[:, 0]
    if fs != target_fs:
        if not resample:
            raise DataError(f"utterance '{utt}': {path} is {fs} Hz, expected {target_fs} Hz (resampling is off)")
        import soxr

        audio = soxr.resample(audio, fs, target_fs).astype(np.float32)
    if np.abs(audio).max() > 1.0:  # resampling overshoot on full-scale audio
        audio = audio / np.abs(audio).max()
    return audio


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="source data dir (wav.scp, optional segments)")
    parser.add_argument("--keys", type=Path, required=True, help="this job's utterance ids, one per line")
    parser.add_argument("--out", type=Path, required=True, help="dump dir of the data set")
    parser.add_argument("--job", type=int, required=True)
    parser.add_argument("--fs", type=int, required=True)
    parser.add_argument("--resample", type=lambda s: s.lower() == "true", default=True)
    parser.add_argument("--audio_format", choices=["wav", "flac"], default="flac")
    parser.add_argument("--multi_channel", choices=["error", "first", "mix"], default="error")
    parser.add_argument("--on_error", choices=["stop", "skip"], default="stop",
                        help="stop at the first bad utterance, or skip it and list it in bad_utts")
    args = parser.parse_args(argv)
    try:
        wav_scp = read_table(args.data / "wav.scp")
        segments = read_table(args.data / "segments", allow_missing=True)
        keys = [line.split()[0] for line in args.keys.read_text(encoding="utf-8").splitlines() if line.strip()]
    except DataError as e:
        die(str(e))
    (args.out / "data").mkdir(parents=True, exist_ok=True)
    (args.out / "split").mkdir(parents=True, exist_ok=True)
    scp, lengths, bad = [], [], []
    for utt in keys:
        try:
            path, audio, fs = load_utterance(utt, wav_scp, segments)
            audio = check_and_convert(utt, path, audio, fs, args.fs, args.resample, args.multi_channel)
        except DataError as e:
            if args.on_error == "stop":
                die(f"{args.data}: {e}")
            bad.append(f"{utt} {e}")
            continue
        target = (args.out / "data" / f"{utt}.{args.audio_format}").resolve()
        sf.write(target, audio, args.fs, subtype="PCM_16")
        scp.append(f"{utt} {target}\n")
        lengths.append(f"{utt} {len(audio)}\n")
    split = args.out / "split"
    (split / f"wav.scp.{args.job}").write_text("".join(scp), encoding="utf-8")
    (split / f"utt2num_samples.{args.job}").write_text("".join(lengths), encoding="utf-8")
    (split / f"bad_utts.{args.job}").write_text("".join(b + "\n" for b in bad), encoding="utf-8")


if __name__ == "__main__":
    main()
