"""One sentence's synthesis, planned once and run by a backend: the torch model or the ONNX runtime (no torch here).

glow_wavegan synthesises in four stages: the text encoder, the sentence (prior statistics,
durations, speaker conditions), the inverse flow and the decoder. :class:`Synthesizer` checks a
request and makes a :class:`Sentence`: the text in the windows of
:func:`~espnet2_glow_wavegan.synthesis.plan.text_spans`, each window encoded and through the
sentence stage when synthesis first reaches it (a text within one window: at once). The waveform
is then made either in one pass or as a stream of chunks. A one pass is the stream asked for every
frame at once, decoded in the chunks of :func:`~espnet2_glow_wavegan.synthesis.plan.decode_spans`;
a stream asks the sentence only for the windows its chunks reach, so a paragraph's first audio
waits for its first window only. The backend runs the stages on its own arrays
(``synthesis/torch_backend.py``: torch tensors; ``onnx/runtime.py``: numpy arrays and onnxruntime
sessions) and says what its model is (:class:`Settings`).

A backend provides::

    settings                          Settings
    token_ids(ids) -> list            the ids as host ints, for the checks
    speakers(sids, spembs) -> dict    the speaker inputs, checked, as its stages take them
    encode_text(ids, lo, hi) -> h     the text encoder on tokens [lo, hi): (1, hidden, hi - lo)
    join(pieces) -> array             pieces (1, C, n_i) joined along time
    sentence(h, length_scale, speakers) -> dict(mean, log_std, durations, flow_condition, decoder_condition)
    given_durations(durations, tokens) -> array   durations given by the caller, checked
    frames(durations) -> int          the output's latent frames
    noise_source(seed) -> source      what prior_sample draws its noise from, one a sentence
    prior_sample(mean, log_std, durations, frames, noise_scale, noise, source) -> z_p (1, C, frames)
    folded(z_p, frames) -> z_p        zero frames appended up to ``frames`` (the flow's fold)
    inverse_flow(prior, flow_condition) -> InverseFlowStream   over ``prior(frames) -> (z_p, whole)``
    decode(z, decoder_condition) -> wav   a latent window (1, latent_dim, n) -> (n * hop,)
"""

from dataclasses import dataclass
from typing import Any, List, Optional

from espnet2_glow_wavegan.synthesis.checks import check_chunk_sizes, check_output_length, check_token_ids
from espnet2_glow_wavegan.synthesis.plan import Span, decode_spans, folded, synthesis_knobs, text_spans
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
    squeeze_factor: int
    noise_scale: float
    length_scale: float
    max_output_seconds: float


@dataclass
class TextWindow:
    """One text window after the sentence stage: its tokens' statistics and durations."""

    span: Span  # tokens
    mean: Any  # (1, latent_dim, tokens kept)
    log_std: Any
    durations: Any  # frames per token kept
    frames: int
    first_frame: int  # where its frames start in the output


class Sentence:
    """A checked request whose text is encoded window by window, as far as synthesis asks.

    The first window is encoded when the sentence is made, so a text within one window (up to
    ``synthesis_window_tokens`` + 2 * ``synthesis_window_context`` tokens) is whole at once, with
    every check done. A longer text's next windows are encoded when :meth:`frames_up_to` reaches
    them; reading :attr:`durations` or :attr:`frames` encodes the rest. The output length is
    checked as each window adds its frames, before any of them is synthesised.
    """

    def __init__(self, backend, ids, spans: List[Span], speakers: dict, durations, length_scale: float,
                 noise_scale: float, max_output_seconds: float, item: str):
        self.backend, self.ids, self.spans, self.speakers = backend, ids, spans, speakers
        self.given, self.length_scale, self.noise_scale = durations, length_scale, noise_scale
        self.max_output_seconds, self.item = max_output_seconds, item
        self.tokens = spans[-1].end
        self.windows: List[TextWindow] = []
        self.conditions: dict = {}  # flow_condition, decoder_condition (the first window's: one speaker)
        self.frames_encoded = 0
        if durations is not None:  # the whole length is known: checked before anything runs
            self._check_length(backend.frames(durations))
        self.encode_next()

    @property
    def whole(self) -> bool:
        return len(self.windows) == len(self.spans)

    def _check_length(self, frames: int) -> None:
        s = self.backend.settings
        check_output_length(frames, s.hop_length, s.sampling_rate, self.length_scale, self.max_output_seconds, self.item)

    def encode_next(self) -> None:
        """The next text window through the text encoder and the sentence stage."""
        span = self.spans[len(self.windows)]
        stages = self.backend.sentence(self.backend.encode_text(self.ids, span.lo, span.hi), self.length_scale,
                                       self.speakers)
        if not self.windows:
            self.conditions = dict(flow_condition=stages.get("flow_condition"),
                                   decoder_condition=stages.get("decoder_condition"))
        kept = span.kept()
        durations = stages["durations"][kept] if self.given is None else self.given[span.start : span.end]
        frames = self.backend.frames(durations)
        self._check_length(self.frames_encoded + frames)
        self.windows.append(TextWindow(span, stages["mean"][:, :, kept], stages["log_std"][:, :, kept], durations,
                                       frames, self.frames_encoded))
        self.frames_encoded += frames

    def frames_up_to(self, n: int) -> int:
        """``min(n, frames)``, encoding only the windows that takes."""
        while self.frames_encoded < n and not self.whole:
            self.encode_next()
        return min(n, self.frames_encoded)

    @property
    def frames(self) -> int:
        """The output's latent frames (the whole text encoded)."""
        return self.frames_up_to(float("inf"))

    @property
    def durations(self):
        """Frames per token (T_text,) (the whole text encoded)."""
        self.frames_up_to(float("inf"))
        if len(self.windows) == 1:
            return self.windows[0].durations
        return self.backend.join([w.durations[None, None] for w in self.windows])[0, 0]


class PriorSample:
    """The flow's input of a sentence, window by window: ``N(mean, (noise_scale * std)^2)`` at each frame.

    ``noise`` (1, latent_dim, >= frames), when given, is the standard-normal draw to use; else
    each window draws its own from one noise source of the sentence, in order, so that a stream
    and a one pass draw the same numbers.
    """

    def __init__(self, sentence: Sentence, noise=None, seed: Optional[int] = None):
        self.sentence, self.noise = sentence, noise
        self.source = None if noise is not None else sentence.backend.noise_source(seed)
        self.pieces: List[Any] = []
        self._check_noise(sentence.frames_encoded)

    def _check_noise(self, frames: int) -> None:
        if self.noise is not None and self.noise.shape[-1] < frames:
            raise ValueError(f"noise has {self.noise.shape[-1]} frames, the output needs "
                             f"{'' if self.sentence.whole else 'at least '}{frames}")

    def __call__(self, frames: int):
        """``(z_p, whole)``: the prior sample so far (1, latent_dim, >= frames unless whole), folded when whole."""
        sentence, backend = self.sentence, self.sentence.backend
        sentence.frames_up_to(frames)
        for window in sentence.windows[len(self.pieces) :]:
            end = window.first_frame + window.frames
            self._check_noise(end)
            noise = None if self.noise is None else self.noise[:, :, window.first_frame : end]
            self.pieces.append(backend.prior_sample(window.mean, window.log_std, window.durations, window.frames,
                                                    sentence.noise_scale, noise, self.source))
        z_p = backend.join(self.pieces)
        if not sentence.whole:
            return z_p, False
        return backend.folded(z_p, folded(sentence.frames_encoded, backend.settings.squeeze_factor)), True


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
        """The request checked, and its first text window encoded (see :class:`Sentence`).

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
        return Sentence(backend, ids, spans, speakers, durations, length_scale, noise_scale, max_output_seconds, item)

    def inverse_flow(self, sentence: Sentence, noise=None, seed: Optional[int] = None):
        """The prior sample of ``sentence`` (``noise``: the standard-normal draw to use) through the inverse flow, as a stream."""
        return self.backend.inverse_flow(PriorSample(sentence, noise, seed), sentence.conditions["flow_condition"])

    def one_pass(self, sentence: Sentence, noise=None, seed: Optional[int] = None):
        """``(wav (frames * hop,), z (1, latent_dim, frames))``: the stream of one chunk, decoded in the long form's chunks."""
        flow = self.inverse_flow(sentence, noise, seed)
        z = flow.latent(0, sentence.frames)
        return self.decode(sentence, z), z

    def decode(self, sentence: Sentence, z):
        """The waveform (frames * hop,) of the latent z (1, latent_dim, frames), a long one in chunks with context."""
        s, condition = self.settings, sentence.conditions["decoder_condition"]
        spans = decode_spans(sentence.frames, s.decode_chunk_frames, s.decoder_context_frames)
        pieces = [self.backend.decode(z[:, :, span.lo : span.hi], condition)[span.kept(s.hop_length)] for span in spans]
        return pieces[0] if len(pieces) == 1 else self.backend.join([p[None, None] for p in pieces])[0, 0]

    def stream(self, sentence: Sentence, noise=None, seed: Optional[int] = None, chunk_frames: int = 256,
               first_chunk_frames: int = 16) -> SynthesisStream:
        """The waveform of ``sentence`` in chunks (see :class:`~espnet2_glow_wavegan.synthesis.stream.SynthesisStream`)."""
        check_chunk_sizes(chunk_frames, first_chunk_frames)
        s, condition = self.settings, sentence.conditions["decoder_condition"]
        return SynthesisStream(self.inverse_flow(sentence, noise, seed), lambda z: self.backend.decode(z, condition),
                               sentence, s.hop_length, s.decoder_context_frames, s.sampling_rate, chunk_frames,
                               first_chunk_frames)
