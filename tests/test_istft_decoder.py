"""The iSTFT (Vocos-style) WaveGAN decoder: shapes, sample alignment, chunking, training, synthesis paths."""

import pytest
import soundfile as sf
import torch

from conftest import CORPORA, HOP, mel_losses_overfitting, tiny_glow_wavegan, tiny_wavegan_vae

RECIPES = ("ljspeech", "aishell3")


def istft_vae(recipe="ljspeech", **overrides):
    return tiny_wavegan_vae(recipe, "istft", **overrides)


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("decoder_type", ["istft", "hifigan"])
def test_decoded_frames_land_on_the_same_samples_as_in_one_pass(recipe, decoder_type):
    """Frame i decodes to samples [i * hop, (i + 1) * hop): a segment decoded alone (as in training,
    against real audio [s * hop, (s + S) * hop)) matches the one-pass waveform there, away from its edges."""
    gen = (istft_vae(recipe) if decoder_type == "istft" else tiny_wavegan_vae(recipe)).generator.eval()
    hop = HOP[recipe]
    torch.manual_seed(0)
    z = torch.randn(2, gen.latent_dim, 90)
    start, size, edge = 23, 40, 12  # edge: frames whose samples see the segment's missing context
    with torch.no_grad():
        whole = gen.decode(z)
        segment = gen.decode(z[:, :, start : start + size])
    assert whole.shape == (2, 1, 90 * hop) and segment.shape == (2, 1, size * hop)
    if decoder_type == "istft":
        assert gen.decoder.context_frames() <= edge
        torch.testing.assert_close(
            segment[..., edge * hop : (size - edge) * hop],
            whole[..., (start + edge) * hop : (start + size - edge) * hop], atol=1e-5, rtol=0,
        )
    else:  # HiFi-GAN's receptive field is longer; its middle still lines up to the sample
        middle = slice((size // 2 - 2) * hop, (size // 2 + 2) * hop)
        shifted = slice((start + size // 2 - 2) * hop, (start + size // 2 + 2) * hop)
        torch.testing.assert_close(segment[..., middle], whole[..., shifted], atol=1e-4, rtol=0)


def test_chunked_decoding_equals_one_pass():
    gen = istft_vae().generator.eval()
    torch.manual_seed(1)
    z = torch.randn(1, gen.latent_dim, 230)
    with torch.no_grad():
        one_pass = gen.decode(z)
        chunked = gen.decode(z, chunk_frames=50, context_frames=0)  # the decoder's own context still applies
    assert chunked.shape == one_pass.shape
    torch.testing.assert_close(chunked, one_pass, atol=1e-4, rtol=0)


def test_overfitting_one_clip_lowers_the_mel_loss():
    torch.manual_seed(0)
    frames = 24
    model = istft_vae(segment_size=frames)
    wav, _ = sf.read(CORPORA / "mini_ljspeech/LJSpeech-1.1/wavs/LJ001-0001.wav", dtype="float32")
    speech = torch.from_numpy(wav[5000 : 5000 + 256 * frames])[None]
    data = dict(text=torch.ones(1, 3, dtype=torch.long), text_lengths=torch.tensor([3]), speech=speech,
                speech_lengths=torch.tensor([speech.size(1)]))
    mel_losses = mel_losses_overfitting(model, data)
    start, end = sum(mel_losses[:5]) / 5, sum(mel_losses[-10:]) / 10
    assert end < 0.5 * start, (start, end)


def test_speaker_condition_reaches_the_istft_decoder():
    gen = istft_vae(spks=3, global_channels=8).generator.eval()
    z = torch.randn(1, gen.latent_dim, 20)
    with torch.no_grad():
        a = gen.decode(z, g=gen.speaker(torch.tensor([1]), None))
        b = gen.decode(z, g=gen.speaker(torch.tensor([2]), None))
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("phase", ["prior", "joint"])
def test_glow_wavegan_over_the_istft_decoder_trains(phase):
    model = tiny_glow_wavegan(decoder="istft", training_phase=phase)
    assert model.generator.wavegan.decoder_type == "istft"
    optims = [torch.optim.Adam([p for p in m.parameters() if p.requires_grad] or [torch.zeros(1, requires_grad=True)])
              for m in (model.generator, model.discriminator)]
    torch.manual_seed(0)
    data = dict(text=torch.randint(2, 20, (2, 12)), text_lengths=torch.tensor([12, 9]),
                speech=torch.randn(2, 256 * 40) * 0.1, speech_lengths=torch.tensor([256 * 40, 256 * 31 + 7]))
    decoder = {k: v.clone() for k, v in model.generator.wavegan.decoder.state_dict().items()}
    for forward_generator, optim in ((False, optims[1]), (True, optims[0])):
        out = model(**data, forward_generator=forward_generator)
        optim.zero_grad()
        out["loss"].backward()
        optim.step()
    assert torch.isfinite(out["loss"]) and "generator_mle_loss" in out["stats"]
    changed = any(not torch.equal(v, decoder[k]) for k, v in model.generator.wavegan.decoder.state_dict().items())
    assert changed == (phase == "joint")  # the decoder trains only in the joint phase


def test_istft_glow_wavegan_synthesis_and_optimized_paths():
    model = tiny_glow_wavegan(decoder="istft").eval()
    text, durations = torch.randint(2, 20, (15,)), torch.full((15,), 3)

    def synthesize():
        torch.manual_seed(0)
        return model.inference(text, durations=durations, noise_scale=0.667)["wav"]

    with torch.inference_mode():
        plain = synthesize()
        assert plain.numel() == 45 * 256 and torch.isfinite(plain).all()
        model.optimize_for_inference()  # float32: the same waveform
        torch.testing.assert_close(synthesize(), plain, atol=1e-5, rtol=0)
        model.optimize_for_inference(decoder_dtype=torch.bfloat16)  # lossy, bounded; the iSTFT stays float32
        assert model.generator.wavegan.decoder.backbone.embed.weight.dtype == torch.bfloat16
        assert model.generator.wavegan.decoder.head.out.weight.dtype == torch.float32
        low = synthesize()
    assert low.dtype == torch.float32
    assert ((low - plain).pow(2).mean() / plain.pow(2).mean()).sqrt() < 0.1
