"""glow_wavegan: training phases, WaveGAN initialisation, synthesis knobs, speakers."""


import pytest
import torch
from espnet2.torch_utils.load_pretrained_model import load_pretrained_model

from conftest import tiny_generator_params, tiny_glow_wavegan, tiny_wavegan_vae, tts_conf, wavegan_vae_settings
from espnet2_glow_wavegan.glow.glow_wavegan import GlowWaveGAN

def batch():
    torch.manual_seed(0)
    return dict(
        text=torch.randint(1, 20, (2, 12)),
        text_lengths=torch.tensor([12, 9]),
        speech=torch.randn(2, 256 * 40) * 0.1,
        speech_lengths=torch.tensor([256 * 40, 256 * 31 + 7]),
    )


def optimizers(model):
    """As GANTTSTask.build_optimizers: one over the generator, one over the discriminator."""
    return (
        torch.optim.Adam(model.generator.parameters(), lr=1e-3),
        torch.optim.Adam(model.discriminator.parameters(), lr=1e-3),
    )


def gan_step(model, optims, data):
    for forward_generator, optim in [(False, optims[1]), (True, optims[0])]:
        out = model(**data, forward_generator=forward_generator)
        for o in optims:
            o.zero_grad()
        out["loss"].backward()
        optim.step()
    return out


def state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def unchanged(module, before):
    return all(torch.equal(v, before[k]) for k, v in module.state_dict().items())


def test_prior_phase_trains_only_the_prior():
    model = tiny_glow_wavegan()
    optims = optimizers(model)
    wavegan, disc, prior = state(model.generator.wavegan), state(model.discriminator), state(model.generator.prior)
    data = batch()
    idle = model(**data, forward_generator=False)
    assert idle["optim_idx"] == 1 and idle["loss"].item() == 0.0
    for _ in range(3):
        out = gan_step(model, optims, data)
    assert out["optim_idx"] == 0 and {"generator_mle_loss", "generator_dur_loss"} <= set(out["stats"])
    assert unchanged(model.generator.wavegan, wavegan), "the frozen WaveGAN changed"
    assert unchanged(model.discriminator, disc)
    assert not unchanged(model.generator.prior, prior)


def test_joint_phase_fine_tunes_decoder_not_encoder():
    model = tiny_glow_wavegan(training_phase="joint")
    optims = optimizers(model)
    enc, dec, disc = state(model.generator.wavegan.encoder), state(model.generator.wavegan.decoder), state(model.discriminator)
    out = gan_step(model, optims, batch())
    assert {"generator_mel_loss", "generator_adv_loss", "generator_mle_loss"} <= set(out["stats"])
    assert unchanged(model.generator.wavegan.encoder, enc)
    assert not unchanged(model.generator.wavegan.decoder, dec)
    assert not unchanged(model.discriminator, disc)


def espnet_checkpoint(model, path):
    """What ESPnet saves: the ESPnetGANTTSModel state dict, the TTS under "tts."."""
    torch.save({f"tts.{k}": v for k, v in model.state_dict().items()}, path)
    return path


def untrained_glow(**overrides):
    """A tiny glow_wavegan as the GAN task builds it, before any --init_param."""
    conf = tts_conf("train_glow_wavegan_tiny.yaml")
    conf.update(dict(speech_input="waveform"), **overrides)
    conf.update(wavegan_vae_settings(training_phase=conf.get("training_phase")))
    wrapper = torch.nn.Module()  # stands for ESPnetGANTTSModel: the TTS under "tts"
    wrapper.tts = GlowWaveGAN(idim=20, odim=1, **conf)
    return wrapper


@pytest.mark.parametrize("phase", ["prior", "joint"])
def test_wavegan_checkpoint_initialises_glow_wavegan_with_init_param(tmp_path, phase):
    torch.manual_seed(1)
    wavegan = tiny_wavegan_vae()
    checkpoint = espnet_checkpoint(wavegan, tmp_path / "wavegan.pth")
    model = untrained_glow(training_phase=phase)
    load_pretrained_model(f"{checkpoint}:tts.generator:tts.generator.wavegan", model, False)
    for k, v in wavegan.generator.state_dict().items():
        assert torch.equal(model.tts.generator.wavegan.state_dict()[k], v), k
    model.tts.check_wavegan_initialised()  # the architecture record came along
    if phase == "joint":
        load_pretrained_model(f"{checkpoint}:tts.discriminator:tts.discriminator", model, False)
        for k, v in wavegan.discriminator.state_dict().items():
            assert torch.equal(model.tts.discriminator.state_dict()[k], v), k
    else:  # nothing adversarial: the prior's checkpoints do not carry the discriminator
        assert list(model.tts.discriminator.state_dict()) == ["unused"]
        assert sum(p.numel() for p in model.tts.discriminator.parameters()) == 1


def test_training_refuses_a_wavegan_that_was_not_loaded():
    model = untrained_glow().tts
    with pytest.raises(ValueError, match="was not initialised from a trained wavegan_vae.*--init_param"):
        model(**batch(), forward_generator=False)  # the very first turn (ESPnet: discriminator first)
    model.eval()
    with torch.no_grad():  # synthesis does not care where the weights came from
        assert model.inference(torch.randint(2, 20, (5,)), durations=torch.full((5,), 2))["wav"].numel() == 10 * 256


def test_training_refuses_a_wavegan_of_other_settings_with_the_same_shapes(tmp_path):
    """Other dilations load without a shape error, and would silently make another latent."""
    torch.manual_seed(1)
    checkpoint = espnet_checkpoint(tiny_wavegan_vae(decoder_conf=dict(resblock_dilations=[[1, 2]])), tmp_path / "wavegan.pth")
    model = untrained_glow()
    load_pretrained_model(f"{checkpoint}:tts.generator:tts.generator.wavegan", model, False)
    with pytest.raises(ValueError, match=r"decoder.conf.resblock_dilations: \[\[1, 2\]\] in the WaveGAN, \[\[1, 3\]\] in wavegan_params"):
        model.tts(**batch(), forward_generator=True)


def test_inference_length_noise_and_speed():
    model = tiny_glow_wavegan().eval()
    with torch.no_grad():  # predictor bias: ~5 frames a token
        model.generator.prior.duration_predictor.linear.bias.fill_(torch.log(torch.tensor(6.0)))
    text = torch.randint(1, 20, (15,))
    with torch.no_grad():
        a = model.inference(text, noise_scale=0.0)
        b = model.inference(text, noise_scale=0.0)
        c = model.inference(text, noise_scale=0.667)
        slow = model.inference(text, noise_scale=0.0, length_scale=2.0)
    hop = model.generator.upsample_factor
    assert a["wav"].numel() == int(a["duration"].sum()) * hop and torch.isfinite(a["wav"]).all()
    assert a["att_w"].shape == (int(a["duration"].sum()), 15)
    assert a["feat_gen"].shape == (int(a["duration"].sum()), model.generator.wavegan.latent_dim)
    assert torch.equal(a["wav"], b["wav"])  # noise_scale 0: deterministic
    assert not torch.equal(a["wav"], c["wav"])
    ratio = slow["wav"].numel() / a["wav"].numel()
    assert 1.8 <= ratio <= 2.2, ratio
    forced = model.inference(text, durations=torch.full((15,), 3), noise_scale=0.0)
    assert forced["wav"].numel() == 45 * hop


@pytest.mark.parametrize("speakers", [dict(spks=4), dict(spk_embed_dim=8), dict(spks=4, spk_embed_dim=8)])
def test_speaker_conditioning(speakers):
    model = tiny_glow_wavegan(prior_params=dict(speakers, global_channels=16))
    assert model.spks == speakers.get("spks") and model.spk_embed_dim == speakers.get("spk_embed_dim")
    data = batch()
    sids = {"sids": torch.tensor([1, 3])} if "spks" in speakers else {}
    spembs = {"spembs": torch.randn(2, 8)} if "spk_embed_dim" in speakers else {}
    out = model(**data, **sids, **spembs, forward_generator=True)
    out["loss"].backward()
    prior = model.generator.prior
    speaker_params = [p for n, p in prior.named_parameters() if n.startswith(("speaker.global_emb", "speaker.spemb_proj"))]
    assert speaker_params and all(p.grad is not None and p.grad.abs().sum() > 0 for p in speaker_params)
    # The couplings start as the identity (zero output layer); after a step the speaker reaches the flow.
    for _ in range(2):
        torch.optim.Adam([p for p in model.generator.parameters() if p.requires_grad], lr=1e-2).step()
        model.generator.zero_grad()
        model(**data, **sids, **spembs, forward_generator=True)["loss"].backward()
    model.eval()
    text = torch.randint(1, 20, (10,))
    one = {k: v[:1] for k, v in sids.items()} | {k: v[0] for k, v in spembs.items()}
    two = {k: v[1:] for k, v in sids.items()} | {k: v[1] for k, v in spembs.items()}
    with torch.no_grad():
        durations = torch.full((10,), 4)
        wav_one = model.inference(text, durations=durations, noise_scale=0.0, **one)["wav"]
        wav_two = model.inference(text, durations=durations, noise_scale=0.0, **two)["wav"]
    assert not torch.allclose(wav_one, wav_two)
    with pytest.raises(ValueError, match="sids|spembs"):
        model.inference(text)


def test_bad_configuration_is_reported():
    with pytest.raises(ValueError, match="training_phase"):
        tiny_glow_wavegan(training_phase="both")
    conf = tts_conf("train_glow_wavegan_tiny.yaml")
    conf["wavegan_params"] = tiny_generator_params(spks=3, global_channels=8)
    with pytest.raises(ValueError, match="prior_params"):
        GlowWaveGAN(idim=20, odim=1, **conf)


def stored_posterior(model, speech, lengths):
    """What the recipe's latent extraction stores: each utterance encoded alone, padded into a batch."""
    encoder = model.generator.wavegan.encoder
    stats, frames = [], []
    with torch.no_grad():
        for b in range(speech.size(0)):
            mean, log_std, _ = encoder(speech[b : b + 1, : lengths[b]], lengths[b : b + 1])
            stats.append(torch.cat([mean, log_std], dim=1)[0].transpose(0, 1))
            frames.append(stats[-1].size(0))
    return torch.nn.utils.rnn.pad_sequence(stats, batch_first=True), torch.tensor(frames)


def test_prior_step_from_stored_posterior_equals_the_waveform_step():
    data = batch()
    losses = {}
    for speech_input in ("waveform", "posterior_stats"):
        model = tiny_glow_wavegan(speech_input=speech_input, target_latent="mean")
        inputs = dict(data)
        if speech_input == "posterior_stats":
            inputs["speech"], inputs["speech_lengths"] = stored_posterior(model, data["speech"], data["speech_lengths"])
            assert inputs["speech"].shape == (2, 41, 2 * model.generator.wavegan.latent_dim)
        torch.manual_seed(1)  # same dropout masks
        out = model(**inputs, forward_generator=True)
        out["loss"].backward()
        losses[speech_input] = (out["loss"].item(), out["stats"]["generator_mle_loss"].item())
        grads = [p.grad for p in model.generator.prior.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        assert sum(g.abs().sum() for g in grads) > 0  # the MLE reaches the prior (not only zero_touching's zeros)
    assert losses["posterior_stats"] == pytest.approx(losses["waveform"], abs=1e-5)


def test_stored_posterior_is_sampled_at_every_step():
    """Dropout off (eval mode), so only the draw of z ~ N(mean, std) can make two steps differ; with
    target_latent: mean the same two steps are equal."""
    data = batch()
    losses = {}
    for target in ("sample", "mean"):
        model = tiny_glow_wavegan(speech_input="posterior_stats", target_latent=target)
        stats, frames = stored_posterior(model, data["speech"], data["speech_lengths"])
        inputs = dict(data, speech=stats, speech_lengths=frames)
        model.eval()
        with torch.no_grad():
            losses[target] = [model(**inputs)["stats"]["generator_mle_loss"].item() for _ in range(2)]
    assert losses["mean"][0] == losses["mean"][1]
    assert losses["sample"][0] != losses["sample"][1]  # z drawn anew at every step


def test_stored_posterior_input_errors_name_the_cause():
    data = batch()
    model = tiny_glow_wavegan(speech_input="posterior_stats")
    with pytest.raises(ValueError, match="stats.scp"):
        model(**data)  # a waveform where the stored posterior belongs
    latent_dim = model.generator.wavegan.latent_dim
    with pytest.raises(ValueError, match=f"2 \\* latent_dim = {2 * latent_dim}"):
        model(**dict(data, speech=torch.zeros(2, 41, 2 * latent_dim + 2), speech_lengths=torch.tensor([41, 30])))
    with pytest.raises(ValueError, match="speech_input: posterior_stats"):
        tiny_glow_wavegan()(**dict(data, speech=torch.zeros(2, 41, 2 * latent_dim), speech_lengths=torch.tensor([41, 30])))
    with pytest.raises(ValueError, match="joint.*waveform"):
        tiny_glow_wavegan(speech_input="posterior_stats", training_phase="joint")


def test_target_latent_mean_is_the_posterior_mean():
    data = batch()
    model = tiny_glow_wavegan(target_latent="mean").eval()  # eval: no dropout, so two turns can be compared
    with torch.no_grad():
        first, second = (model(**data)["stats"]["generator_mle_loss"].item() for _ in range(2))
        z, mask = model._target_latent(data["speech"], data["speech_lengths"])
        mean, _, _ = model.generator.wavegan.encoder(data["speech"], data["speech_lengths"])
    assert first == second  # no sampling: the same target at every step
    assert torch.equal(z, mean)


def test_teacher_forced_durations_are_the_mas_durations_of_the_reference():
    model = tiny_glow_wavegan().eval()
    text = torch.randint(2, 20, (12,))
    speech = torch.randn(256 * 41) * 0.1
    with torch.no_grad():
        out = model.inference(text, feats=speech[:, None], use_teacher_forcing=True, noise_scale=0.0)
        mean, _, mask = model.generator.wavegan.encoder(speech[None], torch.tensor([speech.numel()]))
        mas = model.generator.prior(text[None], torch.tensor([12]), mean, mask.sum(dim=(1, 2)).long())["durations"][0]
    assert torch.equal(out["duration"], mas)
    assert int(out["duration"].sum()) == 42  # 41 * 256 samples -> 42 frames, even for the flow's squeeze
    assert out["wav"].numel() == 42 * 256
    with pytest.raises(ValueError, match="reference waveform"):
        model.inference(text, use_teacher_forcing=True)


def test_joint_phase_draws_its_latents_without_dropout():
    model = tiny_glow_wavegan(training_phase="joint", prior_params=dict(flow_conf=dict(dropout_rate=0.5))).train()
    data = batch()
    prior = model.generator.prior
    with torch.no_grad():
        z, mask = model._target_latent(data["speech"], data["speech_lengths"])
        prior_out = prior(data["text"], data["text_lengths"], z, mask.sum(dim=(1, 2)).long())
    torch.manual_seed(3)
    drawn = model._joint_latent(prior_out, None)
    assert prior.flow.training  # its mode is restored
    prior.flow.eval()
    torch.manual_seed(3)
    synthesis_like = model._joint_latent(prior_out, None)
    assert torch.equal(drawn, synthesis_like)  # the same draw as with dropout off
