"""Speak text with a glow_wavegan model as it is synthesised: 16-bit PCM out, chunk by chunk.

    echo "The old clock struck eleven. Nobody moved." | \\
        python -m espnet2_glow_wavegan.bin.synthesize --train_config exp/tts_glow_wavegan/config.yaml \\
            --model_file exp/tts_glow_wavegan/train.total_count.ave.pth --output - \\
        | aplay -q -f S16_LE -c 1 -r 22050        # or: | play -q -t raw -e signed -b 16 -c 1 -r 22050 -

``--output -`` writes raw 16-bit little-endian mono PCM to stdout, flushed after every chunk;
``--output out.wav`` writes a wav file as the chunks come. The text (``--text`` or stdin) is
split into sentences, and each sentence is streamed (``GlowWaveGAN.inference_stream``): the
first audio comes after the first sentence's text encoder and its first chunk, whatever
follows. The model is loaded by ESPnet's ``Text2Speech`` (``--train_config``/``--model_file``,
or ``--model_tag`` for a packed model), whose text front end turns each sentence into tokens.
On stderr: the time to the first audio and the real-time factor.
"""

import argparse
import atexit
import contextlib
import io
import logging
import os
import re
import shutil
import sys
import tempfile
import time

import numpy as np

import espnet2_glow_wavegan.registry  # noqa: F401  (importing the package installs the hook)
from espnet2_glow_wavegan.output_files import check_output_folder, replaced_on_success

# A sentence ends at ., !, ? (or their CJK forms) followed by a space or the end of the text.
SENTENCE_END = re.compile(r"(?<=[.!?;\u3002\uff01\uff1f\uff1b])\s+|(?<=[\u3002\uff01\uff1f\uff1b])")


def sentences(text: str):
    """The sentences of ``text``; a piece without a letter or digit ("...") joins the one before."""
    pieces = []
    for piece in SENTENCE_END.split(text.strip()):
        piece = piece.strip()
        if not piece:
            continue
        if pieces and not any(c.isalnum() for c in piece):
            pieces[-1] += " " + piece
        else:
            pieces.append(piece)
    return pieces


def pcm16(wav, fs: int) -> bytes:
    """Float samples -> 16-bit little-endian PCM, converted by libsndfile as ESPnet's PCM_16 wavs are."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, wav, fs, format="RAW", subtype="PCM_16", endian="LITTLE")
    return buffer.getvalue()


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model = parser.add_argument_group("model (as espnet2.bin.tts_inference)")
    model.add_argument("--train_config")
    model.add_argument("--model_file")
    model.add_argument("--model_tag", help="a packed model: a zip file or a Hugging Face name (needs the network)")
    parser.add_argument("--text", help="the text to speak (default: read from stdin)")
    parser.add_argument("--output", required=True, help="a .wav file, or - for raw 16-bit PCM on stdout")
    parser.add_argument("--noise_scale", type=float, default=None, help="default: the model's")
    parser.add_argument("--length_scale", type=float, default=None, help="> 1 slower; default: the model's")
    parser.add_argument("--sid", type=int, default=None, help="speaker id (models with a speaker table)")
    parser.add_argument("--spembs", default=None, help="a .npy speaker embedding (models that take one)")
    parser.add_argument("--chunk_frames", type=int, default=256, help="largest chunk, in latent frames")
    parser.add_argument("--first_chunk_frames", type=int, default=16,
                        help="frames of each sentence's first chunk (the next ones double up to --chunk_frames)")
    parser.add_argument("--optimize_for_inference", choices=("none", "float32", "bfloat16"), default="float32",
                        help="float32 equals the unoptimised output to float rounding (see tts_inference)")
    parser.add_argument("--device", default="cpu")
    return parser


def load(args):
    from espnet2.bin.tts_inference import Text2Speech

    from espnet2_glow_wavegan.espnet_patches import optimize_for_synthesis
    from espnet2_glow_wavegan.glow.glow_wavegan import GlowWaveGAN
    from espnet2_glow_wavegan.safe_load import packed_text2speech, safe_text2speech

    if args.model_tag and (args.model_tag.endswith(".zip") or os.path.isfile(args.model_tag)):
        # A packed zip: ESPnet's own unpacking, offline (the unpacked files live as long as the process).
        unpack_dir = tempfile.mkdtemp(prefix="glow_wavegan_model_")
        atexit.register(shutil.rmtree, unpack_dir, ignore_errors=True)
        t2s = packed_text2speech(args.model_tag, unpack_dir, device=args.device)
    elif args.model_tag:
        try:
            import espnet_model_zoo  # noqa: F401
        except ImportError:
            raise SystemExit(f"--model_tag {args.model_tag}: a model from the hub needs espnet_model_zoo (pip install "
                             "espnet_model_zoo) and the network; a packed .zip loads offline") from None
        t2s = Text2Speech.from_pretrained(model_tag=args.model_tag, device=args.device)
    else:
        if not (args.train_config and args.model_file):
            raise SystemExit("give --train_config and --model_file, or --model_tag")
        t2s = safe_text2speech(args.model_file, args.train_config, device=args.device)
    if not isinstance(t2s.tts, GlowWaveGAN):
        raise SystemExit(f"streaming synthesises glow_wavegan models, not {type(t2s.tts).__name__}")
    optimize_for_synthesis(t2s.tts, args.optimize_for_inference)
    return t2s


def speaker_inputs(t2s, args):
    """``sids``/``spembs`` for the stream, refused as Text2Speech refuses them when missing."""
    import torch

    inputs = {}
    if args.sid is not None:
        inputs["sids"] = torch.tensor([args.sid], device=t2s.device)
    elif t2s.use_sids:
        raise SystemExit("this model has a speaker table: give --sid")
    if args.spembs is not None:
        inputs["spembs"] = torch.as_tensor(np.load(args.spembs), dtype=torch.float32, device=t2s.device).view(-1)
    elif t2s.use_spembs:
        raise SystemExit("this model takes a speaker embedding: give --spembs <file.npy>")
    return inputs


def stream(t2s, text: str, knobs: dict, speakers: dict, chunk_frames: int, first_chunk_frames: int):
    """Waveform chunks (numpy float32) of ``text``, sentence by sentence."""
    import torch

    for sentence in sentences(text):
        tokens = torch.as_tensor(t2s.preprocess_fn("<stdin>", dict(text=sentence))["text"], device=t2s.device)
        try:
            chunks = t2s.tts.inference_stream(tokens, chunk_frames=chunk_frames, first_chunk_frames=first_chunk_frames,
                                              **speakers, **knobs)
        except ValueError as e:
            raise SystemExit(f"ERROR: sentence {sentence!r}: {e}")
        for chunk in chunks:
            yield chunk.float().cpu().numpy()


def audio_stdout():
    """Stdout for the PCM only: whatever else writes to stdout (ESPnet prints there) goes to stderr."""
    pcm = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    return pcm


def main(cmd=None):
    args = get_parser().parse_args(cmd)
    pcm = audio_stdout() if args.output == "-" else None
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    if args.output != "-":
        check_output_folder(args.output)
    text = args.text if args.text is not None else sys.stdin.read()
    if not text.strip():
        raise SystemExit("ERROR: the text is empty: nothing to synthesise (give --text or text on stdin)")
    t2s = load(args)
    knobs = {k: v for k, v in (("noise_scale", args.noise_scale), ("length_scale", args.length_scale)) if v is not None}
    speakers = speaker_inputs(t2s, args)
    start = time.perf_counter()
    first, samples = None, 0
    # A wav file is written beside --output and moved there when the whole text is spoken: a run that
    # fails (nothing to speak, a bad sentence, Ctrl-C) leaves an existing file as it was.
    with contextlib.ExitStack() as stack:
        if pcm is None:
            import soundfile as sf

            partial = stack.enter_context(replaced_on_success(args.output))
            wav_file = stack.enter_context(sf.SoundFile(partial, "w", samplerate=t2s.fs, channels=1, subtype="PCM_16"))
        for chunk in stream(t2s, text, knobs, speakers, args.chunk_frames, args.first_chunk_frames):
            if first is None:
                first = time.perf_counter() - start
            if pcm is not None:
                pcm.write(pcm16(chunk, t2s.fs))
                pcm.flush()
            else:
                wav_file.write(chunk)
            samples += chunk.size
    elapsed = time.perf_counter() - start
    print(f"first audio after {first * 1000:.0f} ms; {samples / t2s.fs:.2f} s of audio in {elapsed:.2f} s "
          f"(RTF {elapsed * t2s.fs / max(samples, 1):.3f})", file=sys.stderr)


if __name__ == "__main__":
    main()
