"""WaveGAN generator: waveform encoder -> z -> HiFi-GAN decoder, with speaker conditioning."""

import inspect
import json
import math
from typing import Any, Dict, List, Optional, Tuple

import torch
from espnet2.gan_tts.hifigan import HiFiGANGenerator
from typeguard import typechecked

from espnet2_glow_wavegan.speaker import SpeakerCondition
from espnet2_glow_wavegan.utils import padded_segments, random_segment_starts
from espnet2_glow_wavegan.wavegan.encoder import WaveformEncoder, num_frames
from espnet2_glow_wavegan.wavegan.istft_decoder import ISTFTDecoder
from espnet2_glow_wavegan.wavegan.mel_encoder import LogMelEncoder
from espnet2_glow_wavegan.wavegan.tiled_decoding import (
    DEFAULT_TILE_ELEMENTS,
    SYNTHESIS_DTYPES,
    prepare_decoder_for_synthesis,
    synthesis_decode,
)


DECODER_TYPES = ("hifigan", "istft")
# Constructor arguments that change how the generator trains, not what its weights compute,
# and those of the decoder type not in use.
TRAINING_ARGUMENTS = ("segment_size", "encode_segment_window")
UNUSED_BY_DECODER = {
    "hifigan": ("istft_intermediate_channels", "istft_layers", "istft_n_fft"),
    "istft": ("decoder_kernel_size", "decoder_upsample_scales", "decoder_upsample_kernel_sizes",
              "decoder_resblock_kernel_sizes", "decoder_resblock_dilations"),
}
ENCODER_TYPES = ("learned", "mel")
UNUSED_BY_ENCODER = {
    "learned": ("mel_params",),
    "mel": ("encoder_channels", "encoder_max_channels", "encoder_kernel_size", "encoder_resblock_kernel_size",
            "encoder_resblock_dilations"),
}
# Bytes of the architecture record (UTF-8 JSON), stored one per float32 element: ESPnet's
# checkpoint averaging divides float tensors by their count (identical records average to
# themselves exactly) but only sums integer ones.
ARCHITECTURE_RECORD_SIZE = 4096


class WaveGANGenerator(torch.nn.Module):
    """The VAE half of WaveGAN that the generator optimiser trains.

    ``encode`` gives q(z|x) from the raw waveform; ``decode`` turns z (at the
    mel frame rate) back into a waveform with ESPnet's HiFi-GAN generator. The
    encoder is speaker-independent (a "universal" latent); speaker ids and/or
    speaker embeddings, when configured, condition only the decoder through
    HiFi-GAN's global conditioning.
    """

    @typechecked
    def __init__(
        self,
        latent_dim: int = 128,
        segment_size: int = 32,
        encoder_channels: int = 32,
        encoder_max_channels: int = 512,
        encoder_kernel_size: int = 7,
        encoder_downsample_scales: List[int] = [2, 2, 8, 8],
        encoder_resblock_kernel_size: int = 3,
        encoder_resblock_dilations: List[int] = [1, 3, 9],
        decoder_channels: int = 512,
        decoder_kernel_size: int = 7,
        decoder_upsample_scales: List[int] = [8, 8, 2, 2],
        decoder_upsample_kernel_sizes: List[int] = [16, 16, 4, 4],
        decoder_resblock_kernel_sizes: List[int] = [3, 7, 11],
        decoder_resblock_dilations: List[List[int]] = [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        decoder_type: str = "hifigan",
        istft_intermediate_channels: int = 1536,
        istft_layers: int = 8,
        istft_n_fft: Optional[int] = None,
        use_weight_norm: bool = True,
        spks: Optional[int] = None,
        spk_embed_dim: Optional[int] = None,
        global_channels: int = -1,
        encoder_type: str = "learned",
        mel_params: Dict[str, Any] = {},
        encode_segment_window: bool = True,
    ):
        """Initialize WaveGANGenerator.

        Args:
            latent_dim: Channels of z.
            segment_size: Frames of the random segment decoded per item in training.
            encoder_*: See :class:`WaveformEncoder`; the downsample scales must
                multiply to the same hop as the decoder's upsample scales.
            decoder_*: See ESPnet's ``HiFiGANGenerator`` (``decoder_channels`` is also the
                width of the ``istft`` decoder; the other ``decoder_*`` keys are HiFi-GAN's).
            decoder_type: ``hifigan`` (the paper's decoder, ESPnet's HiFi-GAN generator) or
                ``istft`` (:class:`ISTFTDecoder`: Vocos' ConvNeXt backbone and inverse-STFT
                head at the frame rate, several times cheaper).
            istft_intermediate_channels: ConvNeXt inverted-bottleneck width (``istft``).
            istft_layers: ConvNeXt blocks (``istft``).
            istft_n_fft: FFT size and window of the inverse STFT (``istft``; default 4 x hop).
            use_weight_norm: Weight normalisation in encoder and HiFi-GAN decoder.
            spks: Size of the speaker id table (``sids``), or None.
            spk_embed_dim: Size of external speaker embeddings (``spembs``), or None.
            global_channels: Channels of the speaker condition (> 0 when
                ``spks`` or ``spk_embed_dim`` is set).
            encoder_type: ``learned`` (the paper's waveform encoder) or ``mel``: a fixed
                log-mel analysis (:class:`LogMelEncoder`, ESPnet's ``LogMelFbank``) with
                ``latent_dim`` = its mel bands, no KL term: the paper's "inner-GAN" mel vocoder.
            mel_params: ``LogMelFbank`` arguments for ``encoder_type: mel`` (fs, n_fft,
                win_length, n_mels, fmin, fmax, ...; the hop is the encoder's).
            encode_segment_window: In training, encode only the waveform window that
                the decoded segment's posterior depends on (the segment plus the
                encoder's receptive field, see :meth:`WaveformEncoder.receptive_margin`).
                The segment's posterior is the same as from the whole utterance, at a
                fraction of the cost; False encodes whole utterances (for comparison).
        """
        arguments = dict(locals())
        super().__init__()
        names = [n for n in inspect.signature(WaveGANGenerator.__init__).parameters if n != "self"]
        ignored = TRAINING_ARGUMENTS + UNUSED_BY_DECODER.get(decoder_type, ()) + UNUSED_BY_ENCODER.get(encoder_type, ())
        architecture = {n: arguments[n] for n in names if n not in ignored}
        if decoder_type == "istft":  # the n_fft in effect, also when left to its default
            architecture["istft_n_fft"] = istft_n_fft or 4 * math.prod(encoder_downsample_scales)
        self.architecture: Dict[str, Any] = json.loads(json.dumps(architecture, sort_keys=True))
        # The architecture the weights in this module were trained as (see record_architecture):
        # zeros until a wavegan_vae writes it; checkpoints and --init_param carry it along.
        self.register_buffer("trained_architecture", torch.zeros(ARCHITECTURE_RECORD_SIZE))
        self.register_load_state_dict_pre_hook(_keep_record_missing_from_old_checkpoints)
        hop = 1
        for s in encoder_downsample_scales:
            hop *= s
        upsample = 1
        for s in decoder_upsample_scales:
            upsample *= s
        if decoder_type not in DECODER_TYPES:
            raise ValueError(f"decoder_type must be one of {DECODER_TYPES}, got '{decoder_type}'")
        if decoder_type == "hifigan" and hop != upsample:
            raise ValueError(
                f"encoder_downsample_scales {encoder_downsample_scales} (hop {hop}) and "
                f"decoder_upsample_scales {decoder_upsample_scales} (hop {upsample}) must "
                "give the same hop length"
            )
        self.latent_dim = latent_dim
        self.segment_size = segment_size
        self.upsample_factor = hop
        self.speaker = SpeakerCondition(spks, spk_embed_dim, global_channels)
        self.spks = self.speaker.spks
        self.spk_embed_dim = self.speaker.spk_embed_dim
        if encoder_type not in ENCODER_TYPES:
            raise ValueError(f"encoder_type must be one of {ENCODER_TYPES}, got '{encoder_type}'")
        self.encoder_type = encoder_type
        if encoder_type == "mel":
            self.encoder = LogMelEncoder(hop, mel_params)
            if self.encoder.latent_dim != latent_dim:
                raise ValueError(
                    f"encoder_type mel: latent_dim ({latent_dim}) must equal the mel bands "
                    f"(mel_params n_mels: {self.encoder.latent_dim})"
                )
        else:
            self.encoder = WaveformEncoder(
                latent_dim=latent_dim,
                channels=encoder_channels,
                max_channels=encoder_max_channels,
                kernel_size=encoder_kernel_size,
                downsample_scales=encoder_downsample_scales,
                resblock_kernel_size=encoder_resblock_kernel_size,
                resblock_dilations=encoder_resblock_dilations,
                use_weight_norm=use_weight_norm,
            )
        self.decoder_type = decoder_type
        if decoder_type == "istft":
            self.decoder = ISTFTDecoder(
                in_channels=latent_dim,
                hop_length=hop,
                channels=decoder_channels,
                intermediate_channels=istft_intermediate_channels,
                layers=istft_layers,
                n_fft=istft_n_fft or 4 * hop,
                global_channels=self.speaker.channels,
            )
        else:
            self.decoder = HiFiGANGenerator(
                in_channels=latent_dim,
                out_channels=1,
                channels=decoder_channels,
                global_channels=self.speaker.channels,
                kernel_size=decoder_kernel_size,
                upsample_scales=decoder_upsample_scales,
                upsample_kernel_sizes=decoder_upsample_kernel_sizes,
                resblock_kernel_sizes=decoder_resblock_kernel_sizes,
                resblock_dilations=decoder_resblock_dilations,
                use_weight_norm=use_weight_norm,
            )
        self.encode_segment_window = encode_segment_window
        # Set by optimize_for_inference: decode through the tiled synthesis path.
        self.synthesis_tile_elements: Optional[int] = None

    def record_architecture(self) -> None:
        """Mark the weights as trained with this module's own architecture (``wavegan_vae`` does)."""
        data = json.dumps(self.architecture, sort_keys=True).encode("utf-8")
        if len(data) > ARCHITECTURE_RECORD_SIZE:
            raise ValueError(f"the WaveGAN architecture takes {len(data)} bytes as JSON, over {ARCHITECTURE_RECORD_SIZE}")
        record = torch.zeros(ARCHITECTURE_RECORD_SIZE)
        record[: len(data)] = torch.tensor(list(data), dtype=torch.float32)
        self.trained_architecture.copy_(record)

    def recorded_architecture(self) -> Optional[Dict[str, Any]]:
        """The architecture the current weights were trained as, or None if no wavegan_vae trained them."""
        data = bytes(int(round(v)) for v in self.trained_architecture.tolist()).rstrip(b"\0")
        return json.loads(data.decode("utf-8")) if data else None

    def optimize_for_inference(
        self, decoder_dtype: torch.dtype = torch.float32, tile_elements: int = DEFAULT_TILE_ELEMENTS
    ) -> "WaveGANGenerator":
        """Prepare the decoder for synthesis only (irreversible; the state dict changes).

        Folds weight normalisation into plain weights, casts the decoder to
        ``decoder_dtype`` and makes :meth:`decode` run the tiled, in-place path of
        :mod:`espnet2_glow_wavegan.wavegan.tiled_decoding`. With float32 the waveform
        equals the unoptimised one up to float rounding; bfloat16 is a faster, lossy
        opt-in (see that module). The ``istft`` decoder has no weight norm and no tiles: its
        backbone is cast to ``decoder_dtype``, its inverse STFT stays in float32.
        """
        if self.decoder_type == "istft":
            if decoder_dtype not in SYNTHESIS_DTYPES:
                raise ValueError(f"decoder_dtype must be torch.float32 or torch.bfloat16, not {decoder_dtype}")
            self.decoder.backbone.to(decoder_dtype)
            return self
        prepare_decoder_for_synthesis(self.decoder, decoder_dtype)
        self.synthesis_tile_elements = tile_elements
        return self

    def encode(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor, sample: bool = True
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Waveform -> latent.

        Args:
            speech: Waveform (B, T_wav).
            speech_lengths: (B,).
            sample: Draw z = mean + eps * std (reparameterised); else z = mean.

        Returns:
            Tensor: z (B, latent_dim, T_frames), T_frames = T_wav // hop + 1, zero on padding.
            Tensor: Mean (B, latent_dim, T_frames).
            Tensor: Log standard deviation (B, latent_dim, T_frames).
            Tensor: Frame mask (B, 1, T_frames).
        """
        mean, log_std, mask = self.encoder(speech, speech_lengths)
        z = mean
        if sample and self.encoder_type == "learned":
            z = sample_posterior(mean, log_std, mask)
        return z, mean, log_std, mask

    def decode(
        self, z: torch.Tensor, g: Optional[torch.Tensor] = None, chunk_frames: int = 0, context_frames: int = 32
    ) -> torch.Tensor:
        """Latent (B, latent_dim, T_frames) -> waveform (B, 1, T_frames * hop).

        With ``chunk_frames`` > 0, a longer latent is decoded in chunks of that many
        frames, each with ``context_frames`` of latent on both sides that are decoded and
        dropped, so memory stays bounded for very long inputs. The HiFi-GAN decoder's
        receptive field is shorter than the default context, so the seams are inaudible
        (the tests bound the difference to the one-pass output); the ``istft`` decoder
        gets at least its exact context (backbone reach plus the inverse STFT's window
        overlap, :meth:`ISTFTDecoder.context_frames`), so chunks equal one pass.
        """
        frames = z.size(2)
        if chunk_frames <= 0 or frames <= chunk_frames:
            return self._decode_once(z, g)
        if self.decoder_type == "istft":
            context_frames = max(context_frames, self.decoder.context_frames())
        hop = self.upsample_factor
        pieces = []
        for start in range(0, frames, chunk_frames):
            end = min(start + chunk_frames, frames)
            left, right = max(0, start - context_frames), min(frames, end + context_frames)
            wav = self._decode_once(z[:, :, left:right], g)
            pieces.append(wav[:, :, (start - left) * hop : (end - left) * hop])
        return torch.cat(pieces, dim=-1)

    def _decode_once(self, z: torch.Tensor, g: Optional[torch.Tensor]) -> torch.Tensor:
        if self.synthesis_tile_elements is None:
            return self.decoder(z, g=g)
        return synthesis_decode(self.decoder, z, g, self.synthesis_tile_elements)

    def segment_posterior(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor, start_frames: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q(z|x) on the frames ``[start, start + segment_size)`` of each item.

        With ``encode_segment_window`` only a window of the waveform is encoded: the
        segment plus the encoder's receptive margin on both sides, shifted inside the
        utterance where it would cross an end. Its frames read only samples that the
        whole-utterance encoding reads too (or the same zeros past an end), so the
        result equals ``encode(speech, ...)`` cut to the segment.

        Args:
            speech: Waveform (B, T_wav).
            speech_lengths: (B,).
            start_frames: First frame of each segment (B,).

        Returns:
            Tensor: Mean (B, latent_dim, segment_size), zero past an item's last frame.
            Tensor: Log-std (B, latent_dim, segment_size).
            Tensor: Frame mask (B, 1, segment_size).
        """
        if self.encoder_type == "mel":  # a fixed analysis: as cheap for the whole utterance
            return tuple(padded_segments(x, start_frames, self.segment_size) for x in self.encoder(speech, speech_lengths))
        aligned, frame_lengths = self.encoder.frame_aligned(speech, speech_lengths)
        hop, size = self.upsample_factor, self.segment_size
        frames = aligned.size(1) // hop
        if self.encode_segment_window:
            left, right = self.encoder.receptive_margin()
            # A window of fixed size (the batch's shape, not its lengths: nothing is read
            # back to the host); an item shorter than it is masked past its end.
            window = min(left + size + right, frames)
            widths = frame_lengths.clamp(max=window)
            window_starts = torch.minimum((start_frames - left).clamp(min=0), frame_lengths - widths)
        else:
            window, widths, window_starts = frames, frame_lengths, torch.zeros_like(start_frames)
        windows = padded_segments(aligned.unsqueeze(1), window_starts * hop, window * hop)
        mean, log_std, mask = self.encoder.encode_aligned(windows.squeeze(1), widths)
        offsets = start_frames - window_starts
        return tuple(padded_segments(x, offsets, size) for x in (mean, log_std, mask))

    def forward(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        sids: Optional[torch.Tensor] = None,
        spembs: Optional[torch.Tensor] = None,
        start_frames: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pick a random segment per item, encode it, sample z, decode it.

        Args:
            speech: Waveform (B, T_wav).
            speech_lengths: (B,).
            sids: Speaker ids (B,) or (B, 1), when ``spks`` is set.
            spembs: Speaker embeddings (B, spk_embed_dim), when set.
            start_frames: Segment start frames (B,); random when None.

        Returns:
            Tensor: Decoded segments (B, 1, segment_size * hop).
            Tensor: Matching real waveform segments (B, 1, segment_size * hop).
            Tensor: Segment start frames (B,).
            Tensor: Posterior mean on the segment frames (B, latent_dim, segment_size).
            Tensor: Posterior log-std on the segment frames (B, latent_dim, segment_size).
            Tensor: Segment frame mask (B, 1, segment_size).
        """
        if start_frames is None:
            start_frames = random_segment_starts(num_frames(speech_lengths, self.upsample_factor), self.segment_size)
        mean, log_std, mask = self.segment_posterior(speech, speech_lengths, start_frames)
        z = mean if self.encoder_type == "mel" else sample_posterior(mean, log_std, mask)
        wav_segments = self.decode(z, g=self.speaker(sids, spembs))
        real_segments = real_audio_segments(speech, start_frames, self.segment_size, self.upsample_factor)
        return wav_segments, real_segments, start_frames, mean, log_std, mask


def sample_posterior(mean: torch.Tensor, log_std: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """z = mean + eps * exp(log_std) on valid frames (reparameterised), in float32 under autocast."""
    mean, log_std = mean.float(), log_std.float()
    return (mean + torch.randn_like(mean) * torch.exp(log_std)) * mask


def _keep_record_missing_from_old_checkpoints(module, state_dict, prefix, *args):
    # Checkpoints written before the record existed still load strictly (resume); the
    # module keeps what it has (its own record in a wavegan_vae, zeros elsewhere).
    state_dict.setdefault(prefix + "trained_architecture", module.trained_architecture.clone())


def real_audio_segments(speech: torch.Tensor, start_frames: torch.Tensor, segment_size: int, hop: int) -> torch.Tensor:
    """The waveform (B, 1, segment_size * hop) that decoding frames ``[start, start + segment_size)`` should give.

    The decoder turns frame ``i`` into samples ``[i * hop, (i + 1) * hop)``; past the
    end of the waveform the target is silence.
    """
    return padded_segments(speech.unsqueeze(1), start_frames * hop, segment_size * hop)
