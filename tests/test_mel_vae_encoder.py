"""encoder type mel_vae: a learned, KL-regularised posterior over log-mel frames (the inner-GAN's head start,
with a latent of the paper's kind for the prior)."""

import pytest
import soundfile as sf
import torch

from conftest import CORPORA, mel_losses_overfitting, tiny_generator_params, tiny_glow_wavegan, tiny_wavegan_vae

LJ_WAV = CORPORA / "mini_ljspeech/LJSpeech-1.1/wavs/LJ001-0001.wav"
MEL_VAE = {"type": "mel_vae", "conf": {"channels": 32, "blocks": 1, "initial_mean_std": 1.0, "initial_log_std": -1.0}}


def mel_vae_params(**overrides):
    """The tiny LJSpeech WaveGAN's settings with the mel_vae encoder in the place of the learned one."""
    return dict(tiny_generator_params(**overrides), encoder=MEL_VAE)


def speech_batch():
    wav, _ = sf.read(LJ_WAV, dtype="float32")
    wav = torch.from_numpy(wav)
    lengths = torch.tensor([256 * 60 + 100, 256 * 41])
    speech = torch.zeros(2, int(lengths.max()))
    speech[0], speech[1, : lengths[1]] = wav[: lengths[0]], wav[3000 : 3000 + int(lengths[1])]
    return speech, lengths


def test_frames_padding_and_a_readable_start():
    """ESPnet's mel frame count, each item of a padded batch as alone, and (with the initial scale) a mean that
    varies more than the sampled noise on real speech: the decoder can read z from the first step."""
    model = tiny_wavegan_vae(generator_params=mel_vae_params())
    encoder = model.generator.encoder
    speech, lengths = speech_batch()
    with torch.no_grad():
        mean, log_std, mask = encoder(speech, lengths)
        alone = encoder(speech[1:, : lengths[1]], lengths[1:])
    assert mean.shape == (2, model.generator.latent_dim, 61) and mask.sum(dim=(1, 2)).tolist() == [61, 42]
    scale = alone[0].pow(2).mean().sqrt()
    assert (mean[1:, :, :42] - alone[0]).abs().max() < 1e-5 * scale and torch.all(mean[1, :, 42:] == 0)
    assert mean[0].std(dim=-1).median() > log_std[0].exp().median()
    assert abs(float(log_std[0].median()) + 1.0) < 0.1
    # Training samples z (it is not a fixed analysis), and the KL term regularises it.
    assert not encoder.deterministic
    out = model(text=torch.ones(2, 3, dtype=torch.long), text_lengths=torch.tensor([3, 3]), speech=speech,
                speech_lengths=lengths, forward_generator=True)
    assert out["stats"]["generator_kl_loss"] > 0


def test_training_segments_equal_the_whole_utterance_posterior():
    model = tiny_wavegan_vae(generator_params=mel_vae_params())
    speech, lengths = speech_batch()
    starts = torch.tensor([20, 0])
    with torch.no_grad():
        mean, log_std, mask = model.generator.segment_posterior(speech, lengths, starts)
        whole, _, _ = model.generator.encoder(speech, lengths)
    size = model.generator.segment_size
    assert torch.equal(mean[0], whole[0, :, 20 : 20 + size]) and torch.equal(mean[1], whole[1, :, :size])


def test_a_mel_vae_wavegan_learns_an_overfit_batch():
    frames = 24
    model = tiny_wavegan_vae(generator_params=mel_vae_params(segment_size=frames))
    wav, _ = sf.read(LJ_WAV, dtype="float32")
    speech = torch.from_numpy(wav[5000 : 5000 + 256 * frames])[None]
    data = dict(text=torch.ones(1, 3, dtype=torch.long), text_lengths=torch.tensor([3]), speech=speech,
                speech_lengths=torch.tensor([speech.size(1)]))
    torch.manual_seed(0)
    mel_losses = mel_losses_overfitting(model, data, steps=100)
    start, end = sum(mel_losses[:5]) / 5, sum(mel_losses[-10:]) / 10
    assert end < 0.5 * start, (start, end)
    grads = [p.grad for p in model.generator.encoder.parameters()]
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0  # the encoder learns too


@pytest.mark.parametrize("speech_input", ["waveform", "posterior_stats"])
def test_a_prior_models_the_mel_vae_latent(speech_input):
    """glow_wavegan over a mel_vae WaveGAN: its settings pass as stage 7c passes them; the prior trains."""
    from test_glow_wavegan import batch, stored_posterior

    model = tiny_glow_wavegan(wavegan_params=mel_vae_params(), speech_input=speech_input)
    assert model.generator.wavegan.encoder_type == "mel_vae"
    data = batch()
    if speech_input == "posterior_stats":
        data["speech"], data["speech_lengths"] = stored_posterior(model, data["speech"], data["speech_lengths"])
    out = model(**data, forward_generator=True)
    out["loss"].backward()
    grads = [p.grad for p in model.generator.prior.parameters() if p.grad is not None]
    assert torch.isfinite(out["loss"]) and sum(g.abs().sum() for g in grads) > 0
