"""ESPnet's ``tts_inference`` that also forwards the synthesis knobs to ``glow_wavegan``.

ESPnet's ``Text2Speech`` hands ``--noise_scale`` and ``--speed_control_alpha``
only to the model classes it knows (VITS). This wrapper runs ESPnet's own
``main`` unchanged, except that for a ``glow_wavegan`` model those two options, when
given (on the command line or in ``--config``), set its ``noise_scale`` and
``length_scale`` (left out, the model's own ``tts_conf`` defaults apply), the model file is read with
weights-only unpickling before ESPnet loads it (see espnet2_glow_wavegan.safe_load),
and every utterance logs its real-time factor (``RTF x (n samples at fs Hz in t s)``). Everything else,
options and outputs, is ESPnet's. (The stock ``python -m espnet2.bin.tts_inference`` also
runs our models, with the knobs from the model config.)

Options of its own:

* ``--optimize_for_inference {none,float32,bfloat16}`` (default none) prepares the model
  for synthesis before the first utterance: glow_wavegan through its
  ``optimize_for_inference`` (weight norm folded, tiled decoder; float32 equals the plain
  output to rounding, bfloat16 is faster on CPUs with AVX512-BF16/AMX and lossy), and
  ESPnet's VITS gets the same decoder path, so RTFs of the two stay comparable.
* ``--on_error {stop,skip}`` (default stop): an utterance that cannot be synthesised
  (empty text, only unknown symbols, a knob out of range, ...) stops the run with a
  message naming its key; with ``skip`` the others are synthesised, the failed keys and
  their reasons go to ``<output_dir>/failed_utts``, and the exit status is still 1.

Text that the cleaner transliterates (characters outside ASCII that do not survive it) is
logged as a warning naming the utterance.
"""

import argparse
import functools
import logging
import sys
import time
from pathlib import Path

import espnet2_glow_wavegan.registry as registry  # importing the package installs the hook


OPTIMIZE_CHOICES = ("none", "float32", "bfloat16")


def optimize_for_synthesis(tts, mode: str):
    """Apply ``--optimize_for_inference`` to the TTS model of a Text2Speech."""
    import torch
    from espnet2.gan_tts.vits import VITS

    from espnet2_glow_wavegan.glow.glow_wavegan import GlowWaveGAN
    from espnet2_glow_wavegan.wavegan.tiled_decoding import prepare_decoder_for_synthesis, synthesis_decode

    if mode == "none":
        return
    dtype = getattr(torch, mode)
    if isinstance(tts, GlowWaveGAN):
        tts.optimize_for_inference(decoder_dtype=dtype)
    elif isinstance(tts, VITS):
        decoder = prepare_decoder_for_synthesis(tts.generator.decoder, dtype)
        decoder.forward = functools.partial(synthesis_decode, decoder)
    else:
        raise SystemExit(f"--optimize_for_inference {mode}: supported for glow_wavegan and vits, not {type(tts).__name__}")
    logging.info(f"optimized {type(tts).__name__} for synthesis ({mode} decoder)")


def explicit_synthesis_knobs(cmd):
    """The glow_wavegan knobs that ``cmd`` sets, as ``decode_conf`` keys.

    ESPnet's parser gives ``--noise_scale`` and ``--speed_control_alpha`` VITS' defaults when
    they are not given; forwarding those would override the model's configured defaults
    (``tts_conf.noise_scale``, ``length_scale``), so only options given on the command line
    or in the ``--config`` file are forwarded.
    """
    import yaml

    names = {"noise_scale": "noise_scale", "speed_control_alpha": "length_scale"}
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--config")
    for name in names:
        parser.add_argument(f"--{name}", type=float)
    given = parser.parse_known_args(cmd)[0]
    from_config = {}
    if given.config:
        from_config = yaml.safe_load(Path(given.config).read_text()) or {}
    knobs = {}
    for name, key in names.items():
        value = getattr(given, name)
        if value is None and name in from_config:
            value = float(from_config[name])
        if value is not None:
            knobs[key] = value
    return knobs


def _set_aside_empty_texts(cmd, output_dir, on_error, failed):
    """Find utterances whose text is empty before ESPnet's reader refuses the whole file.

    ESPnet's text reader raises on the first key without text and names neither a way
    around it nor the other keys. ``stop`` ends here naming the key; ``skip`` records the
    keys in ``failed`` and points the run at a copy of the file without them, written
    under ``output_dir`` (the user's file is left as it is).
    """
    cmd = list(cmd)
    for i, arg in enumerate(cmd):
        if arg.startswith("--data_path_and_name_and_type="):
            flag, value = arg.split("=", 1)
            flag += "="
        elif arg == "--data_path_and_name_and_type" and i + 1 < len(cmd):
            flag, value = None, cmd[i + 1]
        else:
            continue
        parts = value.split(",")
        if len(parts) != 3 or parts[2] != "text" or not Path(parts[0]).is_file():
            continue
        path = Path(parts[0])
        kept, empty = [], []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            fields = line.strip().split(maxsplit=1)
            if len(fields) == 1:
                empty.append((fields[0], number))
            elif fields:
                kept.append(line + "\n")
        if not empty:
            continue
        if on_error == "stop":
            key, number = empty[0]
            raise SystemExit(f"ERROR: utterance {key}: empty text ({path} line {number}; "
                             f"{len(empty)} such line(s) in all; --on_error skip synthesises the others)")
        for key, number in empty:
            logging.error(f"utterance {key} skipped: empty text ({path} line {number})")
            failed[key] = f"empty text ({path} line {number})"
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        copy = Path(output_dir) / f"{parts[1]}.nonempty"
        copy.write_text("".join(kept), encoding="utf-8")
        new_value = f"{copy},{parts[1]},text"
        if flag is None:
            cmd[i + 1] = new_value
        else:
            cmd[i] = flag + new_value
    return cmd


def main(cmd=None):
    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--optimize_for_inference", choices=OPTIMIZE_CHOICES, default="none")
    own.add_argument("--on_error", choices=("stop", "skip"), default="stop")
    own_args, cmd = own.parse_known_args(sys.argv[1:] if cmd is None else cmd)
    if "-h" in cmd or "--help" in cmd:
        print(f"espnet2_glow_wavegan: --optimize_for_inference {{{','.join(OPTIMIZE_CHOICES)}}} (default none); "
              "--on_error {stop,skip} (default stop). ESPnet's options follow.\n")
    output_dir = argparse.ArgumentParser(add_help=False)
    output_dir.add_argument("--output_dir")
    output_dir = output_dir.parse_known_args(cmd)[0].output_dir
    registry.install_import_hook()
    import espnet2.bin.tts_inference as tts_inference
    import torch
    from espnet2.text.cleaner import TextCleaner

    from espnet2_glow_wavegan.glow.glow_wavegan import GlowWaveGAN
    from espnet2_glow_wavegan.safe_load import check_model_file
    from espnet2_glow_wavegan.text_checks import warn_if_transliterated

    failed = {}
    cmd = _set_aside_empty_texts(cmd, output_dir or ".", own_args.on_error, failed)
    knobs = explicit_synthesis_knobs(cmd)

    class Text2Speech(tts_inference.Text2Speech):
        latest = None  # the instance ESPnet's inference() made (it makes one)

        def __init__(self, *args, **kwargs):
            if kwargs.get("model_file") is not None:
                check_model_file(kwargs["model_file"])  # weights-only read before ESPnet unpickles it
            super().__init__(*args, **kwargs)
            if isinstance(self.tts, GlowWaveGAN):
                self.decode_conf.update(knobs)
            optimize_for_synthesis(self.tts, own_args.optimize_for_inference)
            self.ready = None
            Text2Speech.latest = self

        def synthesize(self, *args, **kwargs):
            # Per-utterance real-time factor, in a line that stage 9 reads back; on a GPU the
            # clock stops when the device has finished, not when the work is queued.
            synchronize = torch.cuda.synchronize if self.device != "cpu" and torch.cuda.is_available() else (lambda: None)
            synchronize()
            start = time.perf_counter()
            out = super().__call__(*args, **kwargs)
            synchronize()
            elapsed = time.perf_counter() - start
            samples = int(out["wav"].numel()) if out.get("wav") is not None else 0
            if samples:
                logging.info(f"RTF {elapsed * self.fs / samples:.4f} ({samples} samples at {self.fs} Hz in {elapsed:.4f} s)")
            return out

        def __call__(self, *args, **kwargs):
            if self.ready is not None:  # synthesised under its key by the data iterator below
                out, self.ready = self.ready, None
                return out
            return self.synthesize(*args, **kwargs)

    def synthesised_under_their_keys(loader):
        """ESPnet's data iterator, each utterance synthesised as it comes, so that a failure has a key."""
        for keys, batch in loader:
            t2s = Text2Speech.latest
            single = {k: v[0] for k, v in batch.items() if not k.endswith("_lengths")}  # as ESPnet's loop does
            try:
                t2s.ready = t2s.synthesize(**single)
            except Exception as e:
                reason = f"{type(e).__name__}: {e}"
                if own_args.on_error == "stop":
                    raise SystemExit(f"ERROR: utterance {keys[0]}: {reason} (--on_error skip synthesises the others)")
                logging.error(f"utterance {keys[0]} skipped: {reason}")
                failed[keys[0]] = reason
                continue
            yield keys, batch

    class TTSTask(tts_inference.TTSTask):
        @classmethod
        def build_streaming_iterator(cls, *args, **kwargs):
            return synthesised_under_their_keys(super().build_streaming_iterator(*args, **kwargs))

        @classmethod
        def build_preprocess_fn(cls, args, train):
            preprocess = super().build_preprocess_fn(args, train)
            cleaner = TextCleaner(getattr(args, "cleaner", None))

            def checked(uid, data):
                if isinstance(data.get("text"), str):
                    warn_if_transliterated(uid, data["text"], cleaner(data["text"]))
                try:
                    return preprocess(uid, data)
                except Exception as e:
                    raise SystemExit(f"ERROR: utterance {uid}: the text front end failed: {type(e).__name__}: {e}")

            return checked

    # inference() and Text2Speech.from_pretrained() look these up in the module.
    tts_inference.Text2Speech = Text2Speech
    tts_inference.TTSTask = TTSTask
    tts_inference.main(cmd)
    if failed:
        listing = Path(output_dir or ".") / "failed_utts"
        listing.write_text("".join(f"{key} {reason}\n" for key, reason in sorted(failed.items())), encoding="utf-8")
        raise SystemExit(f"ERROR: {len(failed)} utterance(s) could not be synthesised; keys and reasons in {listing}")


if __name__ == "__main__":
    main()
