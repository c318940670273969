"""A learned VAE encoder that reads log-mel frames (``encoder: {type: mel_vae}``).

The paper's encoder reads the raw waveform and must learn the spectral analysis first: on a CPU
budget its latent carries loudness long before it carries the spectral envelope (and the words),
while the inner-GAN gets the envelope from the fixed mel for free. This encoder starts from that
head start: ESPnet's log-mel analysis (:class:`LogMelEncoder`, the inner-GAN's), then a small stack
of dilated residual convolutions to a diagonal Gaussian q(z|x) of ``latent_dim`` channels, so the
latent stays as small and as KL-regularised as the paper's, for the flow prior to model.
"""

from typing import Any, Dict, List, Optional, Tuple

import torch
from espnet2.gan_tts.hifigan.residual_block import ResidualBlock
from typeguard import typechecked

from espnet2_glow_wavegan.wavegan.encoder import initialise_posterior_conv
from espnet2_glow_wavegan.wavegan.mel_encoder import LogMelEncoder

# Log10 mel amplitudes of speech lie in about [-5, 1] (ESPnet floors at 1e-10: digital silence
# reads -10). The network reads them floored at MEL_FLOOR and centred, so that silence is not an
# outlier five times the speech range.
MEL_FLOOR, MEL_CENTRE, MEL_SCALE = -5.0, -2.5, 2.5


class MelVAEEncoder(torch.nn.Module):
    """Waveform (B, T_wav) -> log-mel (B, n_mels, T_frames) -> posterior mean, log-std (B, latent_dim, T_frames)."""

    deterministic = False  # q(z|x) is a Gaussian: sampled in training, regularised by the KL term
    initialisation_settings = ("initial_mean_std", "initial_log_std")  # not in the architecture record

    @typechecked
    def __init__(
        self,
        latent_dim: int = 128,
        n_mels: int = 80,
        hop_length: int = 256,
        fs: int = 22050,
        n_fft: int = 1024,
        win_length: Optional[int] = None,
        fmin: Optional[int] = 0,
        fmax: Optional[int] = None,
        channels: int = 256,
        kernel_size: int = 5,
        blocks: int = 2,
        resblock_kernel_size: int = 3,
        resblock_dilations: List[int] = [1, 3, 9],
        nonlinear_activation: str = "LeakyReLU",
        nonlinear_activation_params: Dict[str, Any] = {"negative_slope": 0.1},
        initial_mean_std: Optional[float] = None,
        initial_log_std: Optional[float] = None,
    ):
        """Initialize MelVAEEncoder.

        Args:
            latent_dim: Channels of z (set by the WaveGAN).
            n_mels, hop_length, fs, n_fft, win_length, fmin, fmax: The log-mel analysis
                (``LogMelFbank``); ``hop_length`` is the WaveGAN's frame shift.
            channels: Width of the convolution stack.
            kernel_size: Kernel of its input convolution (odd).
            blocks: Dilated residual blocks (HiFi-GAN's ``ResidualBlock``).
            resblock_kernel_size, resblock_dilations: Their kernel and dilations.
            nonlinear_activation, nonlinear_activation_params: Activation module name in
                ``torch.nn`` and its keyword arguments.
            initial_mean_std, initial_log_std: As :class:`WaveformEncoder`'s: the posterior's
                scale at initialisation (None: PyTorch's default initialisation).
        """
        super().__init__()
        self.latent_dim = latent_dim
        self.analysis = LogMelEncoder(n_mels, hop_length=hop_length, fs=fs, n_fft=n_fft, win_length=win_length,
                                      fmin=fmin, fmax=fmax)
        self.hop_length = hop_length
        activation = getattr(torch.nn, nonlinear_activation)(**nonlinear_activation_params)
        self.input_conv = torch.nn.Conv1d(n_mels, channels, kernel_size, padding=kernel_size // 2)
        self.blocks = torch.nn.ModuleList(
            ResidualBlock(kernel_size=resblock_kernel_size, channels=channels, dilations=resblock_dilations,
                          use_additional_convs=True, nonlinear_activation=nonlinear_activation,
                          nonlinear_activation_params=nonlinear_activation_params)
            for _ in range(blocks)
        )
        self.output_conv = torch.nn.Sequential(activation, torch.nn.Conv1d(channels, 2 * latent_dim, 1))
        initialise_posterior_conv(self, self.output_conv[-1], initial_mean_std, initial_log_std)

    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Posterior statistics of whole waveforms, each item as it would be alone.

        Args:
            speech: Waveform (B, T_wav).
            speech_lengths: (B,).

        Returns:
            Tensor: Mean (B, latent_dim, T_frames), T_frames = T_wav // hop + 1.
            Tensor: Log standard deviation (B, latent_dim, T_frames).
            Tensor: Frame mask (B, 1, T_frames).
        """
        mel, _, mask = self.analysis(speech, speech_lengths)
        x = (mel.clamp(min=MEL_FLOOR) - MEL_CENTRE) / MEL_SCALE * mask
        # Every convolution reads zeros past an item's end, as it would with the item alone.
        x = self.input_conv(x) * mask
        for block in self.blocks:
            for first, second in zip(block.convs1, block.convs2):
                x = x + second(first(x) * mask) * mask
        mean, log_std = (self.output_conv(x) * mask).chunk(2, dim=1)
        return mean, log_std, mask
