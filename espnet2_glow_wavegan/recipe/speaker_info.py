"""Stage 3: speaker ids (sids) and speaker embeddings (spembs) for the dumped data sets.

``sids``: ``spk2sid`` from the training set's speakers (``<unk>`` = 0, then 1..N
in sorted order; adapting a model, its spk2sid extended by the new speakers) and
``utt2sid`` for every set; a speaker unseen in training gets 0 (decode such
speakers with spembs instead).

``spembs`` (one vector per utterance, Kaldi ark/scp), from one of:
  * ``--spk_embed_tool file --spk_embed_scp X``: your own utterance- or
    speaker-keyed scp (e.g. x-vectors extracted elsewhere);
  * ``--spk_embed_tool espnet --spk_embed_model TAG``: ESPnet's pretrained speaker
    model through ``espnet2.bin.spk_inference`` (downloads the model: online only);
  * ``--spk_embed_tool mel_stats``: offline stand-in, the mean and standard
    deviation of a log-mel spectrogram (``--spk_embed_dim`` = 2 x mel bands),
    L2-normalised. Crude, but it separates voices and needs no model.
"""

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf

from espnet2_glow_wavegan.recipe.kaldi_dir import DataError, die, read_table, write_table


def write_sids(dump: Path, train_set: str, sets, pretrained_spk2sid: Path = None):
    """``pretrained_spk2sid`` (adapting a multi-speaker model): its speakers keep their ids, and the training
    set's new speakers get the next ones, in sorted order (the model's speaker table grows by as many rows)."""
    speakers = sorted(set(read_table(dump / train_set / "utt2spk").values()))
    if pretrained_spk2sid:
        spk2sid = read_table(pretrained_spk2sid)
        new = [spk for spk in speakers if spk not in spk2sid]
        first = max(map(int, spk2sid.values())) + 1
        spk2sid.update({spk: str(i) for i, spk in enumerate(new, start=first)})
        print(f"{dump / 'spk2sid'}: the pretrained model's {first} ids, new speakers "
              + (", ".join(f"{spk} = {spk2sid[spk]}" for spk in new) or "none"))
    else:
        spk2sid = {"<unk>": "0", **{spk: str(i) for i, spk in enumerate(speakers, start=1)}}
    write_table(dump / "spk2sid", spk2sid)
    for name in sets:
        utt2spk = read_table(dump / name / "utt2spk")
        unseen = sorted({s for s in utt2spk.values() if s not in spk2sid})
        if unseen:
            print(f"{dump / name}: speakers unseen in training get sid 0 (<unk>): {', '.join(unseen[:10])}")
        write_table(dump / name / "utt2sid", {u: spk2sid.get(s, "0") for u, s in utt2spk.items()})
    print(f"{dump / 'spk2sid'}: {len(spk2sid)} entries (spks: {len(spk2sid)})")


def mel_stats_embedding(path: str, dim: int) -> np.ndarray:
    import librosa

    audio, fs = sf.read(path, dtype="float32")
    mel = librosa.feature.melspectrogram(y=audio, sr=fs, n_fft=1024, hop_length=256, n_mels=dim // 2)
    log_mel = np.log(np.maximum(mel, 1e-5))
    vec = np.concatenate([log_mel.mean(axis=1), log_mel.std(axis=1)])
    return (vec / max(np.linalg.norm(vec), 1e-8)).astype(np.float32)


def espnet_embedder(model_tag: str):
    try:
        from espnet2.bin.spk_inference import Speech2Embedding
    except ImportError as e:
        raise DataError(f"--spk_embed_tool espnet needs espnet2.bin.spk_inference: {e}") from None
    try:
        model = Speech2Embedding.from_pretrained(model_tag=model_tag)
    except Exception as e:
        raise DataError(
            f"could not load ESPnet speaker model '{model_tag}' ({type(e).__name__}: {e}); it is downloaded "
            "from the Hugging Face hub, which needs internet. Offline, use --spk_embed_tool mel_stats or file"
        ) from None

    rate = embedding_rate(model)

    def embed(path):
        # The speaker model hears audio at the rate it was trained on, not the recipe's --fs.
        audio, fs = sf.read(path, dtype="float32")
        if fs != rate:
            import soxr

            audio = soxr.resample(audio, fs, rate)
        return model(audio).reshape(-1).cpu().numpy().astype(np.float32)

    return embed


# ESPnet's speaker models (RawNet3, ECAPA-TDNN, ...) are trained on 16 kHz VoxCeleb audio.
SPEAKER_MODEL_RATE = 16000


def embedding_rate(model) -> int:
    """Sampling rate a Speech2Embedding model expects: its frontend's ``fs`` if its config says, else 16 kHz."""
    train_args = getattr(model, "spk_train_args", None)
    frontend_conf = getattr(train_args, "frontend_conf", None) or {}
    fs = frontend_conf.get("fs") if isinstance(frontend_conf, dict) else None
    if isinstance(fs, str):  # ESPnet writes rates like "16k"
        fs = int(float(fs.lower().rstrip("k")) * 1000) if fs.lower().endswith("k") else int(fs)
    return int(fs) if fs else SPEAKER_MODEL_RATE


def write_spembs(dump: Path, sets, tool: str, dim: int, scp: str, model_tag: str, out_dir: Path):
    import kaldiio

    given = None
    if tool == "file":
        if not scp:
            raise DataError("--spk_embed_tool file needs --spk_embed_scp")
        given = kaldiio.load_scp(scp)
    embed = espnet_embedder(model_tag) if tool == "espnet" else None
    for name in sets:
        wav_scp = read_table(dump / name / "wav.scp")
        utt2spk = read_table(dump / name / "utt2spk")
        target = out_dir / name
        target.mkdir(parents=True, exist_ok=True)
        # Absolute ark paths: the scp stays valid from any working directory.
        ark, out_scp = (target / "spembs.ark").resolve(), (target / "spembs.scp").resolve()
        with kaldiio.WriteHelper(f"ark,scp:{ark},{out_scp}") as writer:
            for utt in sorted(wav_scp):
                if tool == "file":
                    key = utt if utt in given else utt2spk.get(utt)
                    if key not in given:
                        raise DataError(f"{scp}: no embedding for utterance '{utt}' or its speaker '{utt2spk.get(utt)}'")
                    vec = np.asarray(given[key], dtype=np.float32).reshape(-1)
                elif tool == "espnet":
                    vec = embed(wav_scp[utt])
                else:
                    vec = mel_stats_embedding(wav_scp[utt], dim)
                if dim and vec.shape[0] != dim:
                    raise DataError(f"utterance '{utt}': embedding has {vec.shape[0]} dims, --spk_embed_dim is {dim}")
                if not np.isfinite(vec).all():
                    raise DataError(f"utterance '{utt}': embedding contains NaN or Inf")
                writer(utt, vec)
        print(f"{out_scp}: {len(wav_scp)} embeddings ({tool})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dump", type=Path, required=True, help="dump/raw")
    parser.add_argument("--train_set", required=True)
    parser.add_argument("--sets", nargs="+", required=True, help="every set, train included")
    parser.add_argument("--use_sid", type=lambda s: s.lower() == "true", default=False)
    parser.add_argument("--use_spk_embed", type=lambda s: s.lower() == "true", default=False)
    parser.add_argument("--spk_embed_tool", choices=["mel_stats", "file", "espnet"], default="mel_stats")
    parser.add_argument("--spk_embed_dim", type=int, default=0)
    parser.add_argument("--spk_embed_scp", default="")
    parser.add_argument("--spk_embed_model", default="espnet/voxcelebs12_rawnet3")
    parser.add_argument("--spk_embed_dir", type=Path, required=False, help="default: <dump>/../spembs")
    parser.add_argument("--pretrained_spk2sid", type=Path, help="adaptation: the pretrained model's spk2sid to extend")
    args = parser.parse_args(argv)
    try:
        if args.use_sid:
            write_sids(args.dump, args.train_set, args.sets, args.pretrained_spk2sid)
        if args.use_spk_embed:
            if args.spk_embed_tool == "mel_stats" and args.spk_embed_dim < 2:
                raise DataError("--spk_embed_tool mel_stats needs --spk_embed_dim (an even number)")
            out_dir = args.spk_embed_dir or args.dump.parent / "spembs"
            write_spembs(args.dump, args.sets, args.spk_embed_tool, args.spk_embed_dim,
                         args.spk_embed_scp, args.spk_embed_model, out_dir)
    except DataError as e:
        die(str(e))


if __name__ == "__main__":
    main()
