"""encoder type mel: the paper's inner-GAN (mel vocoder) and Glow-TTS over the mel, with no new model class."""

import pytest
import torch
from espnet2.tts.feats_extract.log_mel_fbank import LogMelFbank

from conftest import HOP, tts_conf
from espnet2_glow_wavegan.glow.glow_wavegan import GlowWaveGAN
from espnet2_glow_wavegan.wavegan.wavegan_vae import WaveGANVAE


def inner_gan(recipe="ljspeech"):
    torch.manual_seed(0)
    return WaveGANVAE(idim=20, odim=1, **tts_conf("train_inner_gan_tiny.yaml", recipe))


@pytest.mark.parametrize("recipe", ["ljspeech", "aishell3"])
def test_the_inner_gan_reads_espnets_log_mel(recipe):
    """What the decoder reads is ESPnet's LogMelFbank output for the config's settings: a stock mel
    vocoder's input, frame for frame, for each item of a padded batch as for the item alone."""
    model = inner_gan(recipe).eval()
    gen = model.generator
    mel = tts_conf("train_inner_gan_tiny.yaml", recipe)["generator_params"]["encoder"]["conf"]  # hop_length included
    fbank = LogMelFbank(**mel, n_mels=80)
    lengths = torch.tensor([HOP[recipe] * 40 + 17, HOP[recipe] * 23])
    torch.manual_seed(1)
    speech = torch.randn(2, int(lengths.max())) * 0.1
    with torch.no_grad():
        z, mean, _, mask = gen.encode(speech, lengths)
        for b in range(2):
            mel, mel_lengths = fbank(speech[b : b + 1, : lengths[b]], lengths[b : b + 1])
            n = int(mel_lengths[0])
            assert n == int(lengths[b]) // HOP[recipe] + 1 == int(mask[b].sum())
            torch.testing.assert_close(z[b, :, :n], mel[0].T, atol=1e-5, rtol=0)  # z is the mel, no noise
    assert gen.latent_dim == 80 and gen.encoder_type == "mel"


def test_the_inner_gan_trains_as_a_mel_vocoder_without_kl():
    model = inner_gan()
    torch.manual_seed(0)
    data = dict(text=torch.ones(2, 3, dtype=torch.long), text_lengths=torch.tensor([3, 3]),
                speech=torch.randn(2, 256 * 40) * 0.1, speech_lengths=torch.tensor([256 * 40, 256 * 30]))
    model(**data, forward_generator=False)
    out = model(**data, forward_generator=True)
    out["loss"].backward()
    assert "generator_kl_loss" not in out["stats"] and torch.isfinite(out["loss"])
    # forward() touches every parameter (zero_touching), so a gradient that merely exists proves nothing:
    # the decoder's must carry the losses.
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.generator.decoder.parameters())
    assert not list(model.generator.encoder.parameters())  # a fixed analysis: nothing to learn


def test_glow_tts_over_the_mel_trains_from_stored_mels():
    """Glow-TTS + inner-GAN: the prior models the mel; the extraction stage stores it like a latent."""
    vae = inner_gan()
    conf = tts_conf("train_glow_mel_tiny.yaml")
    conf["wavegan_params"] = tts_conf("train_inner_gan_tiny.yaml")["generator_params"]  # as stage 7c passes them
    torch.manual_seed(0)
    model = GlowWaveGAN(idim=20, odim=1, **conf)
    model.generator.wavegan.load_state_dict(vae.generator.state_dict())
    torch.manual_seed(1)
    speech, lengths = torch.randn(2, 256 * 40) * 0.1, torch.tensor([256 * 40, 256 * 31])
    with torch.no_grad():
        mean, log_std, mask = vae.generator.encoder(speech, lengths)
    stats = torch.cat([mean, log_std], dim=1).transpose(1, 2)
    out = model(text=torch.randint(2, 20, (2, 12)), text_lengths=torch.tensor([12, 9]), speech=stats,
                speech_lengths=mask.sum(dim=(1, 2)).long())
    out["loss"].backward()
    grad = model.generator.prior.flow.flows[0].log_scale.grad
    assert torch.isfinite(out["loss"]) and grad is not None and grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        wav = model.inference(torch.randint(2, 20, (8,)), durations=torch.full((8,), 3))["wav"]
    assert wav.numel() == 24 * 256
