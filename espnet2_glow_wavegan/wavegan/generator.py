"""WaveGAN generator: an encoder (waveform -> q(z|x)) and a decoder (z -> waveform), composed by name."""

import inspect
import json
from typing import Any, Dict, Optional, Tuple

import torch
from espnet2.train.class_choices import ClassChoices
from typeguard import typechecked

from espnet2_glow_wavegan.legacy import composed_generator_params
from espnet2_glow_wavegan.speaker import SpeakerCondition
from espnet2_glow_wavegan.synthesis.plan import decode_spans
from espnet2_glow_wavegan.utils import padded_segments, random_segment_starts
from espnet2_glow_wavegan.wavegan.encoder import WaveformEncoder, num_frames
from espnet2_glow_wavegan.wavegan.hifigan_decoder import HiFiGANDecoder
from espnet2_glow_wavegan.wavegan.istft_decoder import ISTFTDecoder
from espnet2_glow_wavegan.wavegan.mel_encoder import LogMelEncoder
from espnet2_glow_wavegan.wavegan.mel_vae_encoder import MelVAEEncoder
from espnet2_glow_wavegan.wavegan.tiled_decoding import DEFAULT_TILE_ELEMENTS

# The components by name (``encoder: {type: ..., conf: {...}}``). Each class owns its settings;
# the generator gives an encoder ``latent_dim``, a decoder ``latent_dim``, the encoder's
# ``hop_length`` and the speaker condition's ``global_channels``.
ENCODERS = ClassChoices("encoder", dict(learned=WaveformEncoder, mel=LogMelEncoder, mel_vae=MelVAEEncoder),
                        default="learned")
DECODERS = ClassChoices("decoder", dict(hifigan=HiFiGANDecoder, istft=ISTFTDecoder), default="hifigan")
# What the generator passes each kind of component (not settings of the component's own).
SET_BY_THE_GENERATOR = {"encoder": ("latent_dim",), "decoder": ("latent_dim", "hop_length", "global_channels")}
# Bytes of the architecture record (UTF-8 JSON), stored one per float32 element: ESPnet's
# checkpoint averaging divides float tensors by their count (identical records average to
# themselves exactly) but only sums integer ones.
ARCHITECTURE_RECORD_SIZE = 4096


def component(choices: ClassChoices, spec: Dict[str, Any], **given) -> torch.nn.Module:
    """Build ``{type: name, conf: {...}}`` from ``choices``, with the generator's ``given`` arguments."""
    if set(spec) - {"type", "conf"}:
        raise ValueError(f"{choices.name}: expected {{type: <name>, conf: {{...}}}}, got keys {sorted(spec)}")
    name = spec.get("type", choices.default)
    if name not in choices.classes:
        raise ValueError(f"{choices.name} type must be one of {tuple(choices.classes)}, got '{name}'")
    conf = dict(spec.get("conf") or {})
    taken = sorted(set(conf) & set(given))
    if taken:
        raise ValueError(f"{choices.name}.conf: {taken} are set by the WaveGAN (latent_dim at its top level)")
    return choices.get_class(name)(**given, **conf)


def resolved_spec(choices: ClassChoices, spec: Dict[str, Any]) -> Dict[str, Any]:
    """``{type, conf}`` with every argument of the component that the weights' meaning depends on, defaults included."""
    name = spec.get("type", choices.default)
    cls = choices.get_class(name)
    # Settings of how a component starts training are not what its trained weights mean.
    left_out = set(SET_BY_THE_GENERATOR[choices.name]) | set(getattr(cls, "initialisation_settings", ()))
    signature = inspect.signature(cls.__init__)
    conf = {k: p.default for k, p in signature.parameters.items()
            if k != "self" and k not in left_out and p.default is not inspect.Parameter.empty}
    conf.update({k: v for k, v in (spec.get("conf") or {}).items() if k not in left_out})
    return {"type": name, "conf": conf}


class WaveGANGenerator(torch.nn.Module):
    """The VAE half of WaveGAN that the generator optimiser trains.

    ``encode`` gives q(z|x) from the raw waveform, ``decode`` turns z (at the frame rate of
    the encoder's hop) back into a waveform. The components are chosen by name: encoders
    ``learned`` (:class:`WaveformEncoder`, the paper's), ``mel`` (:class:`LogMelEncoder`,
    the inner-GAN's mel bridge) and ``mel_vae`` (:class:`MelVAEEncoder`, a learned posterior
    over log-mel frames); decoders ``hifigan`` (:class:`HiFiGANDecoder`, the paper's)
    and ``istft`` (:class:`ISTFTDecoder`). The encoder is speaker-independent (a "universal"
    latent); speaker ids and/or embeddings, when configured, condition only the decoder.
    """

    @typechecked
    def __init__(
        self,
        latent_dim: int = 128,
        segment_size: int = 32,
        encoder: Dict[str, Any] = {"type": "learned", "conf": {}},
        decoder: Dict[str, Any] = {"type": "hifigan", "conf": {}},
        spks: Optional[int] = None,
        spk_embed_dim: Optional[int] = None,
        global_channels: int = -1,
        encode_segment_window: bool = True,
    ):
        """Initialize WaveGANGenerator.

        Args:
            latent_dim: Channels of z (for the ``mel`` encoder: its mel bands).
            segment_size: Frames of the random segment decoded per item in training.
            encoder: ``{type: learned | mel | mel_vae, conf: {...}}``, the encoder class's own arguments.
            decoder: ``{type: hifigan | istft, conf: {...}}``, the decoder class's own arguments.
            spks: Size of the speaker id table (``sids``), or None.
            spk_embed_dim: Size of external speaker embeddings (``spembs``), or None.
            global_channels: Channels of the speaker condition (> 0 when
                ``spks`` or ``spk_embed_dim`` is set).
            encode_segment_window: In training, encode only the waveform window that
                the decoded segment's posterior depends on (the segment plus the
                encoder's receptive field, see :meth:`WaveformEncoder.receptive_margin`).
                The segment's posterior is the same as from the whole utterance, at a
                fraction of the cost; False encodes whole utterances (for comparison).
        """
        super().__init__()
        self.latent_dim = latent_dim
        self.segment_size = segment_size
        self.encode_segment_window = encode_segment_window
        self.speaker = SpeakerCondition(spks, spk_embed_dim, global_channels)
        self.spks = self.speaker.spks
        self.spk_embed_dim = self.speaker.spk_embed_dim
        self.encoder = component(ENCODERS, encoder, latent_dim=latent_dim)
        self.upsample_factor = self.encoder.hop_length
        self.decoder = component(DECODERS, decoder, latent_dim=latent_dim, hop_length=self.upsample_factor,
                                 global_channels=self.speaker.channels)
        # What the weights compute: the composed settings with every default (segment_size and
        # encode_segment_window only change how it trains).
        architecture = dict(latent_dim=latent_dim, encoder=resolved_spec(ENCODERS, encoder),
                            decoder=resolved_spec(DECODERS, decoder), spks=spks, spk_embed_dim=spk_embed_dim,
                            global_channels=global_channels)
        self.architecture: Dict[str, Any] = json.loads(json.dumps(architecture, sort_keys=True))
        # The architecture the weights in this module were trained as (see record_architecture):
        # zeros until a wavegan_vae writes it; checkpoints and --init_param carry it along.
        self.register_buffer("trained_architecture", torch.zeros(ARCHITECTURE_RECORD_SIZE))
        self.register_load_state_dict_pre_hook(_keep_record_missing_from_old_checkpoints)

    @property
    def encoder_type(self) -> str:
        return self.architecture["encoder"]["type"]

    @property
    def decoder_type(self) -> str:
        return self.architecture["decoder"]["type"]

    def record_architecture(self) -> None:
        """Mark the weights as trained with this module's own architecture (``wavegan_vae`` does)."""
        data = json.dumps(self.architecture, sort_keys=True).encode("utf-8")
        if len(data) > ARCHITECTURE_RECORD_SIZE:
            raise ValueError(f"the WaveGAN architecture takes {len(data)} bytes as JSON, over {ARCHITECTURE_RECORD_SIZE}")
        record = torch.zeros(ARCHITECTURE_RECORD_SIZE)
        record[: len(data)] = torch.tensor(list(data), dtype=torch.float32)
        self.trained_architecture.copy_(record)

    def recorded_architecture(self) -> Optional[Dict[str, Any]]:
        """The architecture the current weights were trained as, or None if no wavegan_vae trained them.

        A record of version 0.1 (flat settings) is read in the composed form.
        """
        data = bytes(int(round(v)) for v in self.trained_architecture.tolist()).rstrip(b"\0")
        if not data:
            return None
        record = composed_generator_params(json.loads(data.decode("utf-8")), quiet=True)
        record = dict(record, encoder=resolved_spec(ENCODERS, record["encoder"]),
                      decoder=resolved_spec(DECODERS, record["decoder"]))
        return json.loads(json.dumps({k: record.get(k) for k in self.architecture}, sort_keys=True))

    def optimize_for_inference(
        self, decoder_dtype: torch.dtype = torch.float32, tile_elements: int = DEFAULT_TILE_ELEMENTS
    ) -> "WaveGANGenerator":
        """Prepare the decoder for synthesis only (irreversible; the state dict changes).

        The decoder's own ``optimize_for_inference``: the HiFi-GAN decoder folds weight norm,
        casts to ``decoder_dtype`` and decodes through the tiled, in-place path of
        :mod:`espnet2_glow_wavegan.wavegan.tiled_decoding` (float32: equal to the unoptimised
        waveform up to float rounding; bfloat16: faster and lossy); the ``istft`` decoder casts
        its backbone, its inverse STFT stays in float32.
        """
        self.decoder.optimize_for_inference(decoder_dtype, tile_elements)
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
        if sample and not self.encoder.deterministic:
            z = sample_posterior(mean, log_std, mask)
        return z, mean, log_std, mask

    def decode(
        self, z: torch.Tensor, g: Optional[torch.Tensor] = None, chunk_frames: int = 0, context_frames: int = 0
    ) -> torch.Tensor:
        """Latent (B, latent_dim, T_frames) -> waveform (B, 1, T_frames * hop).

        With ``chunk_frames`` > 0, a longer latent is decoded in chunks of that many frames
        (:func:`espnet2_glow_wavegan.synthesis.plan.decode_spans`, as the ONNX runtime decodes),
        each with the decoder's reach (``decoder.context_frames()``, or ``context_frames`` if
        larger) of latent on both sides, decoded and dropped, so memory stays bounded for very
        long inputs and the chunks equal one pass.
        """
        spans = decode_spans(z.size(2), chunk_frames, max(context_frames, self.decoder.context_frames()))
        if len(spans) == 1:
            return self.decoder(z, g=g)
        hop = self.upsample_factor
        return torch.cat([self.decoder(z[:, :, s.lo : s.hi], g=g)[:, :, s.kept(hop)] for s in spans], dim=-1)

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
        if not hasattr(self.encoder, "encode_aligned"):  # a mel analysis first: as cheap for the whole utterance
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
        z = mean if self.encoder.deterministic else sample_posterior(mean, log_std, mask)
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
