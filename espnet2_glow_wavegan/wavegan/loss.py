"""WaveGAN losses: KL of the posterior to N(0, I), and the weighted HiFi-GAN losses."""

from typing import Any, Dict, Optional, Tuple

import torch
from espnet2.gan_tts.hifigan.loss import (
    DiscriminatorAdversarialLoss,
    FeatureMatchLoss,
    GeneratorAdversarialLoss,
    MelSpectrogramLoss,
)

from espnet2_glow_wavegan.utils import float32


class StandardNormalKLLoss(torch.nn.Module):
    """KL(q(z|x) || N(0, I)) of a diagonal Gaussian, summed over channels, averaged over frames.

    The closed form is used (no sampling noise): per channel
    ``0.5 * (mean^2 + std^2) - log_std - 0.5``. The per-frame sum matches the
    scale of ESPnet's VITS KL term, so ``lambda_kl`` values compare directly.
    """

    def forward(self, mean: torch.Tensor, log_std: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            mean: Posterior mean (B, C, T).
            log_std: Posterior log standard deviation (B, C, T).
            mask: Valid frames (B, 1, T).

        Returns:
            Tensor: Scalar loss.
        """
        with float32(mean.device.type):
            mean, log_std, mask = mean.float(), log_std.float(), mask.float()
            kl = 0.5 * (mean**2 + torch.exp(2.0 * log_std)) - log_std - 0.5
            return torch.sum(kl * mask) / torch.sum(mask).clamp(min=1.0)


# HiFi-GAN / ESPnet VITS settings: LSGAN, feature matching over all layers, 80-band mel L1.
DEFAULT_ADV_LOSS_PARAMS: Dict[str, Any] = {"average_by_discriminators": False, "loss_type": "mse"}
DEFAULT_FEAT_MATCH_LOSS_PARAMS: Dict[str, Any] = {
    "average_by_discriminators": False,
    "average_by_layers": False,
    "include_final_outputs": True,
}
DEFAULT_MEL_LOSS_PARAMS: Dict[str, Any] = {
    "fs": 22050,
    "n_fft": 1024,
    "hop_length": 256,
    "win_length": None,
    "window": "hann",
    "n_mels": 80,
    "fmin": 0,
    "fmax": None,
    "log_base": None,
}


class WaveformGANLoss(torch.nn.Module):
    """The weighted GAN losses between decoded and real waveform segments (ESPnet's modules).

    Generator turn: ``lambda_adv * adversarial + lambda_mel * mel L1 + lambda_feat_match *
    feature matching``; discriminator turn: real + fake adversarial loss.
    """

    def __init__(
        self,
        generator_adv_loss_params: Dict[str, Any] = DEFAULT_ADV_LOSS_PARAMS,
        discriminator_adv_loss_params: Dict[str, Any] = DEFAULT_ADV_LOSS_PARAMS,
        feat_match_loss_params: Dict[str, Any] = DEFAULT_FEAT_MATCH_LOSS_PARAMS,
        mel_loss_params: Dict[str, Any] = DEFAULT_MEL_LOSS_PARAMS,
        lambda_adv: float = 1.0,
        lambda_mel: float = 45.0,
        lambda_feat_match: float = 2.0,
    ):
        super().__init__()
        self.generator_adv_loss = GeneratorAdversarialLoss(**generator_adv_loss_params)
        self.discriminator_adv_loss = DiscriminatorAdversarialLoss(**discriminator_adv_loss_params)
        self.feat_match_loss = FeatureMatchLoss(**feat_match_loss_params)
        self.mel_loss = MelSpectrogramLoss(**mel_loss_params)
        self.lambda_adv = lambda_adv
        self.lambda_mel = lambda_mel
        self.lambda_feat_match = lambda_feat_match

    def weighted_mel_loss(self, wav_hat: torch.Tensor, wav_real: torch.Tensor) -> torch.Tensor:
        """``lambda_mel`` * mel L1, in float32 under mixed precision: in half precision its log of the mel
        filterbank output floors at 0 instead of 1e-10 and becomes -inf."""
        with float32(wav_hat.device.type):
            return self.lambda_mel * self.mel_loss(wav_hat.float(), wav_real.float())

    def generator_loss(
        self, discriminator: Optional[torch.nn.Module], wav_hat: torch.Tensor, wav_real: torch.Tensor
    ) -> Tuple[torch.Tensor, Dict[str, float]]:
        """Args: wav_hat, wav_real (B, 1, T). Returns the loss and its weighted parts (detached tensors).

        ``discriminator`` None: the reconstruction loss alone (a warm-up before the adversarial
        losses start), the adversarial parts reported as 0.
        """
        mel_loss = self.weighted_mel_loss(wav_hat, wav_real)
        if discriminator is None:
            zero = torch.zeros_like(mel_loss).detach()
            return mel_loss, dict(generator_mel_loss=mel_loss.detach(), generator_adv_loss=zero,
                                  generator_feat_match_loss=zero)
        p_hat = discriminator(wav_hat)
        with torch.no_grad():  # the real branch only gives feature-matching targets
            p = discriminator(wav_real)
        adv_loss = self.lambda_adv * self.generator_adv_loss(p_hat)
        feat_match_loss = self.lambda_feat_match * self.feat_match_loss(p_hat, p)
        stats = dict(
            generator_mel_loss=mel_loss.detach(),
            generator_adv_loss=adv_loss.detach(),
            generator_feat_match_loss=feat_match_loss.detach(),
        )
        return mel_loss + adv_loss + feat_match_loss, stats

    def discriminator_loss(
        self, discriminator: torch.nn.Module, wav_hat: torch.Tensor, wav_real: torch.Tensor
    ) -> Tuple[torch.Tensor, Dict[str, float]]:
        """Args: wav_hat (detached here), wav_real (B, 1, T). Returns the loss and its parts."""
        real_loss, fake_loss = self.discriminator_adv_loss(discriminator(wav_hat.detach()), discriminator(wav_real))
        loss = real_loss + fake_loss
        return loss, dict(
            discriminator_loss=loss.detach(),
            discriminator_real_loss=real_loss.detach(),
            discriminator_fake_loss=fake_loss.detach(),
        )
