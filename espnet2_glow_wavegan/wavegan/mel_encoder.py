"""A fixed log-mel analysis in the place of the learned encoder (``encoder: {type: mel}``).

With it, ``wavegan_vae`` is the paper's "inner-GAN": the same decoder and discriminators
trained as an ordinary mel vocoder. ``glow_wavegan`` over it is Glow-TTS + inner-GAN: the
flow prior models the mel spectrogram. This is the mel bridge that the paper compares its
learned latent against, with no other change.

The mel is ESPnet's ``LogMelFbank`` output for the configured settings, as it is (log of the
mel amplitude, base 10 as ESPnet's default, floored at 1e-10, no normalisation), so a stock
mel vocoder with the same settings reads the same input. It is a centred STFT: ``T_samples // hop + 1``
frames, the learned encoder's frame convention.
"""

from typing import Optional, Tuple

import torch
from espnet2.layers.stft import Stft
from espnet2.tts.feats_extract.log_mel_fbank import LogMelFbank
from typeguard import typechecked

from espnet2_glow_wavegan.utils import float32, frame_mask

# The analysis is deterministic: a posterior of (practically) zero width. Stored and
# sampled like a learned posterior, exp(-20) = 2e-9 leaves the mel as it is.
FIXED_LOG_STD = -20.0


class LogMelEncoder(torch.nn.Module):
    """Waveform (B, T_wav) -> log-mel "posterior" (B, latent_dim = n_mels, T_frames): mean = the mel."""

    deterministic = True  # a fixed analysis: z is its mean, there is nothing to sample or regularise

    @typechecked
    def __init__(
        self,
        latent_dim: int,
        hop_length: int = 256,
        fs: int = 22050,
        n_fft: int = 1024,
        win_length: Optional[int] = None,
        window: str = "hann",
        fmin: Optional[int] = 0,
        fmax: Optional[int] = None,
        htk: bool = False,
        log_base: Optional[float] = 10.0,
    ):
        """Initialize LogMelEncoder: ESPnet's ``LogMelFbank`` with ``latent_dim`` mel bands.

        Args:
            latent_dim: Mel bands (set by the WaveGAN: its latent is the mel).
            hop_length: Frame shift: the WaveGAN's hop.
            fs, n_fft, win_length, window, fmin, fmax, htk, log_base: ``LogMelFbank`` settings,
                as a stock mel vocoder for the same data reads them (log_base 10: ESPnet's default).
        """
        super().__init__()
        self.hop_length = hop_length
        self.fbank = LogMelFbank(fs=fs, n_fft=n_fft, win_length=win_length, hop_length=hop_length, window=window,
                                 n_mels=latent_dim, fmin=fmin, fmax=fmax, htk=htk, log_base=log_base)
        self.latent_dim = latent_dim
        stft = self.fbank.stft
        # The fbank's STFT on signals this module pads itself (see forward).
        self.frames_stft = Stft(n_fft=stft.n_fft, win_length=stft.win_length, hop_length=hop_length,
                                window=stft.window, center=False, normalized=stft.normalized, onesided=stft.onesided)

    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean = log-mel (B, n_mels, T_frames), log-std = FIXED_LOG_STD, frame mask (B, 1, T_frames).

        ESPnet's centred STFT pads an utterance's ends by reflection; in a padded batch it
        would reflect the batch padding at the end of a shorter item. Each item is padded
        at its own ends here, so its mel equals ``LogMelFbank`` of the item alone, in one
        batched pass (no per-item loop, nothing read back to the host). Float32 under autocast.
        """
        with float32(speech.device.type):
            padded = self._reflect_padded(speech.float(), speech_lengths)
            spec, _ = self.frames_stft(padded)
            amplitude = torch.sqrt(torch.clamp(spec[..., 0] ** 2 + spec[..., 1] ** 2, min=1.0e-10))
            mel, _ = self.fbank.logmel(amplitude)  # (B, T_frames, n_mels)
        mask = frame_mask(speech_lengths // self.hop_length + 1, mel.size(1), mel.dtype)
        mean = mel.transpose(1, 2) * mask
        return mean, torch.full_like(mean, FIXED_LOG_STD) * mask, mask

    def _reflect_padded(self, speech: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T_frames_max * hop + n_fft - hop): item b reflected at 0 and at ``lengths[b] - 1``, as torch.stft(center=True)."""
        pad = self.frames_stft.n_fft // 2
        frames = speech.size(1) // self.hop_length + 1
        t = torch.arange((frames - 1) * self.hop_length + 2 * pad, device=speech.device) - pad
        last = (lengths - 1).view(-1, 1)
        t = t.abs().expand(speech.size(0), -1)
        t = torch.where(t > last, 2 * last - t, t)
        return torch.gather(speech, 1, torch.minimum(t.clamp(min=0), last))
