"""WaveGAN VAE as an ESPnet GAN-TTS model (``tts: wavegan_vae``)."""

from typing import Any, Dict, Optional

import torch
from espnet2.gan_tts.hifigan import HiFiGANMultiScaleMultiPeriodDiscriminator
from typeguard import typechecked

from espnet2_glow_wavegan.gan_tts import WaveformGANTTS
from espnet2_glow_wavegan.legacy import composed_generator_params
from espnet2_glow_wavegan.wavegan.generator import WaveGANGenerator
from espnet2_glow_wavegan.wavegan.loss import (
    DEFAULT_ADV_LOSS_PARAMS,
    DEFAULT_FEAT_MATCH_LOSS_PARAMS,
    DEFAULT_MEL_LOSS_PARAMS,
    StandardNormalKLLoss,
    WaveformGANLoss,
)

# ESPnet's VITS discriminator (1 scale + 5 periods): HiFi-GAN's MSD+MPD at the cost
# of one scale discriminator instead of three.
DEFAULT_DISCRIMINATOR_PARAMS: Dict[str, Any] = {
    "scales": 1,
    "scale_downsample_pooling": "AvgPool1d",
    "scale_downsample_pooling_params": {"kernel_size": 4, "stride": 2, "padding": 2},
    "scale_discriminator_params": {
        "in_channels": 1,
        "out_channels": 1,
        "kernel_sizes": [15, 41, 5, 3],
        "channels": 128,
        "max_downsample_channels": 1024,
        "max_groups": 16,
        "bias": True,
        "downsample_scales": [2, 2, 4, 4, 1],
        "nonlinear_activation": "LeakyReLU",
        "nonlinear_activation_params": {"negative_slope": 0.1},
        "use_weight_norm": True,
        "use_spectral_norm": False,
    },
    "follow_official_norm": False,
    "periods": [2, 3, 5, 7, 11],
    "period_discriminator_params": {
        "in_channels": 1,
        "out_channels": 1,
        "kernel_sizes": [5, 3],
        "channels": 32,
        "downsample_scales": [3, 3, 3, 3, 1],
        "max_downsample_channels": 1024,
        "bias": True,
        "nonlinear_activation": "LeakyReLU",
        "nonlinear_activation_params": {"negative_slope": 0.1},
        "use_weight_norm": True,
        "use_spectral_norm": False,
    },
}


class WaveGANVAE(WaveformGANTTS):
    """GAN-based VAE on raw waveforms: the first stage of Glow-WaveGAN.

    ``generator`` (encoder + HiFi-GAN decoder) is trained with LSGAN adversarial,
    feature-matching and mel L1 losses plus KL(q(z|x) || N(0, I)); ``discriminator``
    is ESPnet's multi-scale + multi-period discriminator. Text is accepted and
    ignored, so ESPnet's TTS data pipeline runs unchanged. Configure the task with
    ``odim: 1`` (no feature extractor): the model needs the raw waveform, also
    for copy synthesis through ``Text2Speech``.
    """

    @typechecked
    def __init__(
        self,
        idim: int,
        odim: int,
        sampling_rate: int = 22050,
        generator_params: Dict[str, Any] = {},
        discriminator_params: Dict[str, Any] = DEFAULT_DISCRIMINATOR_PARAMS,
        generator_adv_loss_params: Dict[str, Any] = DEFAULT_ADV_LOSS_PARAMS,
        discriminator_adv_loss_params: Dict[str, Any] = DEFAULT_ADV_LOSS_PARAMS,
        feat_match_loss_params: Dict[str, Any] = DEFAULT_FEAT_MATCH_LOSS_PARAMS,
        mel_loss_params: Dict[str, Any] = DEFAULT_MEL_LOSS_PARAMS,
        lambda_adv: float = 1.0,
        lambda_mel: float = 45.0,
        lambda_feat_match: float = 2.0,
        lambda_kl: float = 0.01,
        adversarial_start_steps: int = 0,
        cache_generator_outputs: bool = True,
    ):
        """Initialize WaveGANVAE.

        Args:
            idim: Vocabulary size (unused: the VAE does not read text).
            odim: Feature dimension given by the task (1: raw waveform).
            sampling_rate: Sampling rate of the waveforms, reported as ``fs``.
            generator_params: :class:`WaveGANGenerator` arguments: ``latent_dim``, ``encoder`` and
                ``decoder`` (``{type, conf}``), speakers, ``segment_size``. Flat settings of
                version 0.1 are converted (see :mod:`espnet2_glow_wavegan.legacy`).
            discriminator_params: Keyword arguments of ESPnet's
                ``HiFiGANMultiScaleMultiPeriodDiscriminator``.
            generator_adv_loss_params: ESPnet ``GeneratorAdversarialLoss`` arguments.
            discriminator_adv_loss_params: ESPnet ``DiscriminatorAdversarialLoss`` arguments.
            feat_match_loss_params: ESPnet ``FeatureMatchLoss`` arguments.
            mel_loss_params: ESPnet ``MelSpectrogramLoss`` arguments.
            lambda_adv: Weight of the generator adversarial loss.
            lambda_mel: Weight of the mel L1 loss.
            lambda_feat_match: Weight of the feature-matching loss.
            lambda_kl: Weight of KL(q(z|x) || N(0, I)).
            adversarial_start_steps: Generator steps trained on the reconstruction (mel L1) and KL
                losses alone before the adversarial and feature-matching losses start; the
                discriminator rests until then, and a step costs the generator's half alone.
                0: adversarial from the first step (the paper's, HiFi-GAN's).
            cache_generator_outputs: Reuse the generator output of the first turn
                (discriminator or generator) in the second turn of the same batch.
        """
        super().__init__(sampling_rate, cache_generator_outputs)
        self.generator = WaveGANGenerator(**composed_generator_params(generator_params, "generator_params"))
        # These weights are trained here, as this architecture: the record travels with them
        # (checkpoints, --init_param) so that glow_wavegan can check what it was given.
        self.generator.record_architecture()
        self.discriminator = HiFiGANMultiScaleMultiPeriodDiscriminator(**discriminator_params)
        self.gan_loss = WaveformGANLoss(
            generator_adv_loss_params,
            discriminator_adv_loss_params,
            feat_match_loss_params,
            mel_loss_params,
            lambda_adv=lambda_adv,
            lambda_mel=lambda_mel,
            lambda_feat_match=lambda_feat_match,
        )
        self.kl_loss = StandardNormalKLLoss()
        self.lambda_kl = lambda_kl
        self.adversarial_start_steps = adversarial_start_steps
        # Generator steps trained so far: checkpoints carry it, so a resumed warm-up ends where it would have.
        # (Not named generator_*: ESPnet's --init_param tts.generator matches keys by prefix.)
        self.register_buffer("trained_steps", torch.zeros((), dtype=torch.long))
        self._warmed_up = False  # once the count has passed the start, it is not read back from the device again
        self.spks = self.generator.spks
        self.spk_embed_dim = self.generator.spk_embed_dim

    def _run_generator(self, text, text_lengths, speech, speech_lengths, sids, spembs):
        """A random segment per item: encoded (segment-first), sampled, decoded; the KL's statistics."""
        wav_hat, wav_real, _, mean, log_std, mask = self.generator(speech, speech_lengths, sids=sids, spembs=spembs)
        return dict(wav_hat=wav_hat, wav_real=wav_real, mean=mean, log_std=log_std, mask=mask)

    def _adapt_old_state_dict(self, state_dict, prefix):
        # Checkpoints from before the warm-up option have no step count: they resume as adversarial.
        state_dict.setdefault(prefix + "trained_steps", torch.tensor(self.adversarial_start_steps))
        self._warmed_up = False

    def _warming_up(self) -> bool:
        """During the warm-up the count is read back once a turn; from then on, never."""
        if self.adversarial_start_steps == 0 or self._warmed_up or not self.training:
            return False
        self._warmed_up = int(self.trained_steps) >= self.adversarial_start_steps
        return not self._warmed_up

    def _discriminator_turn(self, batch):
        if self._warming_up():  # nothing to learn yet; ESPnet's GANTrainer still backpropagates the turn
            self._cache = None
            zero = torch.zeros((), device=batch["speech"].device)
            return zero, dict(discriminator_loss=zero, discriminator_real_loss=zero, discriminator_fake_loss=zero)
        return super()._discriminator_turn(batch)

    def _generator_turn(self, batch):
        warming_up = self._warming_up()
        outs = self._generator_outputs(batch)
        if warming_up:
            self._cache = None  # the next batch's discriminator turn must not read this batch's outputs
        if self.training:
            self.trained_steps += 1
        discriminator = None if warming_up else self.discriminator
        loss, stats = self.gan_loss.generator_loss(discriminator, outs["wav_hat"], outs["wav_real"])
        if not self.generator.encoder.deterministic:  # a fixed mel analysis has no posterior to regularise
            kl_loss = self.lambda_kl * self.kl_loss(outs["mean"], outs["log_std"], outs["mask"])
            loss = loss + kl_loss
            stats.update(generator_kl_loss=kl_loss.detach())
        stats.update(generator_loss=loss.detach())
        return loss, stats

    def inference(
        self,
        text: Optional[torch.Tensor] = None,
        feats: Optional[torch.Tensor] = None,
        speech: Optional[torch.Tensor] = None,
        sids: Optional[torch.Tensor] = None,
        spembs: Optional[torch.Tensor] = None,
        sample_posterior: bool = False,
        **kwargs,
    ) -> Dict[str, torch.Tensor]:
        """Copy synthesis: waveform -> z -> waveform.

        ``Text2Speech(..., use_teacher_forcing=True)(text, speech=wav)`` reaches
        this with the waveform as ``feats`` (the task has no feature extractor).

        Args:
            text: Ignored (this model does not read text).
            feats: Waveform (T_wav,) or (T_wav, 1), as ESPnet passes it.
            speech: Waveform (T_wav,), used when given.
            sids: Speaker id (1,).
            spembs: Speaker embedding (spk_embed_dim,).
            sample_posterior: Decode a sample of q(z|x) instead of its mean.

        Returns:
            Dict[str, Tensor]: ``wav`` (T_wav,), ``feat_gen`` = z (T_frames, latent_dim).
        """
        self.check_speaker_inputs(sids, spembs)
        wav = speech if speech is not None else feats
        if wav is None:
            raise ValueError(
                "wavegan_vae re-synthesises a given waveform (pass speech=..., or use "
                "Text2Speech with use_teacher_forcing=True); it cannot speak text on its own. "
                "For text-to-speech use the glow_wavegan model trained on top of it."
            )
        if wav.dim() == 2 and wav.size(1) != 1:
            raise ValueError(
                f"wavegan_vae needs the raw waveform but got features of shape {tuple(wav.shape)}; "
                "train and decode it with 'odim: 1' so that ESPnet passes the waveform"
            )
        wav = wav.reshape(1, -1).float()
        lengths = torch.tensor([wav.size(1)], device=wav.device)
        z, _, _, _ = self.generator.encode(wav, lengths, sample=sample_posterior)
        g = self.generator.speaker(sids, spembs)
        wav_hat = self.generator.decode(z, g=g).view(-1)[: wav.size(1)]
        return dict(wav=wav_hat, feat_gen=z[0].transpose(0, 1))
