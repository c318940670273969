"""Chunked synthesis of one utterance: the inverse flow and the decoder run chunk by chunk.

Everything after the durations has a finite reach in time: the flow's couplings
(``GlowFlow.step_reach``) and the decoder (``decoder.context_frames()``). A chunk of output
frames ``[a, b)`` is decoded from the latent ``[a - c, b + c)`` (``c`` the decoder's context),
and the flow computes that latent from its own context (:class:`InverseFlowStream`); the
samples of the context frames are dropped. So each chunk is exact, and the first one costs
a few chunks' work instead of the whole sentence's.
"""

from typing import Iterator, Optional

import torch

from espnet2_glow_wavegan.synthesis.plan import chunk_bounds, stream_spans


class SynthesisStream:
    """The waveform of one utterance in chunks: iterate it (each chunk is a 1-D tensor).

    Made by ``GlowWaveGAN.inference_stream``. ``durations`` (frames per token),
    ``num_samples`` and ``sampling_rate`` are known before the first chunk.
    """

    def __init__(self, wavegan, flow, z_mask: torch.Tensor, frames: int, g: Optional[torch.Tensor],
                 durations: torch.Tensor, sampling_rate: int, chunk_frames: int, first_chunk_frames: int):
        self.wavegan = wavegan
        self.flow = flow
        self.z_mask = z_mask
        self.frames = frames
        self.g = g
        self.durations = durations
        self.sampling_rate = sampling_rate
        self.hop = wavegan.upsample_factor
        self.num_samples = frames * self.hop
        self.chunk_frames = chunk_frames
        self.first_chunk_frames = first_chunk_frames
        self.context = wavegan.decoder.context_frames()

    def chunk_bounds(self) -> Iterator[tuple]:
        """Output frames ``(start, end)`` of each chunk (see :func:`espnet2_glow_wavegan.synthesis.plan.chunk_bounds`)."""
        return chunk_bounds(self.frames, self.first_chunk_frames, self.chunk_frames)

    def __iter__(self) -> Iterator[torch.Tensor]:
        for span in stream_spans(self.frames, self.first_chunk_frames, self.chunk_frames, self.context):
            with torch.no_grad():  # the caller's grad mode does not reach a generator's body
                z = self.flow.latent(span.lo, span.hi) * self.z_mask[:, :, span.lo : span.hi]
                wav = self.wavegan.decoder(z, g=self.g)
            yield wav[0, 0, span.kept(self.hop)]
