"""The synthesis engine's torch backend: the stages of a ``GlowWaveGAN`` on torch tensors.

The stages are the ones ``onnx/graphs.py`` exports (the text encoder on a window, the sentence
stage, the flow's blocks, the decoder), so the two backends compute the same numbers. Speaker
inputs are checked without reading ids back from the device, as the model always has.
"""

from typing import List, Optional

import torch

from espnet2_glow_wavegan.glow.prior import expand_by_durations, gaussian_sample
from espnet2_glow_wavegan.synthesis.checks import check_durations
from espnet2_glow_wavegan.synthesis.engine import Settings


class TorchStages:
    """The engine's backend over ``model`` (a ``GlowWaveGAN``)."""

    def __init__(self, model):
        self.model = model
        self.prior, self.wavegan = model.generator.prior, model.generator.wavegan

    @property
    def settings(self) -> Settings:  # read at each call: set_token_list and the knobs may change after building
        m, prior = self.model, self.prior
        return Settings(
            sampling_rate=m.fs, hop_length=self.wavegan.upsample_factor,
            vocabulary=prior.text_encoder.emb.num_embeddings, silent_token_ids=frozenset(m.silent_token_ids.tolist()),
            decoder_context_frames=self.wavegan.decoder.context_frames(), decode_chunk_frames=m.decode_chunk_frames,
            synthesis_window_tokens=prior.synthesis_window_tokens,
            synthesis_window_context=prior.synthesis_window_context, squeeze_factor=prior.squeeze_factor,
            noise_scale=m.noise_scale, length_scale=m.length_scale, max_output_seconds=m.max_output_seconds)

    def token_ids(self, ids: torch.Tensor) -> List[int]:
        return ids.view(-1).tolist()

    def speakers(self, sids: Optional[torch.Tensor], spembs: Optional[torch.Tensor]) -> dict:
        self.model.check_speaker_inputs(sids, spembs)
        return dict(sids=sids, spembs=spembs)

    def encode_text(self, ids: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
        window = ids.view(1, -1)[:, lo:hi]
        return self.prior._encode(window, window.new_ones(1, 1, hi - lo, dtype=torch.float32))

    def join(self, pieces: List[torch.Tensor]) -> torch.Tensor:
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=2)

    def sentence(self, h: torch.Tensor, length_scale: float, speakers: dict) -> dict:
        prior = self.prior
        g = prior.speaker(speakers["sids"], speakers["spembs"])
        mask = h.new_ones(1, 1, h.size(2), dtype=torch.float32)
        mean, log_std, log_dur = prior.token_statistics(h, mask, g)
        return dict(mean=mean, log_std=log_std, durations=prior.predict_durations(log_dur, mask, length_scale)[0],
                    flow_condition=g, decoder_condition=self.wavegan.speaker(speakers["sids"], speakers["spembs"]))

    def given_durations(self, durations: torch.Tensor, tokens: int) -> torch.Tensor:
        durations = durations.view(-1).long().to(self.prior.stats_proj.weight.device)
        if durations.numel() != tokens or bool((durations < 0).any()):
            check_durations(durations.tolist(), tokens)
        return durations

    def frames(self, durations: torch.Tensor) -> int:
        return int(durations.sum())  # sizes the output: the one read-back of synthesis, as in VITS

    def noise_source(self, seed: Optional[int] = None) -> torch.Generator:
        """A generator of the sentence's own, seeded from torch's (or by ``seed``): its windows draw in order from it."""
        generator = torch.Generator(device=self.prior.stats_proj.weight.device)
        return generator.manual_seed(int(torch.randint(2**62, (1,))) if seed is None else seed)

    def prior_sample(self, mean, log_std, durations, frames, noise_scale, noise=None, source=None):
        durations = durations.view(1, -1)
        mean_y, log_std_y = (expand_by_durations(x, durations, frames) for x in (mean, log_std))
        if noise is None:
            noise = torch.randn(mean_y.shape, generator=source, device=mean_y.device, dtype=mean_y.dtype)
        return gaussian_sample(mean_y, log_std_y, noise, noise_scale)

    def folded(self, z_p: torch.Tensor, frames: int) -> torch.Tensor:
        return torch.nn.functional.pad(z_p, (0, frames - z_p.size(2)))

    def inverse_flow(self, prior, flow_condition):
        return self.prior.flow.inverse_stream(prior, g=flow_condition)

    def decode(self, z: torch.Tensor, decoder_condition: Optional[torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():  # a stream is read from a generator, which the caller's grad mode does not reach
            return self.wavegan.decoder(z, g=decoder_condition)[0, 0]
