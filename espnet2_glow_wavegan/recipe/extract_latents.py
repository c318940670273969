"""Stage 7 helper: store the trained WaveGAN's posterior of every utterance, once.

The Glow-TTS prior models the latent of a frozen WaveGAN. Encoding the waveform again at
every training step costs more than the prior itself, so the recipe encodes each training
and validation utterance once and the prior trains from the stored statistics
(``speech_input: posterior_stats``).

    python -m espnet2_glow_wavegan.recipe.extract_latents extract --train_config C --model_file M \\
        --wav_scp dump/raw/tr_no_dev/wav.scp --keys KEYS --out dump/latents/X/tr_no_dev/split/stats.1
    python -m espnet2_glow_wavegan.recipe.extract_latents finalize --out_dir dump/latents/X/tr_no_dev \\
        --wav_scp dump/raw/tr_no_dev/wav.scp --train_config C --model_file M
    python -m espnet2_glow_wavegan.recipe.extract_latents check --out_dir dump/latents/X/tr_no_dev \\
        --model_file M [--wav_scp dump/raw/tr_no_dev/wav.scp] [--record exp/tts_Y/wavegan_latents.json]

Per set it writes ``stats.scp`` (Kaldi ark/scp, ESPnet loader type ``kaldi_ark``): one
float32 matrix (T_frames, 2 * latent_dim) per utterance, the posterior mean then log-std
of each frame, ``T_frames = num_samples // hop + 1``; ``speech_shape`` (``utt T_frames,2C``,
the shape file ESPnet's batch samplers read); and ``manifest.json``, which names the
WaveGAN model file and its SHA-256. ``check`` refuses latents of another WaveGAN (the
prior must model the latent of the decoder it is packed with) and, with ``--wav_scp``, a set
that lacks an utterance or whose archive is cut short or damaged (each matrix header is read
and checked against the file's size and ``speech_shape``).
"""

import argparse
import hashlib
import json
import struct
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from espnet2_glow_wavegan.recipe.kaldi_dir import DataError, die, read_table, write_table


def file_digest(path: Path) -> str:
    """SHA-256 of a file's content (through symlinks)."""
    digest = hashlib.sha256()
    with open(Path(path).resolve(), "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def load_wavegan(train_config: Path, model_file: Path, device: str):
    """The ``wavegan_vae`` model of an experiment, its weights read without unpickling code."""
    from espnet2.tasks.gan_tts import GANTTSTask

    from espnet2_glow_wavegan.safe_load import check_model_file

    state = check_model_file(model_file)
    model, _ = GANTTSTask.build_model_from_file(train_config, None, device)
    tts = model.tts
    if not hasattr(tts, "generator") or not hasattr(tts.generator, "encoder"):
        raise DataError(f"{train_config}: tts is {type(tts).__name__}; latents come from a wavegan_vae experiment")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise DataError(f"{model_file} does not fit {train_config}: {str(e).splitlines()[0]}") from None
    return tts.eval()


def extract(args):
    import kaldiio
    import torch

    torch.set_num_threads(args.num_threads)
    wavegan = load_wavegan(args.train_config, args.model_file, args.device)
    encoder, hop = wavegan.generator.encoder, wavegan.generator.upsample_factor
    if hasattr(encoder, "remove_weight_norm"):
        encoder.remove_weight_norm()  # the same weights, computed once instead of at every call
    wav_scp = read_table(args.wav_scp)
    keys = list(read_table(args.keys)) if args.keys else sorted(wav_scp)
    audio = {}
    for utt in keys:
        if utt not in wav_scp:
            raise DataError(f"{args.keys}: utterance '{utt}' is not in {args.wav_scp}")
        try:
            samples, fs = sf.read(wav_scp[utt], dtype="float32", always_2d=True)
        except Exception as e:
            raise DataError(f"{args.wav_scp}: utterance '{utt}': cannot read {wav_scp[utt]}: {e}") from None
        if fs != wavegan.fs or samples.shape[1] != 1 or samples.shape[0] == 0:
            raise DataError(
                f"{args.wav_scp}: utterance '{utt}' ({wav_scp[utt]}) is {fs} Hz with {samples.shape[1]} channel(s) "
                f"and {samples.shape[0]} samples; the WaveGAN encodes non-empty mono audio at {wavegan.fs} Hz"
            )
        audio[utt] = samples[:, 0]
    # Longest first, batches of up to --batch_seconds of padded audio. The encoder masks
    # every item of a padded batch, so each utterance is encoded exactly as alone. On a CPU
    # one utterance at a time is fastest (3-4x faster than 60 s batches, whose activations
    # fall out of the caches); a GPU wants the batches.
    batch_seconds = args.batch_seconds if args.batch_seconds is not None else (0 if args.device == "cpu" else 60)
    order = sorted(audio, key=lambda u: -len(audio[u]))
    budget = int(batch_seconds * wavegan.fs)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shapes = {}
    with kaldiio.WriteHelper(f"ark,scp:{out}.ark,{out}.scp") as writer, torch.inference_mode():
        start = 0
        while start < len(order):
            size = max(1, budget // len(audio[order[start]]))
            batch = order[start : start + size]
            start += size
            lengths = torch.tensor([len(audio[u]) for u in batch])
            speech = torch.zeros(len(batch), int(lengths.max()))
            for i, utt in enumerate(batch):
                speech[i, : lengths[i]] = torch.from_numpy(audio[utt])
            mean, log_std, mask = encoder(speech.to(args.device), lengths.to(args.device))
            stats = torch.cat([mean, log_std], dim=1).transpose(1, 2).float().cpu().numpy()
            frames = mask.sum(dim=(1, 2)).long().tolist()
            for i, utt in enumerate(batch):
                matrix = np.ascontiguousarray(stats[i, : frames[i]])
                if not np.isfinite(matrix).all():
                    raise DataError(f"{args.wav_scp}: utterance '{utt}': the WaveGAN posterior is not finite")
                writer(utt, matrix)
                shapes[utt] = f"{matrix.shape[0]},{matrix.shape[1]}"
    write_table(Path(f"{out}.shape"), shapes)
    print(f"{out}.scp: {len(shapes)} utterances (hop {hop}, latent_dim {wavegan.generator.latent_dim})")


def finalize(args):
    out_dir = Path(args.out_dir)
    parts = sorted((out_dir / "split").glob("stats.*.scp"))
    scp, shapes = {}, {}
    for part in parts:
        scp.update(read_table(part))
        shapes.update(read_table(part.with_suffix(".shape")))
    expected = set(read_table(args.wav_scp))
    missing, extra = sorted(expected - set(scp)), sorted(set(scp) - expected)
    if missing or extra or set(shapes) != set(scp):
        raise DataError(
            f"{out_dir}: the extraction jobs wrote {len(scp)} utterances for the {len(expected)} of {args.wav_scp} "
            f"(missing e.g. {missing[:3]}, unexpected e.g. {extra[:3]}); see {out_dir}/logs"
        )
    write_table(out_dir / "stats.scp", scp)
    write_table(out_dir / "speech_shape", shapes)
    check_complete(out_dir, args.wav_scp)
    latent_dims = {int(s.split(",")[1]) // 2 for s in shapes.values()}
    manifest = {
        "model_file": str(args.model_file),
        "model_sha256": file_digest(args.model_file),
        "train_config": str(args.train_config),
        "wav_scp": str(args.wav_scp),
        "utterances": len(scp),
        "latent_dim": latent_dims.pop() if len(latent_dims) == 1 else sorted(latent_dims),
        "layout": "per frame: posterior mean (latent_dim), then log-std (latent_dim)",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"{out_dir}/stats.scp: {len(scp)} utterances from {args.model_file}")


# A Kaldi binary float32 matrix as kaldiio writes it: "\0B", "FM ", then rows and columns,
# each an int32 after its size byte (4), then the rows * cols floats.
MATRIX_HEADER = struct.Struct("<2s3sbibi")


def damaged_entries(scp: Path, shapes: dict, limit: int = 3) -> list:
    """Entries of ``scp`` whose matrix is not whole in its ark (missing file, cut short, wrong header or shape).

    Reads each entry's 15-byte header, not its data, so a set of any size is checked in seconds.
    """
    problems, sizes = [], {}
    for utt, location in read_table(scp).items():
        path, _, offset = location.rpartition(":")
        try:
            offset = int(offset)
            if path not in sizes:
                sizes[path] = Path(path).stat().st_size
            with open(path, "rb") as f:
                f.seek(offset)
                binary, kind, _, rows, _, cols = MATRIX_HEADER.unpack(f.read(MATRIX_HEADER.size))
        except (ValueError, OSError, struct.error) as e:
            problems.append(f"{utt} ({location}: {type(e).__name__})")
        else:
            end = offset + MATRIX_HEADER.size + 4 * rows * cols
            if binary != b"\0B" or kind != b"FM ":
                problems.append(f"{utt} ({location}: not a float32 matrix)")
            elif end > sizes[path]:
                problems.append(f"{utt} ({location}: cut short, {end - sizes[path]} bytes missing)")
            elif shapes.get(utt) != f"{rows},{cols}":
                problems.append(f"{utt} ({location}: {rows} x {cols}, speech_shape says {shapes.get(utt)})")
        if len(problems) >= limit:
            break
    return problems


def check_complete(out_dir: Path, wav_scp: Path) -> None:
    """Raise unless ``out_dir`` holds a whole matrix for every utterance of ``wav_scp``."""
    scp, shapes = out_dir / "stats.scp", out_dir / "speech_shape"
    for path in (scp, shapes):
        if not path.is_file():
            raise DataError(f"{path}: missing; delete {out_dir} to extract the latents again")
    stored, expected = set(read_table(scp)), set(read_table(wav_scp))
    missing, extra = sorted(expected - stored), sorted(stored - expected)
    if missing or extra:
        raise DataError(
            f"{out_dir} does not hold the latents of {wav_scp}: {len(missing)} utterance(s) missing "
            f"(e.g. {missing[:3]}) and {len(extra)} not in it (e.g. {extra[:3]}); delete {out_dir} to extract "
            "them again"
        )
    problems = damaged_entries(scp, read_table(shapes))
    if problems:
        raise DataError(
            f"{out_dir}/stats.scp points at damaged latents: {'; '.join(problems)}; delete {out_dir} to extract "
            "them again"
        )


def check(args):
    """Exit non-zero, saying why, unless the stored latents are whole and come from ``--model_file``."""
    out_dir = Path(args.out_dir)
    manifest_path = out_dir / "manifest.json"
    if not manifest_path.is_file():
        raise DataError(f"{manifest_path}: missing; delete {out_dir} to extract the latents again")
    if args.wav_scp:
        check_complete(out_dir, args.wav_scp)
    manifest = json.loads(manifest_path.read_text())
    digest = file_digest(args.model_file)
    if manifest["model_sha256"] != digest:
        raise DataError(
            f"{out_dir} holds latents of another WaveGAN: they were extracted on {manifest['created']} from "
            f"{manifest['model_file']} (sha256 {manifest['model_sha256'][:12]}), but {args.model_file} is now "
            f"sha256 {digest[:12]}. A prior trained on them would model the wrong latent: delete {out_dir.parent} "
            "to extract them again from the current WaveGAN, every set (and retrain the prior)."
        )
    if args.record:
        record = Path(args.record)
        if record.is_file():
            trained_on = json.loads(record.read_text())
            if trained_on["model_sha256"] != digest:
                raise DataError(
                    f"{record.parent} was trained on latents of another WaveGAN (sha256 "
                    f"{trained_on['model_sha256'][:12]}, extracted {trained_on['created']}); the WaveGAN is now "
                    f"sha256 {digest[:12]}. Move {record.parent} away to train the prior again."
                )
        else:
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"{out_dir}: latents of {args.model_file} (sha256 {digest[:12]})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("extract", help="encode the utterances of --keys (one job)")
    p.add_argument("--train_config", type=Path, required=True, help="config.yaml of the wavegan_vae experiment")
    p.add_argument("--model_file", type=Path, required=True)
    p.add_argument("--wav_scp", type=Path, required=True)
    p.add_argument("--keys", type=Path, help="utterances of this job (default: all of --wav_scp)")
    p.add_argument("--out", required=True, help="output prefix: writes OUT.ark, OUT.scp, OUT.shape")
    p.add_argument("--device", default="cpu")
    p.add_argument("--num_threads", type=int, default=1)
    p.add_argument("--batch_seconds", type=float, default=None,
                   help="padded audio per encoder call (default: 60 on a GPU, one utterance at a time on the CPU)")
    p = sub.add_parser("finalize", help="merge the jobs' outputs, check them, write the manifest")
    p.add_argument("--out_dir", type=Path, required=True)
    p.add_argument("--wav_scp", type=Path, required=True)
    p.add_argument("--train_config", type=Path, required=True)
    p.add_argument("--model_file", type=Path, required=True)
    p = sub.add_parser("check", help="fail unless the stored latents come from --model_file")
    p.add_argument("--out_dir", type=Path, required=True)
    p.add_argument("--model_file", type=Path, required=True)
    p.add_argument("--record", type=Path, help="JSON in a prior's experiment dir: written once, then compared")
    p.add_argument("--wav_scp", type=Path, help="the set's wav.scp: also check that every utterance's matrix is whole")
    args = parser.parse_args(argv)
    try:
        {"extract": extract, "finalize": finalize, "check": check}[args.command](args)
    except DataError as e:
        die(str(e))


if __name__ == "__main__":
    sys.exit(main())
