#!/usr/bin/env python3
"""Generate the bundled mini corpora with espeak-ng (and sox for 44.1 kHz).

Four tiny corpora laid out exactly like the real datasets, so that the recipes'
``local/data.sh`` and the tests run on them unchanged:

* ``mini_ljspeech/LJSpeech-1.1``: ``metadata.csv`` (``ID|raw text|normalized text``)
  and ``wavs/ID.wav``, 22050 Hz mono 16-bit, one voice.
* ``mini_aishell3``: ``{train,test}/content.txt`` (``<name>.wav<TAB>hanzi pinyin ...``)
  and ``<split>/wav/<SPK>/<SPK><nnnn>.wav`` at 44100 Hz; the test speaker never
  appears in train, as in AISHELL-3.
* ``mini_new_voice/LJSpeech-1.1``: another voice (espeak-ng ``en-us+f3``) and other sentences
  in LJSpeech's layout: the new voice the adaptation tests adapt a mini_ljspeech model to
  (``LJSPEECH=corpora/mini_new_voice ./run.sh --mini true --pretrained_model ...``).
* ``mini_aishell3_new_speaker``: a sixth Mandarin speaker (``cmn+m4``, SSB0016) in AISHELL-3's
  layout, train and test: the new speaker id a mini_aishell3 model is adapted to.

The sentences are written for this project. espeak-ng is deterministic for a
given version, and sox runs without dither, so re-running the script rewrites
byte-identical files (``--check`` verifies that against the committed copy).

Usage: python corpora/make_mini_corpora.py [--out DIR] [--check]
Needs the Debian packages ``espeak-ng`` and ``sox``.
"""

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# (raw text, normalized text): the raw column carries numbers and abbreviations
# so that ESPnet's tacotron cleaner has something to expand; espeak-ng reads
# the normalized column so audio and normalized text agree.
ENGLISH = [
    ("The quick test voice reads a short line.", None),
    ("Dr. Lane opened the door at 9 o'clock.", "Doctor Lane opened the door at nine o'clock."),
    ("Rain fell softly on the old stone bridge.", None),
    ("Mr. Hale bought 3 loaves of bread.", "Mister Hale bought three loaves of bread."),
    ("A small boat drifted toward the harbor.", None),
    ("The train left platform 12 on time.", "The train left platform twelve on time."),
    ("She wrote a letter to her brother.", None),
    ("The museum closes at 5 p.m. today.", "The museum closes at five p m today."),
    ("Bright lamps lined the narrow street.", None),
    ("Mrs. Reed planted 20 tulips in spring.", "Missus Reed planted twenty tulips in spring."),
    ("The river runs quietly past the mill.", None),
    ("He paid $4 for a cup of tea.", "He paid four dollars for a cup of tea."),
    ("Clouds gathered over the distant hills.", None),
    ("The report had 150 pages.", "The report had one hundred fifty pages."),
    ("A gentle wind moved the tall grass.", None),
    ("St. Clair Ave. was closed for repairs.", "Saint Clair Avenue was closed for repairs."),
    ("The children sang a cheerful song.", None),
    ("In 1905 the town built a library.", "In nineteen oh five the town built a library."),
    ("Fresh snow covered the empty field.", None),
    ("Gen. Ward led 2 thousand men.", "General Ward led two thousand men."),
    ("The baker sold warm bread at dawn.", None),
    ("Room 7 is on the second floor.", "Room seven is on the second floor."),
    ("An owl called from the dark woods.", None),
    ("The clock struck 11 at night.", "The clock struck eleven at night."),
    ("Waves broke gently on the sandy shore.", None),
    ("Prof. Moss spoke for 45 minutes.", "Professor Moss spoke for forty five minutes."),
    ("The garden smelled of roses.", None),
    ("We met on the 3rd of May.", "We met on the third of May."),
    ("A red kite rose above the meadow.", None),
    ("The bill came to $30.", "The bill came to thirty dollars."),
    ("The cat slept beside the warm stove.", None),
    ("Capt. Grey sailed at 6 a.m.", "Captain Grey sailed at six a m."),
    ("Old maps hung on the study wall.", None),
    ("The recipe needs 2 eggs.", "The recipe needs two eggs."),
    ("Birds rested on the telephone wire.", None),
    ("Lt. Shaw arrived on Jan. 8.", "Lieutenant Shaw arrived on January eighth."),
    ("The kettle whistled in the kitchen.", None),
    ("Only 1 window was left open.", "Only one window was left open."),
    ("Soft music played in the hall.", None),
    ("The bus stops here every 10 minutes.", "The bus stops here every ten minutes."),
]

# A new voice for the adaptation tests (tts.sh --pretrained_model): other sentences than ENGLISH,
# written with the symbols of mini_ljspeech's training sentences after the tacotron cleaner (no j, z), so
# a model trained on mini_ljspeech can be adapted to them, and spoken by another espeak-ng voice.
NEW_VOICE = [
    ("The kettle sang on the black stove.", None),
    ("Mr. Grant fed 6 hens before work.", "Mister Grant fed six hens before work."),
    ("A red kite flew above the park.", None),
    ("Her shop opens at 8 every day.", "Her shop opens at eight every day."),
    ("The old dog slept by the fire.", None),
    ("Two geese walked along the path.", None),
    ("The bell rang twice at noon.", None),
    ("Dr. Pike checked the young mare.", "Doctor Pike checked the young mare."),
    ("A thin mist hid the valley.", None),
    ("He read 14 letters in one night.", "He read fourteen letters in one night."),
    ("The boys fixed the broken fence.", None),
    ("Cold water ran from the spring.", None),
    ("She packed a lunch for the trip.", None),
    ("The market was busy on Friday.", None),
    ("Mrs. Cole knits warm wool socks.", "Missus Cole knits warm wool socks."),
    ("Our team won the final game.", None),
    ("The path curves past the lake.", None),
    ("A fox crept under the gate.", None),
    ("The storm ended before dawn.", None),
    ("He sold 30 apples at the fair.", "He sold thirty apples at the fair."),
    ("The pilot waved from the plane.", None),
    ("Quiet music played in the hall.", None),
    ("Tom mended the leaking roof.", None),
    ("The moon rose over the barn.", None),
    ("She found a key in the sand.", None),
    ("The cook baked a plum tart.", None),
    ("Every window faced the sea.", None),
    ("The farmer sold his grey horse.", None),
    ("A little bird built a nest.", None),
    ("The ship sailed at 6 a.m.", "The ship sailed at six a m."),
]
NEW_VOICE_VOICE = "en-us+f3"

# (hanzi, pinyin with citation tones, 5 = neutral), one syllable per character.
MANDARIN = [
    ("今天天气很好", "jin1 tian1 tian1 qi4 hen3 hao3"),
    ("我们一起去学校", "wo3 men5 yi1 qi3 qu4 xue2 xiao4"),
    ("他喜欢喝绿茶", "ta1 xi3 huan1 he1 lv4 cha2"),
    ("北京的冬天很冷", "bei3 jing1 de5 dong1 tian1 hen3 leng3"),
    ("请把门关上", "qing3 ba3 men2 guan1 shang4"),
    ("这本书非常有趣", "zhe4 ben3 shu1 fei1 chang2 you3 qu4"),
    ("妈妈在厨房做饭", "ma1 ma5 zai4 chu2 fang2 zuo4 fan4"),
    ("火车马上就要开了", "huo3 che1 ma3 shang4 jiu4 yao4 kai1 le5"),
    ("小猫睡在沙发上", "xiao3 mao1 shui4 zai4 sha1 fa1 shang4"),
    ("明天早上八点开会", "ming2 tian1 zao3 shang4 ba1 dian3 kai1 hui4"),
    ("我想买一杯咖啡", "wo3 xiang3 mai3 yi1 bei1 ka1 fei1"),
    ("公园里有很多花", "gong1 yuan2 li3 you3 hen3 duo1 hua1"),
    ("他们正在看电影", "ta1 men5 zheng4 zai4 kan4 dian4 ying3"),
    ("窗外下着小雨", "chuang1 wai4 xia4 zhe5 xiao3 yu3"),
    ("广州女大学生", "guang3 zhou1 nv3 da4 xue2 sheng1"),
    ("欢迎来到上海", "huan1 ying2 lai2 dao4 shang4 hai3"),
]

# Speaker id -> (split, espeak-ng voice). Different variants give different
# pitch/timbre; SSB0015 is test only (unseen in train), as in AISHELL-3.
AISHELL_SPEAKERS = {
    "SSB0011": ("train", "cmn+f1"),
    "SSB0012": ("train", "cmn+m1"),
    "SSB0013": ("train", "cmn+f3"),
    "SSB0014": ("train", "cmn+m3"),
    "SSB0015": ("test", "cmn+f4"),
}
UTTS_PER_TRAIN_SPEAKER = 5
UTTS_PER_TEST_SPEAKER = 3
# mini_aishell3_new_speaker: one speaker unseen by a model trained on mini_aishell3, for adapting that
# multi-speaker model to a new speaker id (its held-out sentences in test/).
NEW_SPEAKER = ("SSB0016", "cmn+m4")
NEW_SPEAKER_UTTS = {"train": 6, "test": 2}


def espeak(text: str, voice: str, wav: Path, words_per_minute: int = 175) -> None:
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(wav), text], check=True
    )


def make_ljspeech_layout(root: Path, sentences, voice: str, chapter: str) -> None:
    """root/LJSpeech-1.1: ``sentences`` (raw, normalized or None) spoken by ``voice``, ids LJ<chapter>-NNNN."""
    wav_dir = root / "LJSpeech-1.1" / "wavs"
    wav_dir.mkdir(parents=True)
    lines = []
    for i, (raw, normalized) in enumerate(sentences, start=1):
        utt = f"LJ{chapter}-{i:04d}"
        normalized = normalized or raw
        espeak(normalized, voice, wav_dir / f"{utt}.wav")
        lines.append(f"{utt}|{raw}|{normalized}\n")
    (root / "LJSpeech-1.1" / "metadata.csv").write_text("".join(lines), encoding="utf-8")


def make_ljspeech(root: Path) -> None:
    make_ljspeech_layout(root, ENGLISH, "en-us", "001")


def make_new_voice(root: Path) -> None:
    """mini_new_voice: NEW_VOICE spoken by NEW_VOICE_VOICE, in LJSpeech's layout (ids LJ050-*)."""
    make_ljspeech_layout(root, NEW_VOICE, NEW_VOICE_VOICE, "050")


def make_aishell3(root: Path, speakers=None, sentences=MANDARIN) -> None:
    """AISHELL-3's layout: ``speakers`` [(id, split, voice, utterances)], reading ``sentences`` in turn."""
    speakers = speakers or [(spk, split, voice, UTTS_PER_TRAIN_SPEAKER if split == "train" else UTTS_PER_TEST_SPEAKER)
                            for spk, (split, voice) in AISHELL_SPEAKERS.items()]
    contents = {"train": [], "test": []}
    sentence = 0
    numbers = {}
    for spk, split, voice, n_utts in speakers:
        spk_dir = root / split / "wav" / spk
        spk_dir.mkdir(parents=True)
        for _ in range(n_utts):
            hanzi, pinyin = sentences[sentence % len(sentences)]
            sentence += 1
            numbers[spk] = n = numbers.get(spk, 0) + 1  # a speaker's utterances are numbered across splits
            name = f"{spk}{n:04d}.wav"
            with tempfile.TemporaryDirectory() as tmp:
                tmp_wav = Path(tmp) / "22k.wav"
                # A faster rate keeps the 44.1 kHz corpus small.
                espeak(hanzi, voice, tmp_wav, words_per_minute=200)
                # -D: no dither, so the output is reproducible.
                subprocess.run(
                    ["sox", "-D", str(tmp_wav), "-r", "44100", "-b", "16", str(spk_dir / name)],
                    check=True,
                )
            syllables = pinyin.split()
            assert len(syllables) == len(hanzi), (hanzi, pinyin)
            pairs = " ".join(f"{h} {p}" for h, p in zip(hanzi, syllables))
            contents[split].append(f"{name}\t{pairs}\n")
    for split, lines in contents.items():
        (root / split / "content.txt").write_text("".join(lines), encoding="utf-8")


def make_aishell3_new_speaker(root: Path) -> None:
    """mini_aishell3_new_speaker: NEW_SPEAKER, train and test, the sentences from the last one backwards."""
    spk, voice = NEW_SPEAKER
    make_aishell3(root, [(spk, split, voice, n) for split, n in NEW_SPEAKER_UTTS.items()], MANDARIN[::-1])


CORPORA = ("mini_ljspeech", "mini_aishell3", "mini_new_voice", "mini_aishell3_new_speaker")


def main() -> int:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=here, help="where to write (default: next to this script)")
    parser.add_argument("--check", action="store_true", help="generate into a temp dir and compare with --out")
    args = parser.parse_args()
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: install the Debian package '{tool}' (apt-get install {tool})")

    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp)
        make_ljspeech(staging / "mini_ljspeech")
        make_aishell3(staging / "mini_aishell3")
        make_new_voice(staging / "mini_new_voice")
        make_aishell3_new_speaker(staging / "mini_aishell3_new_speaker")
        if args.check:
            mismatches = []
            for name in CORPORA:
                cmp = filecmp.dircmp(staging / name, args.out / name)
                stack = [cmp]
                while stack:
                    c = stack.pop()
                    mismatches += [f"{c.left}/{f}" for f in c.left_only + c.right_only + c.diff_files]
                    # dircmp compares shallowly (size+mtime); compare bytes for equal names.
                    for f in c.same_files:
                        if not filecmp.cmp(Path(c.left) / f, Path(c.right) / f, shallow=False):
                            mismatches.append(f"{c.left}/{f}")
                    stack.extend(c.subdirs.values())
            if mismatches:
                print("differs from the committed corpora:\n  " + "\n  ".join(mismatches))
                return 1
            print("regenerated corpora are identical to", args.out)
            return 0
        for name in CORPORA:
            target = args.out / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(staging / name, target)
    print("wrote", ", ".join(str(args.out / name) for name in CORPORA))
    return 0


if __name__ == "__main__":
    sys.exit(main())
