"""ESPnet's ``tts_inference`` that also forwards the synthesis knobs to ``glow_wavegan``.

ESPnet's ``Text2Speech`` hands ``--noise_scale`` and ``--speed_control_alpha``
only to the model classes it knows (VITS). This wrapper runs ESPnet's own
``main`` unchanged, except that for a ``glow_wavegan`` model those two options
set its ``noise_scale`` and ``length_scale``, the model file is read with
weights-only unpickling before ESPnet loads it (see espnet2_glow_wavegan.safe_load),
and every utterance logs its real-time factor (``RTF x (n samples at fs Hz in t s)``). Everything else,
options and outputs, is ESPnet's. (The stock ``python -m espnet2.bin.tts_inference`` also
runs our models, with the knobs from the model config.)

One option of its own: ``--optimize_for_inference {none,float32,bfloat16}`` (default none)
prepares the model for synthesis before the first utterance: glow_wavegan through its
``optimize_for_inference`` (weight norm folded, tiled decoder; float32 equals the plain
output to rounding, bfloat16 is faster on CPUs with AVX512-BF16/AMX and lossy), and
ESPnet's VITS gets the same decoder path, so RTFs of the two stay comparable.
"""

import argparse
import functools
import logging
import sys
import time

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


def main(cmd=None):
    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--optimize_for_inference", choices=OPTIMIZE_CHOICES, default="none")
    own_args, cmd = own.parse_known_args(sys.argv[1:] if cmd is None else cmd)
    if "-h" in cmd or "--help" in cmd:
        print(f"espnet2_glow_wavegan: --optimize_for_inference {{{','.join(OPTIMIZE_CHOICES)}}} (default none); "
              "ESPnet's options follow.\n")
    registry.install_import_hook()
    import espnet2.bin.tts_inference as tts_inference

    from espnet2_glow_wavegan.glow.glow_wavegan import GlowWaveGAN

    from espnet2_glow_wavegan.safe_load import check_model_file

    class Text2Speech(tts_inference.Text2Speech):
        def __init__(self, *args, noise_scale: float = 0.667, speed_control_alpha: float = 1.0, **kwargs):
            if kwargs.get("model_file") is not None:
                check_model_file(kwargs["model_file"])  # weights-only read before ESPnet unpickles it
            super().__init__(*args, noise_scale=noise_scale, speed_control_alpha=speed_control_alpha, **kwargs)
            if isinstance(self.tts, GlowWaveGAN):
                self.decode_conf.update(noise_scale=noise_scale, length_scale=speed_control_alpha)
            optimize_for_synthesis(self.tts, own_args.optimize_for_inference)

        def __call__(self, *args, **kwargs):
            # Per-utterance real-time factor, in a line that stage 9 reads back.
            start = time.perf_counter()
            out = super().__call__(*args, **kwargs)
            elapsed = time.perf_counter() - start
            samples = int(out["wav"].numel()) if out.get("wav") is not None else 0
            if samples:
                logging.info(f"RTF {elapsed * self.fs / samples:.4f} ({samples} samples at {self.fs} Hz in {elapsed:.4f} s)")
            return out

    # inference() and Text2Speech.from_pretrained() look the class up in the module.
    tts_inference.Text2Speech = Text2Speech
    tts_inference.main(cmd)


if __name__ == "__main__":
    main()
