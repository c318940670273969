"""Shared helpers: corpora paths, a Python that runs like a user's, and the tiny models."""

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
CORPORA = REPO / "corpora"


def run_python(args, cwd, env_extra=None, timeout=600, check=True, text=True):
    """Run the project's interpreter in a clean subprocess, as a user would.

    The working directory is outside the checkout so that nothing is importable
    by accident; only the installed package (and its start-up hook) counts.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.pop("PYTHONPATH", None)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.update(env_extra or {})
    proc = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=text, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{args} exited {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-6000:]}"
        )
    return proc


@pytest.fixture
def python_run(tmp_path):
    def _run(args, **kw):
        kw.setdefault("cwd", tmp_path)
        return run_python(args, **kw)

    return _run


def make_ljspeech_data_dirs(root: Path, splits):
    """Kaldi-style data dirs from the mini LJSpeech corpus, for stock ESPnet commands.

    ``splits`` maps a dir name to a list of metadata rows (0-based indices).
    Text is the normalised column, tokenised by characters (works offline).
    Returns the token list path.
    """
    corpus = CORPORA / "mini_ljspeech" / "LJSpeech-1.1"
    rows = [line.split("|") for line in (corpus / "metadata.csv").read_text(encoding="utf-8").splitlines()]
    chars = set()
    for name, indices in splits.items():
        d = root / "data" / name
        d.mkdir(parents=True)
        picked = sorted(rows[i] for i in indices)
        (d / "wav.scp").write_text("".join(f"{u} {corpus / 'wavs' / (u + '.wav')}\n" for u, _, _ in picked))
        (d / "text").write_text("".join(f"{u} {n}\n" for u, _, n in picked), encoding="utf-8")
        (d / "utt2spk").write_text("".join(f"{u} LJ\n" for u, _, _ in picked))
        chars.update("".join(n for _, _, n in picked))
    tokens = root / "tokens.txt"
    tokens.write_text("\n".join(["<blank>", "<unk>", *sorted(c if c != " " else "<space>" for c in chars), "<sos/eos>"]) + "\n")
    return tokens


def data_args(root: Path, names=("train", "valid")):
    """--{train,valid}_data_path_and_name_and_type arguments for text + speech."""
    args = []
    for split, name in zip(("train", "valid"), names):
        args += [f"--{split}_data_path_and_name_and_type", f"{root}/data/{name}/text,text,text"]
        args += [f"--{split}_data_path_and_name_and_type", f"{root}/data/{name}/wav.scp,speech,sound"]
    return args


LJ_CONF = REPO / "egs2/ljspeech/tts1/conf/tuning"
CONF = {"ljspeech": LJ_CONF, "aishell3": REPO / "egs2/aishell3/tts1/conf/tuning"}
HOP = {"ljspeech": 256, "aishell3": 300}


def tts_conf(name: str, recipe: str = "ljspeech") -> dict:
    """``tts_conf`` of a recipe config, e.g. ``tts_conf("train_glow_wavegan_tiny.yaml")``."""
    return copy.deepcopy(yaml.safe_load((CONF[recipe] / name).read_text())["tts_conf"])


def tiny_config(model: str, decoder: str = "hifigan") -> str:
    """File name of a tiny recipe config: ``model`` wavegan_vae or glow_wavegan, ``decoder`` hifigan or istft.

    The prior's config is the same for both decoders (its WaveGAN settings come from the WaveGAN's).
    """
    return f"train_{model}_tiny.yaml" if decoder == "hifigan" or model == "glow_wavegan" else f"train_{model}_{decoder}_tiny.yaml"


def merged(base: dict, overrides: dict) -> dict:
    """``base`` with ``overrides`` merged in, nested dicts key by key (e.g. ``decoder={"conf": {...}}``)."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def tiny_generator_params(recipe: str = "ljspeech", decoder: str = "hifigan", decoder_conf=None, **overrides) -> dict:
    """``generator_params`` of the recipe's tiny WaveGAN config (``decoder`` hifigan or istft), with
    top-level ``overrides`` and the decoder's settings overridden by ``decoder_conf``."""
    params = merged(tts_conf(tiny_config("wavegan_vae", decoder), recipe)["generator_params"], overrides)
    return merged(params, {"decoder": {"conf": decoder_conf}}) if decoder_conf else params


def tiny_wavegan_vae(recipe: str = "ljspeech", decoder: str = "hifigan", generator_params=None, **overrides):
    """The recipe's tiny ``wavegan_vae`` (seed 0; ``decoder`` hifigan or istft), generator settings
    overridden (as :func:`tiny_generator_params`) or given whole (``generator_params``)."""
    from espnet2_glow_wavegan.wavegan.wavegan_vae import WaveGANVAE

    conf = tts_conf(tiny_config("wavegan_vae", decoder), recipe)
    conf["generator_params"] = generator_params or tiny_generator_params(recipe, decoder, **overrides)
    torch.manual_seed(0)
    return WaveGANVAE(idim=20, odim=1, **conf)


def wavegan_vae_settings(recipe: str = "ljspeech", decoder: str = "hifigan", training_phase: str = "prior") -> dict:
    """What the recipe's stage 7c passes a glow_wavegan from its tiny WaveGAN: wavegan_params (and
    for the joint phase, whose discriminator starts from the WaveGAN's, discriminator_params)."""
    vae = tts_conf(tiny_config("wavegan_vae", decoder), recipe)
    settings = dict(wavegan_params=vae["generator_params"])
    if training_phase == "joint":
        settings["discriminator_params"] = vae["discriminator_params"]
    return settings


def tiny_glow_wavegan(recipe: str = "ljspeech", prior_params=None, decoder: str = "hifigan", **overrides):
    """The recipe's tiny ``glow_wavegan`` (seed 0; ``decoder`` hifigan or istft), trained from
    waveform batches unless ``speech_input`` says otherwise, over the WaveGAN of
    :func:`tiny_wavegan_vae`: its settings as the recipe's stage 7c passes them, its weights as
    ``--init_param`` loads them (so training passes the WaveGAN check)."""
    from espnet2_glow_wavegan.glow.glow_wavegan import GlowWaveGAN

    conf = tts_conf(tiny_config("glow_wavegan", decoder), recipe)
    conf.update(dict(speech_input="waveform"), **overrides)
    for key, value in wavegan_vae_settings(recipe, decoder, conf.get("training_phase")).items():
        conf.setdefault(key, value)
    conf["prior_params"] = merged(conf["prior_params"], prior_params or {})
    torch.manual_seed(0)
    model = GlowWaveGAN(idim=20, odim=1, **conf)
    vae = tiny_wavegan_vae(recipe, decoder, generator_params=conf["wavegan_params"])
    model.generator.wavegan.load_state_dict(vae.generator.state_dict())
    return model


def wavegan_settings(wavegan_exp: Path, joint: bool = False) -> list:
    """``--tts_conf wavegan_params=...`` (and discriminator_params for ``joint``) from a wavegan_vae
    experiment, for a stock ``gan_tts_train`` of glow_wavegan, as the recipe's stage 7c passes them."""
    from espnet2_glow_wavegan.recipe.vae_settings import tts_conf_options

    return tts_conf_options(wavegan_exp / "config.yaml", discriminator=joint)


def mel_losses_overfitting(model, data, steps: int = 150):
    """Train both GAN turns of ``model`` on one batch (HiFi-GAN's AdamW settings); the mel loss per step."""
    optim_g = torch.optim.AdamW(model.generator.parameters(), lr=2e-3, betas=(0.8, 0.99))
    optim_d = torch.optim.AdamW(model.discriminator.parameters(), lr=2e-3, betas=(0.8, 0.99))
    mel_losses = []
    for _ in range(steps):
        for forward_generator, optim in [(False, optim_d), (True, optim_g)]:
            out = model(**data, forward_generator=forward_generator)
            optim.zero_grad()
            out["loss"].backward()
            optim.step()
        mel_losses.append(float(out["stats"]["generator_mel_loss"]))
    return mel_losses


def collect_stats(root: Path, common_args):
    """Stock ``gan_tts_train --collect_stats``; returns the shape-file arguments for training."""
    keys = root / "keys"
    keys.mkdir(exist_ok=True)
    for name in ("train", "valid"):
        lines = (root / "data" / name / "wav.scp").read_text().splitlines()
        (keys / name).write_text("".join(line.split()[0] + "\n" for line in lines))
    run_python(["-m", "espnet2.bin.gan_tts_train", *common_args, "--collect_stats", "true",
                "--train_shape_file", str(keys / "train"), "--valid_shape_file", str(keys / "valid"),
                "--output_dir", str(root / "stats")], cwd=root)
    shapes = []
    for split in ("train", "valid"):
        for name in ("text_shape", "speech_shape"):
            shapes += [f"--{split}_shape_file", str(root / "stats" / split / name)]
    return shapes


@pytest.fixture(scope="session")
def lj_wavegan(tmp_path_factory):
    """Stats + 1 epoch + resumed 2nd epoch of the tiny WaveGAN, with stock gan_tts_train."""
    root = tmp_path_factory.mktemp("wavegan_espnet")
    tokens = make_ljspeech_data_dirs(root, {"train": range(0, 8), "valid": range(8, 10)})
    common = ["--config", str(LJ_CONF / "train_wavegan_vae_tiny.yaml"), "--use_preprocessor", "true", "--token_type", "char",
              "--token_list", str(tokens), *data_args(root)]
    shapes = collect_stats(root, common)
    exp = root / "exp"
    first = run_python(["-m", "espnet2.bin.gan_tts_train", *common, *shapes, "--output_dir", str(exp),
                        "--max_epoch", "1", "--resume", "true"], cwd=root)
    resumed = run_python(["-m", "espnet2.bin.gan_tts_train", *common, *shapes, "--output_dir", str(exp),
                          "--max_epoch", "2", "--resume", "true"], cwd=root)
    return root, exp, first, resumed
