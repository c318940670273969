"""ESPnet's ``tts_inference`` that also forwards the synthesis knobs to ``glow_wavegan``.

ESPnet's ``Text2Speech`` hands ``--noise_scale`` and ``--speed_control_alpha``
only to the model classes it knows (VITS). This wrapper runs ESPnet's own
``main`` unchanged (with the two classes of :mod:`espnet2_glow_wavegan.espnet_patches`
in the place of its ``Text2Speech`` and ``TTSTask`` for this run), except that for a ``glow_wavegan`` model those two options, when
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
* ``--batch_size N`` (default 1; ESPnet's own refuses more than 1): glow_wavegan synthesises
  ``N`` texts at a time in padded batches, sorted by length within a read-ahead window; each
  output equals its batch-1 synthesis (see ``GlowWaveGAN.batch_inference``) and is written
  under its key as usual (durations, att_w pictures, ``--on_error``).
* ``--on_error {stop,skip}`` (default stop): an utterance that cannot be synthesised
  (empty text, only unknown symbols, a knob out of range, ...) stops the run with a
  message naming its key; with ``skip`` the others are synthesised, the failed keys and
  their reasons go to ``<output_dir>/failed_utts``, and the exit status is still 1.

Text that the cleaner transliterates (characters outside ASCII that do not survive it) is
logged as a warning naming the utterance.
"""

import argparse
import logging
import sys
from pathlib import Path

import espnet2_glow_wavegan.registry as registry  # importing the package installs the hook
from espnet2_glow_wavegan.espnet_patches import SynthesisRun, run_espnet_inference


OPTIMIZE_CHOICES = ("none", "float32", "bfloat16")


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
    own.add_argument("--batch_size", type=int, default=1)
    own_args, cmd = own.parse_known_args(sys.argv[1:] if cmd is None else cmd)
    if "-h" in cmd or "--help" in cmd:
        print(f"espnet2_glow_wavegan: --optimize_for_inference {{{','.join(OPTIMIZE_CHOICES)}}} (default none); "
              "--on_error {stop,skip} (default stop); --batch_size N (default 1; glow_wavegan). ESPnet's options follow.\n")
    if own_args.batch_size < 1:
        raise SystemExit(f"--batch_size must be >= 1, got {own_args.batch_size}")
    output_dir = argparse.ArgumentParser(add_help=False)
    output_dir.add_argument("--output_dir")
    output_dir = output_dir.parse_known_args(cmd)[0].output_dir
    registry.install_import_hook()
    run = SynthesisRun(optimize=own_args.optimize_for_inference, on_error=own_args.on_error,
                       batch_size=own_args.batch_size)
    cmd = _set_aside_empty_texts(cmd, output_dir or ".", own_args.on_error, run.failed)
    run.knobs = explicit_synthesis_knobs(cmd)
    run_espnet_inference(cmd, run, output_dir or ".")


if __name__ == "__main__":
    main()
