"""A fixed log-mel analysis in the place of the learned encoder (``encoder_type: mel``).

With it, ``wavegan_vae`` is the paper's "inner-GAN": the same decoder and discriminators
trained as an ordinary mel vocoder. ``glow_wavegan`` over it is Glow-TTS + inner-GAN: the
flow prior models the mel spectrogram. This is the mel bridge that the paper compares its
learned latent against, with no other change.

The mel is ESPnet's ``LogMelFbank`` output for the configured settings, as it is (natural
log of the mel amplitude, floored at 1e-10, no normalisation), so a stock mel vocoder with
the same settings reads the same input. It is a centred STFT: ``T_samples // hop + 1``
frames, the learned encoder's frame convention.
"""

from typing import Any, Dict, Tuple

import torch
from espnet2.tts.feats_extract.log_mel_fbank import LogMelFbank

from espnet2_glow_wavegan.utils import frame_mask

# The analysis is deterministic: a posterior of (practically) zero width. Stored and
# sampled like a learned posterior, exp(-20) = 2e-9 leaves the mel as it is.
FIXED_LOG_STD = -20.0


class LogMelEncoder(torch.nn.Module):
    """Waveform (B, T_wav) -> log-mel "posterior" (B, n_mels, T_frames): mean = the mel."""

    deterministic = True

    def __init__(self, hop_length: int, mel_params: Dict[str, Any]):
        """Args: hop_length: frame shift; mel_params: ``LogMelFbank`` arguments (fs, n_fft, win_length, n_mels, fmin, fmax, ...)."""
        super().__init__()
        if "hop_length" in mel_params and mel_params["hop_length"] != hop_length:
            raise ValueError(f"mel_params.hop_length {mel_params['hop_length']} differs from the hop {hop_length}")
        self.hop_length = hop_length
        self.fbank = LogMelFbank(**dict(mel_params, hop_length=hop_length))
        self.latent_dim = self.fbank.output_size()

    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean = log-mel (B, n_mels, T_frames), log-std = FIXED_LOG_STD, frame mask (B, 1, T_frames).

        Each item is analysed alone (the STFT pads an utterance's ends by reflection,
        which a padded batch would replace with the padding), so the mel does not depend
        on the batch.
        """
        frames = int(speech.size(1)) // self.hop_length + 1
        mean = speech.new_zeros(speech.size(0), self.latent_dim, frames)
        for b, length in enumerate(speech_lengths.tolist()):
            mel, mel_lengths = self.fbank(speech[b : b + 1, :length], speech_lengths[b : b + 1])
            mean[b, :, : int(mel_lengths[0])] = mel[0].transpose(0, 1)
        mask = frame_mask(speech_lengths // self.hop_length + 1, frames, speech.dtype)
        return mean * mask, torch.full_like(mean, FIXED_LOG_STD) * mask, mask
