"""Glow-WaveGAN text-to-speech as an ESPnet GAN-TTS model (``tts: glow_wavegan``)."""

from typing import Any, Dict, List, Optional

import torch
from espnet2.gan_tts.hifigan import HiFiGANMultiScaleMultiPeriodDiscriminator
from typeguard import typechecked

from espnet2_glow_wavegan.gan_tts import WaveformGANTTS
from espnet2_glow_wavegan.glow.prior import FlowPrior, durations_to_path, expand_by_durations
from espnet2_glow_wavegan.legacy import composed_generator_params, composed_prior_params
from espnet2_glow_wavegan.synthesis.checks import (
    check_chunk_sizes,
    check_output_length,
    check_synthesis_knobs,
    check_token_ids,
    is_silent_token,
    refuse_language_ids,
)
from espnet2_glow_wavegan.synthesis.engine import Synthesizer
from espnet2_glow_wavegan.synthesis.plan import synthesis_knobs
from espnet2_glow_wavegan.synthesis.stream import SynthesisStream
from espnet2_glow_wavegan.synthesis.torch_backend import TorchStages
from espnet2_glow_wavegan.utils import eval_mode, frame_mask, padded_segments, random_segment_starts
from espnet2_glow_wavegan.wavegan.generator import WaveGANGenerator, real_audio_segments, sample_posterior
from espnet2_glow_wavegan.wavegan.loss import WaveformGANLoss
from espnet2_glow_wavegan.wavegan.tiled_decoding import DEFAULT_TILE_ELEMENTS
from espnet2_glow_wavegan.wavegan.wavegan_vae import DEFAULT_DISCRIMINATOR_PARAMS

TRAINING_PHASES = ("prior", "joint")
SPEECH_INPUTS = ("waveform", "posterior_stats")


class GlowWaveGANGenerator(torch.nn.Module):
    """What the generator optimiser sees: the WaveGAN and the flow prior.

    ``wavegan`` has exactly the layout of ``wavegan_vae``'s ``generator``, so a
    trained WaveGAN loads with
    ``--init_param <wavegan.pth>:tts.generator:tts.generator.wavegan``.
    """

    def __init__(self, vocabs: int, wavegan_params: Dict[str, Any], prior_params: Dict[str, Any]):
        super().__init__()
        self.wavegan = WaveGANGenerator(**composed_generator_params(wavegan_params, "wavegan_params"))
        self.prior = FlowPrior(vocabs=vocabs, latent_dim=self.wavegan.latent_dim,
                               **composed_prior_params(prior_params))
        self.upsample_factor = self.wavegan.upsample_factor


def flat_settings(settings: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    """``{"decoder": {"conf": {"channels": 32}}}`` -> ``{"decoder.conf.channels": 32}``."""
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            flat.update(flat_settings(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def rows(x: Optional[torch.Tensor], index) -> Optional[torch.Tensor]:
    """``x[index]``, or None for an input not given."""
    return None if x is None else x[index]


class NoDiscriminator(torch.nn.Module):
    """Stands in for the discriminator in the ``prior`` phase, where nothing is adversarial.

    ESPnet's GAN task builds its second optimiser over ``tts.discriminator``, which
    needs a parameter; this one only ever gets zero gradients (so the optimiser leaves it
    at 0, and ESPnet's GradScaler under ``use_amp`` finds gradients to check), and prior
    checkpoints and packed models do not carry the WaveGAN's 51 M discriminator weights.
    """

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))


class GlowWaveGAN(WaveformGANTTS):
    """Glow-TTS flow prior over the latent of a WaveGAN, decoded by the WaveGAN's decoder.

    Training phases (``training_phase``):

    * ``prior`` (the paper): the WaveGAN is frozen; its encoder turns the
      waveform into the target latent and the prior is trained by maximum
      likelihood plus the duration loss. The discriminator turn does nothing.
    * ``joint`` (beyond the paper): as ``prior``, and the decoder is fine-tuned
      with the GAN losses on latents sampled from the text-conditioned prior
      (aligned to the real audio by MAS) against the real waveform segment,
      closing the gap between encoder latents and prior latents. The encoder
      stays frozen.

    Synthesis: text -> durations (``length_scale``) -> prior sample
    (``noise_scale``) -> inverse flow -> z -> decoder -> waveform.
    """

    @typechecked
    def __init__(
        self,
        idim: int,
        odim: int,
        sampling_rate: int = 22050,
        wavegan_params: Optional[Dict[str, Any]] = None,
        prior_params: Dict[str, Any] = {},
        discriminator_params: Dict[str, Any] = DEFAULT_DISCRIMINATOR_PARAMS,
        training_phase: str = "prior",
        target_latent: str = "sample",
        speech_input: str = "waveform",
        lambda_mle: float = 1.0,
        lambda_dur: float = 1.0,
        joint_gan_loss_params: Dict[str, Any] = {},
        joint_noise_scale: float = 0.667,
        noise_scale: float = 0.667,
        length_scale: float = 1.0,
        max_output_seconds: float = 600.0,
        att_w_max_elements: int = 2**20,
        decode_chunk_frames: int = 1000,
        cache_generator_outputs: bool = True,
    ):
        """Initialize GlowWaveGAN.

        Args:
            idim: Vocabulary size.
            odim: Feature dimension from the task (1: raw waveform, no feature extractor).
            sampling_rate: Output sampling rate (``fs``).
            wavegan_params: The ``generator_params`` of the ``wavegan_vae`` experiment whose WaveGAN
                this model's prior models and decodes with. Not written in a config: the recipe's
                stage 7c passes them from that experiment's ``config.yaml`` (``--tts_conf
                wavegan_params=...``), and ESPnet writes them into this experiment's ``config.yaml``.
            prior_params: :class:`FlowPrior` arguments (``latent_dim`` comes from the WaveGAN).
            discriminator_params: ESPnet ``HiFiGANMultiScaleMultiPeriodDiscriminator``
                arguments; ``joint`` only (its discriminator starts from the ``wavegan_vae``'s,
                so stage 7c passes that experiment's, as for ``wavegan_params``).
            training_phase: ``prior`` or ``joint`` (see the class docstring).
            target_latent: ``sample`` (z ~ q(z|x), the paper's p(z)) or ``mean`` (E[z|x]).
            speech_input: What a training batch's ``speech`` holds: ``waveform`` (raw
                audio, encoded by the frozen WaveGAN encoder at every step) or
                ``posterior_stats`` (B, T_frames, 2 * latent_dim): the encoder's mean and
                log-std per frame, stored once by the recipe's latent extraction
                (``espnet2_glow_wavegan.recipe.extract_latents``), so that a step costs
                no encoder pass. ``joint`` needs the waveform. Synthesis never reads it.
            lambda_mle: Weight of the flow negative log-likelihood.
            lambda_dur: Weight of the duration predictor loss.
            joint_gan_loss_params: ``joint`` only: :class:`WaveformGANLoss` arguments (ESPnet's
                adversarial, feature-matching and mel losses and their weights) for fine-tuning
                the decoder, as in the WaveGAN config; unset ones take HiFi-GAN's values.
            joint_noise_scale: Prior temperature of the latents the decoder is
                fine-tuned on in ``joint`` (the synthesis default).
            noise_scale: Default prior temperature at synthesis.
            length_scale: Default duration multiplier at synthesis (> 1: slower).
            max_output_seconds: Synthesis refuses to make more audio than this in one call
                (a mistyped ``length_scale`` would otherwise run for hours); per call it can
                be raised through ``decode_conf``.
            att_w_max_elements: Synthesis returns the hard alignment ``att_w`` (T_feats x
                T_text) only up to this size: ESPnet's ``Text2Speech`` derives durations from
                it in time cubic in the text length, and its CLI draws it. The durations are
                returned anyway, so long texts stay linear.
            decode_chunk_frames: Synthesis decodes longer latents in chunks of this many
                frames (bounded memory for very long text); 0 decodes in one pass.
            cache_generator_outputs: Reuse the first turn's decoder output in the second.
        """
        super().__init__(sampling_rate, cache_generator_outputs and training_phase == "joint")
        if training_phase not in TRAINING_PHASES:
            raise ValueError(f"training_phase must be one of {TRAINING_PHASES}, got '{training_phase}'")
        if target_latent not in ("sample", "mean"):
            raise ValueError(f"target_latent must be 'sample' or 'mean', got '{target_latent}'")
        if speech_input not in SPEECH_INPUTS:
            raise ValueError(f"speech_input must be one of {SPEECH_INPUTS}, got '{speech_input}'")
        if training_phase == "joint" and speech_input != "waveform":
            raise ValueError(
                "training_phase 'joint' fine-tunes the decoder against the real audio: it needs "
                "speech_input: waveform (the batch's speech must be the waveform)"
            )
        if not wavegan_params:
            raise ValueError(
                "glow_wavegan models the latent of a trained wavegan_vae and needs its settings: give "
                "tts_conf.wavegan_params, the generator_params of that experiment's config.yaml. The recipe's stage 7c "
                "does; by hand: --tts_conf wavegan_params=$(python -m espnet2_glow_wavegan.recipe.vae_settings "
                "exp/tts_<wavegan_vae tag>/config.yaml)"
            )
        self.generator = GlowWaveGANGenerator(idim, wavegan_params, prior_params)
        wavegan, prior = self.generator.wavegan, self.generator.prior
        for key in ("spks", "spk_embed_dim"):
            if getattr(wavegan, key) and getattr(wavegan, key) != getattr(prior, key):
                raise ValueError(
                    f"the WaveGAN decoder is conditioned on {key}={getattr(wavegan, key)}: "
                    f"set the same {key} in prior_params (got {getattr(prior, key)})"
                )
        self.training_phase = training_phase
        self.target_latent = target_latent
        self.speech_input = speech_input
        self.lambda_mle = lambda_mle
        self.lambda_dur = lambda_dur
        self.joint_noise_scale = joint_noise_scale
        check_synthesis_knobs(noise_scale, length_scale, max_output_seconds)
        self.noise_scale = noise_scale
        self.length_scale = length_scale
        self.max_output_seconds = max_output_seconds
        self.att_w_max_elements = att_w_max_elements
        self.decode_chunk_frames = decode_chunk_frames
        if training_phase == "joint":
            self.discriminator = HiFiGANMultiScaleMultiPeriodDiscriminator(**discriminator_params)
            self.gan_loss = WaveformGANLoss(**joint_gan_loss_params)
        else:
            self.discriminator = NoDiscriminator()
        # Frozen: the encoder always (it defines the latent the prior models), the
        # decoder unless it is fine-tuned jointly.
        for p in (wavegan.parameters() if training_phase == "prior" else wavegan.encoder.parameters()):
            p.requires_grad_(False)
        self._wavegan_checked = False
        # Token ids that voice nothing; filled by set_token_list when ESPnet builds the model.
        self.register_buffer("silent_token_ids", torch.zeros(0, dtype=torch.long), persistent=False)
        self.spks = prior.spks
        self.spk_embed_dim = prior.spk_embed_dim

    def forward(self, *args, **kwargs) -> Dict[str, Any]:
        """One GAN turn (see :meth:`WaveformGANTTS.forward`); the first training turn checks the WaveGAN."""
        if self.training and not self._wavegan_checked:
            self.check_wavegan_initialised()
        return super().forward(*args, **kwargs)

    def _run_generator(self, text, text_lengths, speech, speech_lengths, sids, spembs):
        """Prior likelihood of the target latent; in ``joint``, also a decoded prior-latent segment."""
        prior = self.generator.prior
        z, z_mask = self._target_latent(speech, speech_lengths)
        g = prior.speaker(sids, spembs)
        prior_out = prior(text, text_lengths, z, z_mask.sum(dim=(1, 2)).long(), g=g)
        outs = {"prior": prior_out}
        if self.training_phase == "joint":
            outs.update(self._decode_prior_latent(prior_out, speech, sids, spembs, g))
        return outs

    def check_wavegan_initialised(self) -> None:
        """Refuse to train over a WaveGAN that ``wavegan_vae`` did not train as this architecture.

        ``--init_param`` copies a wavegan_vae generator into ``generator.wavegan``, its
        architecture record included; an untrained WaveGAN (no ``--init_param``) has none,
        and one trained with other ``generator_params`` (same tensor shapes, say other
        dilations) records other settings. Either would train the prior on a latent that
        the packed decoder does not decode.
        """
        wavegan = self.generator.wavegan
        recorded = wavegan.recorded_architecture()
        if recorded is None:
            raise ValueError(
                "tts.generator.wavegan was not initialised from a trained wavegan_vae: pass --init_param "
                "<wavegan_vae model>.pth:tts.generator:tts.generator.wavegan (the recipe's stage 7 does). "
                "Trained over an untrained, frozen WaveGAN, the prior would model a meaningless latent."
            )
        trained, configured = flat_settings(recorded), flat_settings(wavegan.architecture)
        differing = sorted(k for k in set(trained) | set(configured) if trained.get(k) != configured.get(k))
        if differing:
            details = "; ".join(
                f"{k}: {trained.get(k)!r} in the WaveGAN, {configured.get(k)!r} in wavegan_params" for k in differing
            )
            raise ValueError(
                "tts_conf.wavegan_params differ from the generator_params of the wavegan_vae loaded into "
                f"tts.generator.wavegan ({details}). Pass that experiment's "
                "settings: --tts_conf wavegan_params=$(python -m espnet2_glow_wavegan.recipe.vae_settings "
                "exp/tts_<tag>/config.yaml)."
            )
        self._wavegan_checked = True

    def _target_latent(self, speech, speech_lengths):
        """The latent the prior learns to model (B, latent_dim, T_frames), and its frame mask."""
        if self.speech_input == "posterior_stats":
            mean, log_std, mask = self._stored_posterior(speech, speech_lengths)
        else:
            if speech.dim() != 2:
                raise ValueError(
                    f"speech_input is 'waveform' but the batch's speech has shape {tuple(speech.shape)}, "
                    "not (B, T_wav): for stored posterior statistics set speech_input: posterior_stats"
                )
            with torch.no_grad():
                mean, log_std, mask = self.generator.wavegan.encoder(speech, speech_lengths)
        if self.target_latent == "mean":
            return mean, mask
        return sample_posterior(mean, log_std, mask), mask

    def _stored_posterior(self, stats, frame_lengths):
        latent_dim = self.generator.wavegan.latent_dim
        if stats.dim() != 3 or stats.size(2) != 2 * latent_dim:
            hint = (
                " (a waveform? point the training data at the extracted stats.scp, type kaldi_ark, "
                "or set speech_input: waveform)"
                if stats.dim() == 2
                else " (extracted with a WaveGAN of another latent_dim?)"
            )
            raise ValueError(
                "speech_input is 'posterior_stats': the batch's speech must be the stored posterior "
                f"(B, T_frames, 2 * latent_dim = {2 * latent_dim}), got shape {tuple(stats.shape)}{hint}"
            )
        stats = stats.transpose(1, 2).float()
        mask = frame_mask(frame_lengths, stats.size(2), stats.dtype)
        mean, log_std = (stats * mask).split(latent_dim, dim=1)
        return mean, log_std, mask

    def _joint_latent(self, prior_out, g):
        """A latent the prior would synthesise along the MAS path: drawn as at synthesis (no dropout)."""
        with torch.no_grad(), eval_mode(self.generator.prior.flow):
            return self.generator.prior.sample_aligned(
                prior_out["mean_y"], prior_out["log_std_y"], prior_out["z_lengths"], g=g, noise_scale=self.joint_noise_scale
            )

    def _decode_prior_latent(self, prior_out, speech, sids, spembs, g):
        """Decode a random segment of a prior-sampled latent aligned to the real audio."""
        wavegan, lengths = self.generator.wavegan, prior_out["z_lengths"]
        z_hat = self._joint_latent(prior_out, g)
        start_frames = random_segment_starts(lengths, wavegan.segment_size)
        z_segments = padded_segments(z_hat, start_frames, wavegan.segment_size)
        wav_hat = wavegan.decode(z_segments, g=wavegan.speaker(sids, spembs))
        wav_real = real_audio_segments(speech, start_frames, wavegan.segment_size, wavegan.upsample_factor)
        return {"wav_hat": wav_hat, "wav_real": wav_real}

    def _generator_turn(self, batch):
        outs = self._generator_outputs(batch)
        prior_out = outs["prior"]
        mle_loss = self.lambda_mle * prior_out["mle_loss"]
        dur_loss = self.lambda_dur * prior_out["duration_loss"]
        loss = mle_loss + dur_loss
        stats = dict(generator_mle_loss=mle_loss.detach(), generator_dur_loss=dur_loss.detach())
        if self.training_phase == "joint":
            gan_loss, gan_stats = self.gan_loss.generator_loss(self.discriminator, outs["wav_hat"], outs["wav_real"])
            loss = loss + gan_loss
            stats.update(gan_stats)
        stats["generator_loss"] = loss.detach()
        return loss, stats

    def _adapt_old_state_dict(self, state_dict, prefix):
        # Prior checkpoints from before the stand-in discriminator carry the WaveGAN's.
        if isinstance(self.discriminator, NoDiscriminator):
            for key in [k for k in state_dict if k.startswith(prefix + "discriminator.")]:
                if key != prefix + "discriminator.unused":
                    del state_dict[key]
            state_dict.setdefault(prefix + "discriminator.unused", torch.zeros(1))

    def _discriminator_turn(self, batch):
        if self.training_phase == "prior":
            # Nothing is adversarial, but ESPnet's GANTrainer backpropagates every turn.
            zero = torch.zeros((), device=batch["text"].device)
            return zero, dict(discriminator_loss=zero)
        return super()._discriminator_turn(batch)

    def set_token_list(self, token_list: List[str]) -> None:
        """Learn which token ids voice nothing (``<blank>``, ``<unk>``, spaces, punctuation).

        ESPnet's tasks pass only the vocabulary size to a model; the package's registration
        hands it the task's token list when ESPnet builds the model (training and
        ``Text2Speech``), so that synthesis can refuse text with nothing to speak.
        """
        silent = [i for i, token in enumerate(token_list) if is_silent_token(token)]
        self.silent_token_ids = torch.tensor(silent, dtype=torch.long, device=self.silent_token_ids.device)

    def optimize_for_inference(
        self, decoder_dtype: torch.dtype = torch.float32, tile_elements: int = DEFAULT_TILE_ELEMENTS
    ) -> "GlowWaveGAN":
        """Prepare for synthesis only (irreversible; the state dict changes).

        Folds weight normalisation of the decoder and the flow into plain weights and
        decodes through the tiled, in-place path of
        :mod:`espnet2_glow_wavegan.wavegan.tiled_decoding`, e.g.
        ``t2s.model.tts.optimize_for_inference()``. With float32 (default) the waveform
        matches the unoptimised model up to float rounding (tested);
        ``decoder_dtype=torch.bfloat16`` runs the decoder in bfloat16, faster on CPUs
        with AVX512-BF16/AMX and lossy (about 0.3% of the waveform RMS).
        """
        self.generator.wavegan.optimize_for_inference(decoder_dtype, tile_elements)
        self.generator.prior.flow.remove_weight_norm()
        return self.eval()

    def inference(
        self,
        text: torch.Tensor,
        feats: Optional[torch.Tensor] = None,
        sids: Optional[torch.Tensor] = None,
        spembs: Optional[torch.Tensor] = None,
        durations: Optional[torch.Tensor] = None,
        noise_scale: Optional[float] = None,
        length_scale: Optional[float] = None,
        use_teacher_forcing: bool = False,
        max_output_seconds: Optional[float] = None,
        noise: Optional[torch.Tensor] = None,
        **kwargs,
    ) -> Dict[str, torch.Tensor]:
        """Synthesise one utterance.

        ESPnet's ``Text2Speech`` passes ``noise_scale``/``length_scale`` from its
        ``decode_conf`` (e.g. ``t2s(text, decode_conf={"noise_scale": 0.5})``);
        unset knobs take the model's configured defaults.

        Args:
            text: Token ids (T_text,).
            feats: Reference waveform (T_wav,) or (T_wav, 1); with
                ``use_teacher_forcing`` its MAS durations replace the predicted ones.
            sids: Speaker id (1,).
            spembs: Speaker embedding (spk_embed_dim,).
            durations: Frames per token (T_text,), overriding the predictor.
            noise_scale: Prior temperature (0: deterministic).
            length_scale: Duration multiplier (> 1: slower).
            use_teacher_forcing: Take durations from ``feats`` (needs ``feats``).
            max_output_seconds: Longest output allowed (default: the config's).
            noise: The standard-normal draw (1, latent_dim, T_feats) to use instead of a fresh one.

        Raises:
            ValueError: a knob outside its range, text with nothing to speak, speaker inputs
                the model does not take, language ids (``lids``: no language table), or an
                output longer than ``max_output_seconds``; the message names the input and
                its valid range.

        Returns:
            Dict[str, Tensor]: ``wav`` (T_feats * hop,), ``duration`` (T_text,),
            ``feat_gen`` z (T_feats, latent_dim), and ``att_w`` the hard alignment
            (T_feats, T_text) when it has at most ``att_w_max_elements`` elements.
        """
        refuse_language_ids(kwargs.get("lids"))
        if use_teacher_forcing and durations is None:
            self._knobs(noise_scale, length_scale, max_output_seconds)
            self.check_speaker_inputs(sids, spembs)
            self.check_text(text)
            durations = self._teacher_forced_durations(text, feats, sids, spembs)
        engine = Synthesizer(TorchStages(self))
        sentence = engine.sentence(text, sids, spembs, durations, noise_scale, length_scale, max_output_seconds)
        wav, z = engine.one_pass(sentence, noise=noise)
        durations, frames = sentence.durations, sentence.frames
        out = dict(wav=wav, duration=durations, feat_gen=z[0].transpose(0, 1))
        if frames * sentence.tokens <= self.att_w_max_elements:
            out["att_w"] = durations_to_path(durations.view(1, -1), z.new_ones(1, 1, sentence.tokens), frames)[0]
        return out

    def _knobs(self, noise_scale, length_scale, max_output_seconds):
        """The synthesis knobs of a call, unset ones from the config, checked."""
        defaults = dict(noise_scale=self.noise_scale, length_scale=self.length_scale,
                        max_output_seconds=self.max_output_seconds)
        return synthesis_knobs(defaults, noise_scale, length_scale, max_output_seconds)

    def check_text(self, text: torch.Tensor) -> None:
        """Refuse token ids (T_text,) with nothing to synthesise: empty, all unknown, or silent symbols only."""
        silent = self.silent_token_ids.tolist() if self.silent_token_ids.numel() else ()
        check_token_ids(text.tolist(), set(silent))

    def _teacher_forced_durations(self, text, feats, sids, spembs) -> torch.Tensor:
        """Frames per token (T_text,) that MAS aligns with the reference waveform ``feats`` (use_teacher_forcing)."""
        if feats is None:
            raise ValueError("use_teacher_forcing needs the reference waveform (speech)")
        wavegan, prior = self.generator.wavegan, self.generator.prior
        text = text.view(1, -1)
        wav = feats.reshape(1, -1).float()
        z, _, _, z_mask = wavegan.encode(wav, torch.tensor([wav.size(1)], device=wav.device), sample=False)
        return prior(text, torch.tensor([text.size(1)], device=text.device), z, z_mask.sum(dim=(1, 2)).long(),
                     g=prior.speaker(sids, spembs))["durations"][0]

    def check_output_length(self, frames: int, length_scale: float, max_output_seconds: float, item: str = "") -> None:
        """Refuse an output of ``frames`` latent frames longer than ``max_output_seconds`` (``item`` prefixes the message)."""
        check_output_length(frames, self.generator.wavegan.upsample_factor, self.fs, length_scale, max_output_seconds,
                            item)

    @torch.no_grad()
    def inference_stream(
        self,
        text: torch.Tensor,
        sids: Optional[torch.Tensor] = None,
        spembs: Optional[torch.Tensor] = None,
        durations: Optional[torch.Tensor] = None,
        noise_scale: Optional[float] = None,
        length_scale: Optional[float] = None,
        max_output_seconds: Optional[float] = None,
        chunk_frames: int = 256,
        first_chunk_frames: int = 16,
        noise: Optional[torch.Tensor] = None,
    ) -> SynthesisStream:
        """Synthesise one utterance as a stream of waveform chunks (iterate the result).

        The text encoder and the durations run here for a text within one text-encoder window
        (``synthesis_window_tokens`` and its contexts), for a longer one on its first window, the
        next windows when the stream reaches them (see ``docs/synthesis.md``). Each chunk runs the
        inverse flow and the decoder only as far as it needs, with their exact context on both
        sides, and the noise comes from one source per sentence, drawn in the same order as
        :meth:`inference` draws it, so the concatenated chunks equal :meth:`inference`'s waveform
        (to float rounding) whatever the chunk sizes. ``espnet2_glow_wavegan.bin.synthesize``
        streams a text sentence by sentence.

        Args:
            text, sids, spembs, durations, noise_scale, length_scale, max_output_seconds: As
                :meth:`inference`, with the same checks, raised here (a long text's length: when
                the stream reaches the window that makes it too long).
            chunk_frames: Largest chunk, in latent frames (``hop`` samples each).
            first_chunk_frames: Frames of the first chunk, small for an early first sample; the
                next chunks double in size up to ``chunk_frames``.
            noise: The standard-normal draw (1, latent_dim, T_feats) to use instead of a fresh one.

        Returns:
            SynthesisStream: yields waveform chunks (n_samples,); its ``durations`` (T_text,) and
            ``num_samples`` (reading them encodes the rest of a long text) and ``sampling_rate``.
        """
        check_chunk_sizes(chunk_frames, first_chunk_frames)
        engine = Synthesizer(TorchStages(self))
        sentence = engine.sentence(text, sids, spembs, durations, noise_scale, length_scale, max_output_seconds)
        return engine.stream(sentence, noise=noise, chunk_frames=chunk_frames, first_chunk_frames=first_chunk_frames)

    @torch.no_grad()
    def batch_inference(
        self,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        sids: Optional[torch.Tensor] = None,
        spembs: Optional[torch.Tensor] = None,
        durations: Optional[torch.Tensor] = None,
        noise_scale: Optional[float] = None,
        length_scale: Optional[float] = None,
        max_output_seconds: Optional[float] = None,
        noise: Optional[torch.Tensor] = None,
    ) -> List[Dict[str, torch.Tensor]]:
        """Synthesise a padded batch of texts in one pass; each output is that text's :meth:`inference` output.

        Every convolution reads zeros past each item's end, as it pads an item alone, so with
        ``noise_scale`` 0 (or the same noise) an item's waveform equals its batch-1 synthesis
        up to float summation order. Texts too long for one text-encoder window (see
        ``synthesis_window_tokens``) are synthesised alone. Sort texts by length before batching:
        a batch costs what its longest item costs, times its size.

        Args:
            text: Token ids (B, T_text), padded.
            text_lengths: (B,).
            sids: Speaker ids (B,) or (B, 1). spembs: Speaker embeddings (B, spk_embed_dim).
            durations: Frames per token (B, T_text), overriding the predictor.
            noise_scale, length_scale, max_output_seconds: As :meth:`inference`, for every item.
            noise: The standard-normal draw (B, latent_dim, max T_feats) to use.

        Raises:
            ValueError: as :meth:`inference`, the message starting with the item's index.

        Returns:
            List[Dict[str, Tensor]]: per item, :meth:`inference`'s outputs.
        """
        noise_scale, length_scale, max_output_seconds = self._knobs(noise_scale, length_scale, max_output_seconds)
        self.check_speaker_inputs(sids, spembs)
        prior = self.generator.prior
        sizes = [int(n) for n in text_lengths]
        for b, size in enumerate(sizes):
            try:
                self.check_text(text[b, :size])
            except ValueError as e:
                raise ValueError(f"item {b} of the batch: {e}") from None
        batch = len(sizes)
        sids = None if sids is None else sids.view(batch, -1)[:, 0]
        knobs = dict(noise_scale=noise_scale, length_scale=length_scale, max_output_seconds=max_output_seconds)
        outs = {}
        # The windowed text encoder of a long text takes one text at a time.
        alone = [b for b, size in enumerate(sizes) if prior.windowed(size)]
        for b in alone:
            try:
                outs[b] = self.inference(text[b, : sizes[b]], sids=rows(sids, b), spembs=rows(spembs, b),
                                         durations=None if durations is None else durations[b, : sizes[b]],
                                         noise=None if noise is None else noise[b : b + 1], **knobs)
            except ValueError as e:
                raise ValueError(f"item {b} of the batch: {e}") from None
        rest = [b for b in range(batch) if b not in outs]
        if rest:
            index = torch.tensor(rest, device=text.device)
            padded = self._padded_batch(text[index], [sizes[b] for b in rest], rows(sids, index), rows(spembs, index),
                                        rows(durations, index), rows(noise, index),
                                        names=[f"item {b} of the batch: " for b in rest], **knobs)
            outs.update(zip(rest, padded))
        return [outs[b] for b in range(batch)]

    def _padded_batch(self, text, sizes, sids, spembs, durations, noise, names, noise_scale, length_scale,
                      max_output_seconds):
        """:meth:`batch_inference` of checked texts that each fit one text-encoder window."""
        prior, wavegan = self.generator.prior, self.generator.wavegan
        text = text[:, : max(sizes)]
        g = prior.speaker(sids, spembs)
        mean, log_std, log_dur, text_mask = prior.encode_text(text, torch.tensor(sizes, device=text.device), g)
        if durations is None:
            durations = prior.predict_durations(log_dur, text_mask, length_scale)
        durations = durations[:, : text.size(1)].long().to(text.device) * text_mask.squeeze(1).long()
        frames = durations.sum(dim=1)
        for name, n in zip(names, frames.tolist()):
            self.check_output_length(n, length_scale, max_output_seconds, item=name)
        longest = int(frames.max())
        mean_y, log_std_y = (expand_by_durations(x, durations, longest) for x in (mean, log_std))
        z = prior.sample_aligned(mean_y, log_std_y, frames, g=g, noise_scale=noise_scale,
                                 noise=None if noise is None else noise[:, :, :longest])
        wavs = wavegan.decoder.decode_padded(z, frames, g=wavegan.speaker(sids, spembs))
        outs = []
        for b, (size, n) in enumerate(zip(sizes, frames.tolist())):
            out = dict(wav=wavs[b].reshape(-1), duration=durations[b, :size], feat_gen=z[b, :, :n].transpose(0, 1))
            if n * size <= self.att_w_max_elements:
                out["att_w"] = durations_to_path(durations[b : b + 1, :size], text_mask[b : b + 1, :, :size], n)[0]
            outs.append(out)
        return outs
