"""What ``wavegan_vae`` and ``glow_wavegan`` share as ESPnet GAN-TTS classes."""

from typing import Any, Dict, Optional, Tuple

import torch
from espnet2.gan_tts.abs_gan_tts import AbsGANTTS
from espnet2.torch_utils.device_funcs import force_gatherable

from espnet2_glow_wavegan.utils import check_finite, is_distributed, zero_touching

Batch = Dict[str, Optional[torch.Tensor]]


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
            lids: Language ids, unsupported (ignored).
            forward_generator: Generator turn (True) or discriminator turn (False).

        Returns:
            Dict[str, Any]: ``loss``, ``stats``, ``weight``, ``optim_idx`` (0: G, 1: D).
        """
        if speech is None:
            raise ValueError(f"{type(self).__name__} trains on the batch's 'speech', and this batch has none")
        batch = dict(
            text=text, text_lengths=text_lengths, speech=speech, speech_lengths=speech_lengths, sids=sids, spembs=spembs
        )
        if forward_generator:
            loss, stats = self._generator_turn(batch)
        else:
            loss, stats = self._discriminator_turn(batch)
            loss = loss + zero_touching(self)  # DDP: every trainable parameter gets a gradient
        check_finite(loss, stats, self, forward_generator)
        loss, stats, weight = force_gatherable((loss, stats, text.size(0)), loss.device)
        return {"loss": loss, "stats": stats, "weight": weight, "optim_idx": 0 if forward_generator else 1}

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
