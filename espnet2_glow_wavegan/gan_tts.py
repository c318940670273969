"""What ``wavegan_vae`` and ``glow_wavegan`` share as ESPnet GAN-TTS classes."""

from typing import Any, Dict, Optional, Tuple

import torch
from espnet2.gan_tts.abs_gan_tts import AbsGANTTS
from espnet2.torch_utils.device_funcs import force_gatherable

from espnet2_glow_wavegan.synthesis.checks import check_speaker_inputs, refuse_language_ids
from espnet2_glow_wavegan.utils import check_finite, is_distributed, zero_touching

Batch = Dict[str, Optional[torch.Tensor]]

# Where a state-dict key that does not fit most likely comes from (first match), for the message.
CONFIG_HINTS = (
    ("generator.prior.flow.", "prior_params.flow_conf"),
    ("generator.prior.text_encoder.", "prior_params.text_encoder_conf"),
    ("generator.prior.duration_predictor.", "prior_params.duration_predictor_conf"),
    ("generator.prior.", "prior_params (spks, spk_embed_dim, global_channels, mean_only)"),
    ("generator.wavegan.", "wavegan_params (the wavegan_vae experiment's generator_params)"),
    ("generator.decoder.", "generator_params.decoder"),
    ("generator.encoder.", "generator_params.encoder"),
    ("generator.", "generator_params (latent_dim, spks, spk_embed_dim, global_channels)"),
    ("discriminator.", "discriminator_params or training_phase"),
)


class WaveformGANTTS(AbsGANTTS):
    """A GAN-TTS model that trains on the batch's ``speech`` and synthesises the waveform itself.

    ESPnet's GANTrainer calls :meth:`forward` twice per batch, once per optimiser (the
    discriminator first unless ``generator_first``). Subclasses say what the generator
    computes (:meth:`_run_generator`) and what each turn's loss is
    (:meth:`_generator_turn`, :meth:`_discriminator_turn`); both turns read the
    generator's outputs through :meth:`_generator_outputs`, which computes them once per
    batch.
    """

    def __init__(self, sampling_rate: int, cache_generator_outputs: bool):
        super().__init__()
        self.fs = sampling_rate
        self.langs = None
        self.cache_generator_outputs = cache_generator_outputs
        self._cache = None
        # ESPnet's Text2Speech loads weights non-strictly; this model refuses ones that do not fit.
        self.register_load_state_dict_pre_hook(_refuse_weights_of_another_config)

    @property
    def require_raw_speech(self):
        """ESPnet passes the batch's ``speech`` (the task has no feature extractor: ``odim: 1``)."""
        return True

    @property
    def require_vocoder(self):
        """The model outputs the waveform."""
        return False

    def forward(
        self,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        feats: Optional[torch.Tensor] = None,
        feats_lengths: Optional[torch.Tensor] = None,
        speech: Optional[torch.Tensor] = None,
        speech_lengths: Optional[torch.Tensor] = None,
        sids: Optional[torch.Tensor] = None,
        spembs: Optional[torch.Tensor] = None,
        lids: Optional[torch.Tensor] = None,
        forward_generator: bool = True,
        **kwargs,
    ) -> Dict[str, Any]:
        """One GAN turn.

        Args:
            text: Token ids (B, T_text).
            text_lengths: (B,).
            feats, feats_lengths: Unused (the task runs without a feature extractor).
            speech: Waveform (B, T_wav), or what the model's config says it reads.
            speech_lengths: (B,).
            sids: Speaker ids (B,) or (B, 1).
            spembs: Speaker embeddings (B, spk_embed_dim).
            lids: Language ids: refused (the models have no language table).
            forward_generator: Generator turn (True) or discriminator turn (False).

        Returns:
            Dict[str, Any]: ``loss``, ``stats``, ``weight``, ``optim_idx`` (0: G, 1: D).
        """
        refuse_language_ids(lids)
        if speech is None:
            raise ValueError(f"{type(self).__name__} trains on the batch's 'speech', and this batch has none")
        batch = dict(
            text=text, text_lengths=text_lengths, speech=speech, speech_lengths=speech_lengths, sids=sids, spembs=spembs
        )
        loss, stats = self._generator_turn(batch) if forward_generator else self._discriminator_turn(batch)
        # Every trainable parameter gets a gradient in both turns: DDP expects one for each, and
        # under use_amp ESPnet's GradScaler asserts that the turn's optimiser saw gradients.
        loss = loss + zero_touching(self)
        check_finite(loss, stats, self, forward_generator)
        loss, stats, weight = force_gatherable((loss, stats, text.size(0)), loss.device)
        return {"loss": loss, "stats": stats, "weight": weight, "optim_idx": 0 if forward_generator else 1}

    def check_speaker_inputs(self, sids: Optional[torch.Tensor], spembs: Optional[torch.Tensor]) -> None:
        """Refuse speaker inputs the model does not take: they would be ignored without a word."""
        check_speaker_inputs(self.spks, self.spk_embed_dim, sids=None if sids is None else (),
                             spembs_shape=None if spembs is None else tuple(spembs.shape), required=False)

    def _adapt_old_state_dict(self, state_dict: Dict[str, torch.Tensor], prefix: str) -> None:
        """Bring a state dict of an earlier version of the model up to date, in place."""

    def _generator_outputs(self, batch: Batch) -> Dict[str, Any]:
        """The generator's outputs for this batch: the first turn computes them, the second reuses them.

        Not under torch.distributed: there each turn's backward must go through that
        turn's own forward pass.
        """
        reuse = self.cache_generator_outputs and self.training and not is_distributed()
        if reuse and self._cache is not None:
            outs, self._cache = self._cache, None
            return outs
        outs = self._run_generator(**batch)
        self._cache = outs if reuse else None
        return outs

    def _discriminator_turn(self, batch: Batch) -> Tuple[torch.Tensor, Dict[str, float]]:
        """Real against generated waveform segments."""
        outs = self._generator_outputs(batch)
        return self.gan_loss.discriminator_loss(self.discriminator, outs["wav_hat"], outs["wav_real"])

    def _run_generator(self, **batch) -> Dict[str, Any]:
        raise NotImplementedError

    def _generator_turn(self, batch: Batch) -> Tuple[torch.Tensor, Dict[str, float]]:
        raise NotImplementedError


def _refuse_weights_of_another_config(module, state_dict, prefix, *args) -> None:
    """Load-state-dict pre-hook: the weights must be exactly the model's own keys.

    ESPnet's ``Text2Speech`` loads with ``strict=False``, so weights saved with another
    config (say two flow blocks more) would load partly and synthesise with the rest at
    random; ``init_param`` of a sub-module does not pass through here.
    """
    module._adapt_old_state_dict(state_dict, prefix)
    own = set(module.state_dict())
    given = {key[len(prefix) :] for key in state_dict if key.startswith(prefix)}
    # The WaveGAN's architecture record may be missing from checkpoints written before it.
    missing = sorted(key for key in own - given if not key.endswith("trained_architecture"))
    unexpected = sorted(given - own)
    if missing or unexpected:
        first = (missing or unexpected)[0]
        hint = next((hint for start, hint in CONFIG_HINTS if first.startswith(start)), "tts_conf")
        raise ValueError(
            f"the weights do not fit this {type(module).__name__} config: {len(missing)} of its tensors are missing "
            f"(e.g. {missing[:3]}) and {len(unexpected)} are not its own (e.g. {unexpected[:3]}); the config's "
            f"{hint} probably differ from the ones the weights were trained with"
        )
