"""Files from before the composed configuration: flat settings are converted, with a notice.

Up to version 0.1 the WaveGAN's settings (``generator_params`` of ``wavegan_vae``,
``wavegan_params`` of ``glow_wavegan``) and the prior's (``prior_params``) were flat keys:
``encoder_channels``, ``decoder_type``, ``istft_layers``, ``mel_params``, ``text_encoder_blocks``,
``duration_predictor_channels``, ``flow_blocks``, ... Configs, experiments' ``config.yaml``,
packed models and the WaveGAN architecture records inside checkpoints of that format still
load: their settings are converted to the composed format (``encoder: {type, conf}``,
``decoder: {type, conf}``, ``text_encoder_conf``, ``duration_predictor_conf``, ``flow_conf``)
with a one-line notice. The weights' names did not change.

    python -m espnet2_glow_wavegan.legacy OLD.yaml > NEW.yaml   # convert a config file for good
"""

import argparse
import logging
import math
import sys
from typing import Any, Dict

FLAT_ENCODER = {
    "encoder_channels": "channels", "encoder_max_channels": "max_channels", "encoder_kernel_size": "kernel_size",
    "encoder_downsample_scales": "downsample_scales", "encoder_resblock_kernel_size": "resblock_kernel_size",
    "encoder_resblock_dilations": "resblock_dilations",
}
FLAT_DECODERS = {
    "hifigan": {
        "decoder_channels": "channels", "decoder_kernel_size": "kernel_size", "decoder_upsample_scales": "upsample_scales",
        "decoder_upsample_kernel_sizes": "upsample_kernel_sizes", "decoder_resblock_kernel_sizes": "resblock_kernel_sizes",
        "decoder_resblock_dilations": "resblock_dilations",
    },
    "istft": {"decoder_channels": "channels", "istft_intermediate_channels": "intermediate_channels",
              "istft_layers": "layers", "istft_n_fft": "n_fft"},
}
# ESPnet's LogMelFbank defaults, which flat mel_params left to it.
FLAT_MEL_DEFAULTS = {"fs": 16000, "n_fft": 1024, "win_length": None, "window": "hann", "fmin": 80, "fmax": 7600,
                     "htk": False, "log_base": 10.0}
FLAT_GENERATOR_KEYS = (set(FLAT_ENCODER) | set(FLAT_DECODERS["hifigan"]) | set(FLAT_DECODERS["istft"])
                       | {"decoder_type", "encoder_type", "mel_params", "use_weight_norm"})

FLAT_TEXT_ENCODER = {
    "text_encoder_attention_heads": "attention_heads", "text_encoder_blocks": "blocks",
    "text_encoder_positionwise_layer_type": "positionwise_layer_type",
    "text_encoder_positionwise_conv_kernel_size": "positionwise_conv_kernel_size",
    "text_encoder_positional_encoding_layer_type": "positional_encoding_layer_type",
    "text_encoder_self_attention_layer_type": "self_attention_layer_type",
    "text_encoder_activation_type": "activation_type", "text_encoder_normalize_before": "normalize_before",
    "text_encoder_dropout_rate": "dropout_rate", "text_encoder_positional_dropout_rate": "positional_dropout_rate",
    "text_encoder_attention_dropout_rate": "attention_dropout_rate",
    "use_conformer_conv_in_text_encoder": "use_conformer_conv",
    "text_encoder_conformer_kernel_size": "conformer_kernel_size",
}
FLAT_DURATION_PREDICTOR = {"duration_predictor_layers": "n_layers", "duration_predictor_channels": "n_chans",
                           "duration_predictor_kernel_size": "kernel_size",
                           "duration_predictor_dropout_rate": "dropout_rate"}
FLAT_FLOW = {"flow_blocks": "blocks", "flow_squeeze_factor": "squeeze_factor", "flow_group_size": "group_size",
             "flow_hidden_channels": "hidden_channels", "flow_kernel_size": "kernel_size",
             "flow_dilation_rate": "dilation_rate", "flow_layers": "layers", "flow_dropout_rate": "dropout_rate",
             "use_weight_norm_in_flow": "use_weight_norm"}
FLAT_PRIOR_KEYS = (set(FLAT_TEXT_ENCODER) | set(FLAT_DURATION_PREDICTOR) | set(FLAT_FLOW)
                   | {"hidden_channels", "text_encoder_ffn_expand"})

_noticed = set()


def notice(what: str) -> None:
    if what not in _noticed:
        _noticed.add(what)
        logging.warning(f"espnet2_glow_wavegan: {what} in the flat format of version 0.1, converted to the composed "
                        "one; `python -m espnet2_glow_wavegan.legacy CONFIG` rewrites a config file")


def composed_generator_params(params: Dict[str, Any], what: str = "WaveGAN settings", quiet: bool = False) -> Dict[str, Any]:
    """The composed form of WaveGAN settings (returned as they are when they are not flat)."""
    if not FLAT_GENERATOR_KEYS & set(params):
        return params
    if not quiet:
        notice(what)
    flat = dict(params)
    use_weight_norm = flat.pop("use_weight_norm", True)
    encoder_type, decoder_type = flat.pop("encoder_type", "learned"), flat.pop("decoder_type", "hifigan")
    encoder = {new: flat.pop(old) for old, new in FLAT_ENCODER.items() if old in flat}
    mel_params = flat.pop("mel_params", {})
    if encoder_type == "mel":  # the hop was the product of the (unused) encoder strides
        mel = {**FLAT_MEL_DEFAULTS, **mel_params}
        mel.pop("n_mels", None)  # = latent_dim, as the flat format required
        encoder = {"hop_length": mel.pop("hop_length", math.prod(encoder.get("downsample_scales", [2, 2, 8, 8]))), **mel}
    else:
        encoder["use_weight_norm"] = use_weight_norm
    decoder = {new: flat[old] for old, new in FLAT_DECODERS[decoder_type].items() if old in flat}
    for old in set(FLAT_DECODERS["hifigan"]) | set(FLAT_DECODERS["istft"]):
        flat.pop(old, None)
    if decoder_type == "hifigan":
        decoder["use_weight_norm"] = use_weight_norm
    return dict(flat, encoder=dict(type=encoder_type, conf=encoder), decoder=dict(type=decoder_type, conf=decoder))


def composed_prior_params(params: Dict[str, Any], what: str = "prior_params") -> Dict[str, Any]:
    """The composed form of the prior's settings (returned as they are when they are not flat)."""
    if not FLAT_PRIOR_KEYS & set(params):
        return params
    notice(what)
    flat = dict(params)
    hidden, expand = flat.pop("hidden_channels", 192), flat.pop("text_encoder_ffn_expand", 4)
    text_encoder = {"attention_dim": hidden, "linear_units": hidden * expand}
    text_encoder.update({new: flat.pop(old) for old, new in FLAT_TEXT_ENCODER.items() if old in flat})
    duration = {new: flat.pop(old) for old, new in FLAT_DURATION_PREDICTOR.items() if old in flat}
    flow = {new: flat.pop(old) for old, new in FLAT_FLOW.items() if old in flat}
    return dict(flat, text_encoder_conf=text_encoder, duration_predictor_conf=duration, flow_conf=flow)


def composed_config(config: Dict[str, Any]) -> Dict[str, Any]:
    """A whole training config (or an experiment's config.yaml) in the composed format."""
    config = dict(config)
    tts_conf = dict(config.get("tts_conf") or {})
    for key in ("generator_params", "wavegan_params"):
        if key in tts_conf:
            tts_conf[key] = composed_generator_params(tts_conf[key], key, quiet=True)
    if "prior_params" in tts_conf:
        tts_conf["prior_params"] = composed_prior_params(tts_conf["prior_params"])
    if config.get("tts") == "glow_wavegan" and tts_conf.get("training_phase", "prior") == "prior":
        tts_conf.pop("discriminator_params", None)  # the prior phase has none
    config["tts_conf"] = tts_conf
    return config


def main(argv=None):
    import yaml

    parser = argparse.ArgumentParser(description="Print a config of version 0.1 in the composed format.")
    parser.add_argument("config")
    args = parser.parse_args(argv)
    with open(args.config, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    yaml.safe_dump(composed_config(config), sys.stdout, sort_keys=False, allow_unicode=True)


if __name__ == "__main__":
    main()
