"""What a glow_wavegan experiment takes from the wavegan_vae experiment it is trained on.

    python -m espnet2_glow_wavegan.recipe.vae_settings exp/tts_wavegan_vae/config.yaml [--discriminator]

prints ``--tts_conf wavegan_params=<settings>`` (and with ``--discriminator``, for the joint
phase, ``--tts_conf discriminator_params=<settings>``): the ``generator_params`` (and
``discriminator_params``) of that experiment's ``config.yaml``, for ESPnet's ``gan_tts_train``.
The recipe's stage 7c appends them to the prior's training command, so a glow config never
repeats the WaveGAN's settings, and ESPnet writes them into the prior experiment's own
``config.yaml``, which ``Text2Speech``, packing and the model zoo then read alone.

The settings are written as compact JSON (no white space, so that the recipe's word
splitting keeps each option whole) with every float spelled with a dot (``1.0e-09``: the
YAML that ESPnet parses ``--tts_conf`` values with reads ``1e-09`` as a string).
"""

import argparse
import json
import math
import sys
from pathlib import Path

import yaml

from espnet2_glow_wavegan.legacy import composed_generator_params
from espnet2_glow_wavegan.recipe.kaldi_dir import DataError, die


def compact(value) -> str:
    """JSON without white space, floats with a dot (YAML 1.1 reads it back as it was)."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{compact(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(compact(v) for v in value) + "]"
    if isinstance(value, float) and math.isfinite(value):
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        return (mantissa if "." in mantissa else mantissa + ".0") + (e + exponent if e else "")
    if isinstance(value, str) and any(c.isspace() for c in value):
        raise DataError(f"setting {value!r} contains white space, which the recipe's command line would split")
    return json.dumps(value)


def tts_conf_options(config_file: Path, discriminator: bool = False) -> list:
    if not config_file.is_file():
        raise DataError(f"{config_file}: missing (train the wavegan_vae experiment first: recipe stage 7a)")
    config = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
    if config.get("tts") != "wavegan_vae":
        raise DataError(f"{config_file}: tts is {config.get('tts')!r}; the WaveGAN settings come from a wavegan_vae experiment")
    tts_conf = config.get("tts_conf") or {}
    generator = composed_generator_params(tts_conf.get("generator_params") or {}, quiet=True)
    options = ["--tts_conf", f"wavegan_params={compact(generator)}"]
    if discriminator:
        options += ["--tts_conf", f"discriminator_params={compact(tts_conf.get('discriminator_params') or {})}"]
    return options


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path, help="config.yaml of the wavegan_vae experiment")
    parser.add_argument("--discriminator", action="store_true", help="also its discriminator_params (joint phase)")
    args = parser.parse_args(argv)
    try:
        print(" ".join(tts_conf_options(args.config, args.discriminator)))
    except DataError as e:
        die(str(e))


if __name__ == "__main__":
    sys.exit(main())
