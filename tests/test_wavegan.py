"""WaveGAN VAE (``wavegan_vae``): shapes, gradients, GAN turns, overfitting, copy synthesis."""


import pytest
import soundfile as sf
import torch
from espnet2.tts.feats_extract.log_mel_fbank import LogMelFbank

from conftest import CORPORA, mel_losses_overfitting, tiny_wavegan_vae

LJ_WAV = CORPORA / "mini_ljspeech/LJSpeech-1.1/wavs/LJ001-0001.wav"
RECIPE = {256: "ljspeech", 300: "aishell3"}


def batch(speech, lengths):
    text = torch.ones(speech.size(0), 3, dtype=torch.long)
    return dict(text=text, text_lengths=torch.full((speech.size(0),), 3), speech=speech, speech_lengths=lengths)


@pytest.mark.parametrize("hop,fs,n_fft,win", [(256, 22050, 1024, None), (300, 24000, 2048, 1200)])
def test_latent_frames_match_espnet_mel_frames(hop, fs, n_fft, win):
    torch.manual_seed(0)
    model = tiny_wavegan_vae(RECIPE[hop])
    assert model.generator.upsample_factor == hop
    lengths = torch.tensor([hop * 40 + 17, hop * 33, hop * 20 + hop - 1])
    speech = torch.randn(3, int(lengths.max())) * 0.1
    mel, mel_lengths = LogMelFbank(fs=fs, n_fft=n_fft, win_length=win, hop_length=hop)(speech, lengths)
    z, mean, log_std, mask = model.generator.encode(speech, lengths)
    latent_dim = model.generator.latent_dim
    assert z.shape == mean.shape == log_std.shape == (3, latent_dim, mel.size(1))
    assert mask.sum(dim=(1, 2)).long().tolist() == mel_lengths.tolist()
    assert torch.all(z * (1 - mask) == 0)
    # The decoder maps every frame back to exactly hop samples.
    assert model.generator.decode(z).shape == (3, 1, mel.size(1) * hop)


def test_gradient_reaches_encoder_through_reparameterisation():
    torch.manual_seed(0)
    model = tiny_wavegan_vae()
    speech = torch.randn(2, 256 * 24) * 0.1
    lengths = torch.tensor([256 * 24, 256 * 20])
    z1, mean, _, _ = model.generator.encode(speech, lengths, sample=True)
    z2, _, _, _ = model.generator.encode(speech, lengths, sample=True)
    assert not torch.allclose(z1, z2) and not torch.allclose(z1, mean)
    out = model(**batch(speech, lengths), forward_generator=True)
    out["loss"].backward()
    for name, module in [("first", model.generator.encoder.input_conv), ("last", model.generator.encoder.output_conv[1])]:
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads), name


def test_each_turn_updates_only_its_own_network():
    """As ESPnet's GANTrainer: optimiser 0 over generator, optimiser 1 over discriminator."""
    torch.manual_seed(0)
    model = tiny_wavegan_vae()
    optim_g = torch.optim.AdamW(model.generator.parameters(), lr=1e-3)
    optim_d = torch.optim.AdamW(model.discriminator.parameters(), lr=1e-3, weight_decay=0.0)  # as the configs
    speech = torch.randn(2, 256 * 24) * 0.1
    data = batch(speech, torch.tensor([256 * 24, 256 * 22]))

    def snapshot(module):
        return [p.detach().clone() for p in module.parameters()]

    def same(module, snap):
        return all(torch.equal(p, s) for p, s in zip(module.parameters(), snap))

    g0, d0 = snapshot(model.generator), snapshot(model.discriminator)
    out = model(**data, forward_generator=False)
    assert out["optim_idx"] == 1
    optim_d.zero_grad()
    optim_g.zero_grad()
    out["loss"].backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.generator.parameters())
    optim_d.step()
    assert same(model.generator, g0) and not same(model.discriminator, d0)

    d1 = snapshot(model.discriminator)
    out = model(**data, forward_generator=True)  # reuses the cached generator output
    assert out["optim_idx"] == 0 and model._cache is None
    optim_g.zero_grad()
    out["loss"].backward()
    optim_g.step()
    assert same(model.discriminator, d1) and not same(model.generator, g0)


def test_overfitting_one_batch_lowers_mel_loss():
    torch.manual_seed(0)
    frames = 24
    model = tiny_wavegan_vae(segment_size=frames)  # one fixed segment: the whole clip
    wav, _ = sf.read(LJ_WAV, dtype="float32")
    speech = torch.from_numpy(wav[5000 : 5000 + 256 * frames])[None]
    data = batch(speech, torch.tensor([speech.size(1)]))
    mel_losses = mel_losses_overfitting(model, data)
    start, end = sum(mel_losses[:5]) / 5, sum(mel_losses[-10:]) / 10
    # Measured: ~87 -> ~22 (x0.25) in 150 steps; 0.4 leaves margin for seeds/platforms.
    assert end < 0.4 * start, (start, end)


def test_speaker_conditioning_of_decoder():
    torch.manual_seed(0)
    model = tiny_wavegan_vae(spks=3, spk_embed_dim=8, global_channels=16).eval()
    assert model.spks == 3 and model.spk_embed_dim == 8
    speech = torch.randn(256 * 10) * 0.1
    spemb = torch.randn(8)
    with torch.no_grad():
        a = model.inference(speech=speech, sids=torch.tensor([0]), spembs=spemb)["wav"]
        b = model.inference(speech=speech, sids=torch.tensor([2]), spembs=spemb)["wav"]
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="sids"):
        model.inference(speech=speech, spembs=spemb)


def test_copy_synthesis_and_text_only_error():
    torch.manual_seed(0)
    model = tiny_wavegan_vae().eval()
    wav, _ = sf.read(LJ_WAV, dtype="float32")
    speech = torch.from_numpy(wav)
    with torch.no_grad():
        out = model.inference(feats=speech[:, None])  # the way ESPnet's Text2Speech passes it
    assert out["wav"].shape == speech.shape and torch.isfinite(out["wav"]).all()
    assert out["feat_gen"].shape == (speech.numel() // 256 + 1, model.generator.latent_dim)
    with pytest.raises(ValueError, match="glow_wavegan"):
        model.inference(text=torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="odim: 1"):
        model.inference(feats=torch.randn(40, 80))


def test_kl_loss_value_is_the_closed_form_kl_to_the_standard_normal():
    from espnet2_glow_wavegan.wavegan.loss import StandardNormalKLLoss

    torch.manual_seed(0)
    mean, log_std = torch.randn(2, 6, 9), torch.randn(2, 6, 9) * 0.5
    mask = torch.ones(2, 1, 9)
    mask[1, :, 5:] = 0
    kl = torch.distributions.kl_divergence(
        torch.distributions.Normal(mean, log_std.exp()), torch.distributions.Normal(torch.zeros(()), torch.ones(()))
    )
    expected = (kl.sum(dim=1, keepdim=True) * mask).sum() / mask.sum()  # summed over channels, mean over valid frames
    torch.testing.assert_close(StandardNormalKLLoss()(mean, log_std, mask), expected)


def _encoder(**init):
    from espnet2_glow_wavegan.wavegan.encoder import WaveformEncoder

    torch.manual_seed(0)
    return WaveformEncoder(latent_dim=16, channels=8, max_channels=32, **init)


def test_posterior_initialisation_gives_a_readable_latent_on_speech():
    """Default init: the mean of real speech varies ~1000x less than the sampled noise; with
    initial_mean_std / initial_log_std the signal exceeds the noise (the race's collapse, see
    initialise_posterior_conv)."""
    speech, _ = sf.read(LJ_WAV, dtype="float32")
    speech = torch.from_numpy(speech)[None]
    lengths = torch.tensor([speech.size(1)])
    for init, readable in (({}, False), (dict(initial_mean_std=1.0, initial_log_std=-1.0), True)):
        with torch.no_grad():
            mean, log_std, _ = _encoder(**init)(speech, lengths)
        signal, noise = mean[0].std(dim=-1).median(), log_std.exp().median()
        assert (signal > noise) == readable, (init, float(signal), float(noise))
    assert abs(float(log_std.median()) + 1.0) < 0.1


def test_posterior_initialisation_changes_only_the_output_layer_and_not_the_global_seed():
    from espnet2_glow_wavegan.wavegan.encoder import PROBE_FRAMES, PROBE_RMS

    plain = _encoder()
    after_plain = torch.randn(4)
    scaled = _encoder(initial_mean_std=0.5, initial_log_std=-2.0)
    assert torch.equal(torch.randn(4), after_plain)  # the probe has its own generator
    a, b = plain.state_dict(), scaled.state_dict()
    changed = sorted(k for k in a if not torch.equal(a[k], b[k]))
    assert changed == ["output_conv.1.bias", "output_conv.1.weight_g"]
    half = plain.latent_dim
    assert torch.equal(a["output_conv.1.weight_g"][half:], b["output_conv.1.weight_g"][half:])
    assert torch.equal(b["output_conv.1.bias"][half:], torch.full((half,), -2.0))
    # On the probe every mean channel varies by the target around zero.
    probe = PROBE_RMS * torch.randn(1, PROBE_FRAMES * scaled.hop_length, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        mean, _, _ = scaled(probe, torch.tensor([probe.size(1)]))
    assert torch.allclose(mean[0].std(dim=-1), torch.full((half,), 0.5), rtol=1e-4)
    assert mean[0].mean(dim=-1).abs().max() < 1e-5
    # A trained checkpoint loads over it as over the default initialisation.
    scaled.load_state_dict(a)
    assert all(torch.equal(v, scaled.state_dict()[k]) for k, v in a.items())


def test_a_reconstruction_warm_up_rests_the_discriminator_then_hands_over():
    """adversarial_start_steps: the first generator steps learn from mel L1 + KL alone (the discriminator turn
    computes nothing and changes nothing), then the adversarial losses start; the count survives a checkpoint."""
    model = tiny_wavegan_vae()
    model.adversarial_start_steps = 2
    speech = torch.randn(2, 256 * 40) * 0.1
    data = batch(speech, torch.tensor([256 * 40, 256 * 33]))
    before = {k: v.clone() for k, v in model.discriminator.state_dict().items()}
    optim_d = torch.optim.AdamW(model.discriminator.parameters(), lr=1e-3, weight_decay=0.0)  # as the configs
    turns = []
    for _ in range(3):
        d = model(**data, forward_generator=False)
        optim_d.zero_grad()
        d["loss"].backward()
        optim_d.step()
        g = model(**data, forward_generator=True)
        turns.append((float(d["stats"]["discriminator_loss"]), float(g["stats"]["generator_adv_loss"])))
        if len(turns) == 2:
            assert all(torch.equal(before[k], v) for k, v in model.discriminator.state_dict().items())
    assert turns[0] == turns[1] == (0.0, 0.0) and turns[2][0] > 0 and turns[2][1] > 0
    assert int(model.trained_steps) == 3
    resumed = tiny_wavegan_vae()
    resumed.load_state_dict(model.state_dict())
    assert int(resumed.trained_steps) == 3
    old = {k: v for k, v in model.state_dict().items() if k != "trained_steps"}  # before the option existed
    resumed.load_state_dict(old)
    assert int(resumed.trained_steps) == resumed.adversarial_start_steps
