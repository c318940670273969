"""The recipes' configs: composed by component, nothing copied by hand, no drift between recipes, old files load."""

import argparse
import json

import pytest
import torch
import yaml

from conftest import CONF, tts_conf

RECIPES = ("ljspeech", "aishell3")
# What a corpus decides: its sampling rate, its frame shift and the STFT and mel settings that go
# with it, its speakers, and how much audio a batch holds. Everything else is the experiment's
# choice and must be the same in both recipes.
CORPUS_KEYS = {"sampling_rate", "fs", "hop_length", "n_fft", "win_length", "downsample_scales", "upsample_scales",
               "upsample_kernel_sizes", "decoder_upsample_scales", "decoder_upsample_kernel_sizes", "spks",
               "spk_embed_dim", "global_channels", "batch_bins"}


def leaves(tree, prefix=""):
    if isinstance(tree, dict):
        return {k: v for key, value in tree.items() for k, v in leaves(value, f"{prefix}{key}.").items()}
    return {prefix[:-1]: tree}


def config_names(recipe):
    return sorted(p.name for p in CONF[recipe].glob("*.yaml"))


def load(recipe, name):
    return yaml.safe_load((CONF[recipe] / name).read_text())


def test_both_recipes_have_the_same_configs():
    assert config_names("ljspeech") == config_names("aishell3")


@pytest.mark.parametrize("name", config_names("ljspeech"))
def test_a_config_and_its_aishell3_counterpart_differ_only_in_corpus_keys(name):
    """A fix made in one recipe's config and forgotten in the other's fails here."""
    lj, a3 = leaves(load("ljspeech", name)), leaves(load("aishell3", name))
    differing = sorted(k for k in set(lj) | set(a3) if lj.get(k) != a3.get(k))
    drifted = [k for k in differing if k.split(".")[-1] not in CORPUS_KEYS]
    assert not drifted, {k: (lj.get(k), a3.get(k)) for k in drifted}


@pytest.mark.parametrize("recipe", RECIPES)
def test_glow_configs_repeat_no_wavegan_settings_and_prior_phase_configs_have_no_discriminator(recipe):
    for name in config_names(recipe):
        config = load(recipe, name)
        if config["tts"] != "glow_wavegan":
            continue
        assert "wavegan_params" not in config["tts_conf"], name
        if config["tts_conf"].get("training_phase", "prior") == "prior":
            assert "discriminator_params" not in config["tts_conf"], name


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_config_builds_its_model(recipe):
    """Each WaveGAN config, and each prior config over the WaveGAN settings stage 7c would give it."""
    from espnet2_glow_wavegan.glow.glow_wavegan import GlowWaveGAN
    from espnet2_glow_wavegan.wavegan.wavegan_vae import WaveGANVAE

    vaes = {"train_glow_wavegan_tiny.yaml": "train_wavegan_vae_tiny.yaml", "train_glow_mel_tiny.yaml": "train_inner_gan_tiny.yaml",
            "train_glow_wavegan_cpu.yaml": "train_wavegan_vae_cpu.yaml"}
    for name, vae in vaes.items():
        generator = WaveGANVAE(idim=10, odim=1, **tts_conf(vae, recipe)).generator
        conf = dict(tts_conf(name, recipe), wavegan_params=tts_conf(vae, recipe)["generator_params"])
        model = GlowWaveGAN(idim=10, odim=1, **conf)
        assert model.generator.wavegan.architecture == generator.architecture


def test_stage_7c_hands_the_wavegan_settings_over_through_espnets_parser(tmp_path):
    """vae_settings' words, parsed as gan_tts_train parses --tts_conf, give back the experiment's settings."""
    from espnet2.utils.nested_dict_action import NestedDictAction

    from espnet2_glow_wavegan.recipe.vae_settings import tts_conf_options

    experiment = load("ljspeech", "train_wavegan_vae_istft.yaml")
    experiment["tts_conf"]["generator_params"]["decoder"]["conf"]["tiny_float"] = 1e-09  # YAML 1.1 needs the dot
    experiment["tts_conf"]["discriminator_params"]["period_discriminator_params"]["nonlinear_activation_params"] = {
        "negative_slope": 0.1}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(experiment))
    words = tts_conf_options(tmp_path / "config.yaml", discriminator=True)
    assert not any(c.isspace() for word in words for c in word)  # the recipe splits its arguments on white space
    parser = argparse.ArgumentParser()
    parser.add_argument("--tts_conf", action=NestedDictAction, default={"training_phase": "joint"})
    tts = parser.parse_args(words).tts_conf
    assert tts["wavegan_params"] == experiment["tts_conf"]["generator_params"]
    assert tts["discriminator_params"] == experiment["tts_conf"]["discriminator_params"]
    assert tts["training_phase"] == "joint"


def test_glow_wavegan_without_its_wavegan_settings_says_what_to_give():
    from espnet2_glow_wavegan.glow.glow_wavegan import GlowWaveGAN

    with pytest.raises(ValueError, match=r"needs its settings: give tts_conf.wavegan_params.*vae_settings"):
        GlowWaveGAN(idim=10, odim=1, **tts_conf("train_glow_wavegan_tiny.yaml"))


# The tiny LJSpeech WaveGAN and prior as version 0.1 wrote them (flat settings).
FLAT_GENERATOR = {
    "latent_dim": 16, "segment_size": 16, "encoder_channels": 8, "encoder_max_channels": 32, "encoder_kernel_size": 7,
    "encoder_downsample_scales": [4, 8, 8], "encoder_resblock_kernel_size": 3, "encoder_resblock_dilations": [1, 3],
    "decoder_channels": 32, "decoder_kernel_size": 7, "decoder_upsample_scales": [8, 8, 4],
    "decoder_upsample_kernel_sizes": [16, 16, 8], "decoder_resblock_kernel_sizes": [3], "decoder_resblock_dilations": [[1, 3]],
    "use_weight_norm": True, "spks": None, "spk_embed_dim": None, "global_channels": -1, "encode_segment_window": True,
}
FLAT_PRIOR = {
    "hidden_channels": 32, "text_encoder_attention_heads": 2, "text_encoder_ffn_expand": 2, "text_encoder_blocks": 2,
    "text_encoder_activation_type": "relu", "mean_only": True, "duration_predictor_layers": 2,
    "duration_predictor_channels": 32, "duration_predictor_kernel_size": 3, "flow_blocks": 2, "flow_squeeze_factor": 2,
    "flow_group_size": 4, "flow_hidden_channels": 32, "flow_kernel_size": 5, "flow_layers": 2,
    "spks": None, "spk_embed_dim": None, "global_channels": -1,
}


def test_flat_settings_of_version_0_1_build_the_same_model_with_a_notice(caplog):
    """Old configs, config.yaml files and packed models: the same weights, the same waveform."""
    from espnet2_glow_wavegan import legacy
    from espnet2_glow_wavegan.glow.glow_wavegan import GlowWaveGAN

    legacy._noticed.clear()
    generator = tts_conf("train_wavegan_vae_tiny.yaml")["generator_params"]
    # Version 0.1 had no posterior initialisation: PyTorch's default, as the composed settings without it.
    for key in ("initial_mean_std", "initial_log_std"):
        generator["encoder"]["conf"].pop(key)
    composed = dict(tts_conf("train_glow_wavegan_tiny.yaml"), wavegan_params=generator)
    flat = dict(composed, wavegan_params=FLAT_GENERATOR, prior_params=FLAT_PRIOR)
    torch.manual_seed(0)
    new = GlowWaveGAN(idim=20, odim=1, **composed).eval()
    torch.manual_seed(0)
    old = GlowWaveGAN(idim=20, odim=1, **flat).eval()
    assert "flat format of version 0.1" in caplog.text and "espnet2_glow_wavegan.legacy" in caplog.text
    new_state, old_state = new.state_dict(), old.state_dict()
    assert list(new_state) == list(old_state)
    assert all(torch.equal(new_state[k], old_state[k]) for k in new_state)
    text, durations = torch.randint(2, 20, (9,)), torch.full((9,), 3)
    with torch.no_grad():
        assert torch.equal(new.inference(text, durations=durations, noise_scale=0.0)["wav"],
                           old.inference(text, durations=durations, noise_scale=0.0)["wav"])


def test_an_architecture_record_of_version_0_1_reads_as_the_composed_settings():
    """A WaveGAN checkpoint written before: its flat record matches the composed settings it was trained as."""
    from espnet2_glow_wavegan.wavegan.generator import ARCHITECTURE_RECORD_SIZE, WaveGANGenerator

    generator = WaveGANGenerator(**tts_conf("train_wavegan_vae_tiny.yaml")["generator_params"])
    old_record = {k: v for k, v in FLAT_GENERATOR.items() if k not in ("segment_size", "encode_segment_window")}
    data = json.dumps(dict(old_record, decoder_type="hifigan", encoder_type="learned", mel_params={}), sort_keys=True).encode()
    record = torch.zeros(ARCHITECTURE_RECORD_SIZE)
    record[: len(data)] = torch.tensor(list(data), dtype=torch.float32)
    generator.trained_architecture.copy_(record)
    assert generator.recorded_architecture() == generator.architecture


def test_the_legacy_command_rewrites_an_old_config(tmp_path, capsys):
    from espnet2_glow_wavegan import legacy

    old = dict(load("ljspeech", "train_glow_wavegan_tiny.yaml"))
    old["tts_conf"] = dict(old["tts_conf"], wavegan_params=FLAT_GENERATOR, prior_params=FLAT_PRIOR,
                           discriminator_params={"scales": 1})
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(old))
    legacy.main([str(tmp_path / "old.yaml")])
    new = yaml.safe_load(capsys.readouterr().out)
    assert new["tts_conf"]["prior_params"]["flow_conf"]["blocks"] == 2
    assert new["tts_conf"]["prior_params"]["text_encoder_conf"] == dict(
        attention_dim=32, linear_units=64, attention_heads=2, blocks=2, activation_type="relu")
    assert new["tts_conf"]["wavegan_params"]["decoder"] == tts_conf("train_wavegan_vae_tiny.yaml")["generator_params"]["decoder"]
    assert "discriminator_params" not in new["tts_conf"]  # the prior phase has none
