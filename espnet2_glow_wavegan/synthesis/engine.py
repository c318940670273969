"""One sentence's synthesis, planned once and run by a backend: the torch model or the ONNX runtime (no torch here).

glow_wavegan synthesises in four stages: the text encoder, the sentence (prior statistics,
durations, speaker conditions), the inverse flow and the decoder. :class:`Synthesizer` checks a
request, encodes the text in the windows of :func:`~espnet2_glow_wavegan.synthesis.plan.text_spans`,
runs the sentence stage, checks the output length, and then makes the waveform either in one pass or
as a stream of chunks. A one pass is the stream asked for every frame at once, decoded in the chunks
of :func:`~espnet2_glow_wavegan.synthesis.plan.decode_spans`. The backend runs the stages on its own
arrays (``synthesis/torch_backend.py``: torch tensors; ``onnx/runtime.py``: numpy arrays and
onnxruntime sessions) and says what its model is (:class:`Settings`).

A backend provides::

    settings                          Settings
    token_ids(ids) -> list            the ids as host ints, for the checks
    speakers(sids, spembs) -> dict    the speaker inputs, checked, as its stages take them
    encode_text(ids, lo, hi) -> h     the text encoder on tokens [lo, hi): (1, hidden, hi - lo)
    join(pieces) -> array             pieces (1, C, n_i) joined along time
    sentence(h, length_scale, speakers) -> dict(mean, log_std, durations, flow_condition, decoder_condition)
    given_durations(durations, tokens) -> array   durations given by the caller, checked
    frames(durations) -> int          the output's latent frames
    prior_sample(mean, log_std, durations, frames, noise_scale, noise, seed) -> (z_p, mask)
    inverse_flow(z_p, mask, flow_condition) -> InverseFlowStream
    decode(z, decoder_condition) -> wav   a latent window (1, latent_dim, n) -> (n * hop,)
"""

from dataclasses import dataclass
from typing import Any, Dict, Optional

from espnet2_glow_wavegan.synthesis.checks import check_chunk_sizes, check_output_length, check_token_ids
from espnet2_glow_wavegan.synthesis.plan import decode_spans, synthesis_knobs, text_spans
from espnet2_glow_wavegan.synthesis.stream import SynthesisStream


@dataclass(frozen=True)
class Settings:
    """What the engine needs to know of a model: its rates, reaches, windows and synthesis defaults."""

    sampling_rate: int
    hop_length: int
    vocabulary: int  # token ids are 0 .. vocabulary - 1
    silent_token_ids: frozenset
    decoder_context_frames: int
    decode_chunk_frames: int
    synthesis_window_tokens: int
    synthesis_window_context: int
    noise_scale: float
    length_scale: float
    max_output_seconds: float


@dataclass
class Sentence:
    """A checked request after the sentence stage: what the flow and the decoder start from."""

    tokens: int
    durations: Any  # frames per token (T_text,), the backend's array
    frames: int
    noise_scale: float
    stages: Dict[str, Any]  # the sentence stage's outputs (mean, log_std, conditions)


class Synthesizer:
    """The synthesis of one sentence by a backend (see the module docstring for what a backend provides)."""

    def __init__(self, backend):
        self.backend = backend

    @property
    def settings(self) -> Settings:
        return self.backend.settings

    def sentence(self, ids, sids=None, spembs=None, durations=None, noise_scale: Optional[float] = None,
                 length_scale: Optional[float] = None, max_output_seconds: Optional[float] = None,
                 item: str = "") -> Sentence:
        """Checks, the text encoder (in windows for a long text) and the sentence stage.

        Everything is checked before a stage runs but the output length, which needs the
        durations; ``item`` prefixes that message (a batch names its item).
        """
        backend = self.backend
        s = backend.settings
        defaults = dict(noise_scale=s.noise_scale, length_scale=s.length_scale, max_output_seconds=s.max_output_seconds)
        noise_scale, length_scale, max_output_seconds = synthesis_knobs(defaults, noise_scale, length_scale,
                                                                        max_output_seconds)
        speakers = backend.speakers(sids, spembs)
        host_ids = backend.token_ids(ids)
        check_token_ids(host_ids, s.silent_token_ids)
        if min(host_ids) < 0 or max(host_ids) >= s.vocabulary:
            raise ValueError(f"token ids must be in 0..{s.vocabulary - 1} (the model's token list), "
                             f"got {min(host_ids)}..{max(host_ids)}")
        tokens = len(host_ids)
        if durations is not None:
            durations = backend.given_durations(durations, tokens)
        spans = text_spans(tokens, s.synthesis_window_tokens, s.synthesis_window_context)
        h = backend.join([backend.encode_text(ids, span.lo, span.hi)[:, :, span.kept()] for span in spans])
        stages = backend.sentence(h, length_scale, speakers)
        predicted = stages.pop("durations")
        durations = predicted if durations is None else durations
        frames = backend.frames(durations)
        check_output_length(frames, s.hop_length, s.sampling_rate, length_scale, max_output_seconds, item)
        return Sentence(tokens=tokens, durations=durations, frames=frames, noise_scale=noise_scale, stages=stages)

    def inverse_flow(self, sentence: Sentence, noise=None, seed: Optional[int] = None):
        """The prior sample of ``sentence`` (``noise``: the standard-normal draw to use) through the inverse flow, as a stream."""
        st = sentence.stages
        if noise is not None and noise.shape[-1] < sentence.frames:
            raise ValueError(f"noise has {noise.shape[-1]} frames, the output needs {sentence.frames}")
        z_p, mask = self.backend.prior_sample(st["mean"], st["log_std"], sentence.durations, sentence.frames,
                                              sentence.noise_scale, noise, seed)
        return self.backend.inverse_flow(z_p, mask, st.get("flow_condition"))

    def one_pass(self, sentence: Sentence, noise=None, seed: Optional[int] = None):
        """``(wav (frames * hop,), z (1, latent_dim, frames))``: the stream of one chunk, decoded in the long form's chunks."""
        z = self.inverse_flow(sentence, noise, seed).latent(0, sentence.frames)
        return self.decode(sentence, z), z

    def decode(self, sentence: Sentence, z):
        """The waveform (frames * hop,) of the latent z (1, latent_dim, frames), a long one in chunks with context."""
        s, condition = self.settings, sentence.stages.get("decoder_condition")
        spans = decode_spans(sentence.frames, s.decode_chunk_frames, s.decoder_context_frames)
        pieces = [self.backend.decode(z[:, :, span.lo : span.hi], condition)[span.kept(s.hop_length)] for span in spans]
        return pieces[0] if len(pieces) == 1 else self.backend.join([p[None, None] for p in pieces])[0, 0]

    def stream(self, sentence: Sentence, noise=None, seed: Optional[int] = None, chunk_frames: int = 256,
               first_chunk_frames: int = 16) -> SynthesisStream:
        """The waveform of ``sentence`` in chunks (see :class:`~espnet2_glow_wavegan.synthesis.stream.SynthesisStream`)."""
        check_chunk_sizes(chunk_frames, first_chunk_frames)
        s, condition = self.settings, sentence.stages.get("decoder_condition")
        return SynthesisStream(self.inverse_flow(sentence, noise, seed), lambda z: self.backend.decode(z, condition),
                               sentence.frames, s.hop_length, s.decoder_context_frames, sentence.durations,
                               s.sampling_rate, chunk_frames, first_chunk_frames)
