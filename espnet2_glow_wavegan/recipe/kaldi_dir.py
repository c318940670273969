"""Kaldi-style data directories: read, check and write them without losing data."""

import os
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional


class DataError(Exception):
    """Bad input data; the message names the file, the utterance and the problem."""


def utf8_lines(path: Path):
    """Yield (line number, line without newline); bad UTF-8 raises a DataError naming the line."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                yield number, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                raise DataError(f"{path}:{number}: not valid UTF-8 ({e.reason} at byte {e.start})") from None


def read_table(path: Path, allow_missing: bool = False) -> Dict[str, str]:
    """``utt value...`` lines -> {utt: value}. Errors name the file and line."""
    path = Path(path)
    if not path.exists():
        if allow_missing:
            return {}
        raise DataError(f"{path}: missing file")
    table = {}
    for number, line in utf8_lines(path):
        if not line.strip():
            continue
        key, _, value = line.partition(" ")
        if key in table:
            raise DataError(f"{path}:{number}: utterance '{key}' appears twice")
        table[key] = value.strip()
    return table


def write_table(path: Path, table: Dict[str, str]) -> None:
    """Write sorted ``key value`` lines atomically (a crash never leaves half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, encoding="utf-8") as f:
        for key in sorted(table):
            f.write(f"{key} {table[key]}\n" if table[key] != "" else f"{key}\n")
    os.replace(f.name, path)


def spk2utt(utt2spk: Dict[str, str]) -> Dict[str, str]:
    out: Dict[str, List[str]] = {}
    for utt in sorted(utt2spk):
        out.setdefault(utt2spk[utt], []).append(utt)
    return {spk: " ".join(utts) for spk, utts in out.items()}


def write_data_dir(
    path: Path,
    wav_scp: Dict[str, str],
    text: Dict[str, str],
    utt2spk: Dict[str, str],
    segments: Optional[Dict[str, str]] = None,
) -> None:
    """Write wav.scp, text, utt2spk, spk2utt (and segments) after consistency checks."""
    keys = set(segments) if segments else set(wav_scp)
    for name, table in (("text", text), ("utt2spk", utt2spk)):
        missing = sorted(keys - set(table))
        extra = sorted(set(table) - keys)
        if missing or extra:
            raise DataError(
                f"{path}: {name} and wav.scp disagree: "
                + (f"no {name} for {missing[:5]}" if missing else "")
                + (f"; only in {name}: {extra[:5]}" if extra else "")
            )
    write_table(path / "wav.scp", wav_scp)
    write_table(path / "text", text)
    write_table(path / "utt2spk", utt2spk)
    write_table(path / "spk2utt", spk2utt(utt2spk))
    if segments:
        write_table(path / "segments", segments)


def die(message: str) -> "NoReturn":  # noqa: F821
    print(f"ERROR: {message}", file=sys.stderr)
    sys.exit(1)


def check_data_dir(path: Path) -> int:
    """Check a data dir before use: readable UTF-8 tables, the same utterances everywhere,
    non-empty text. Returns the number of utterances; raises DataError naming the problem."""
    path = Path(path)
    wav_scp = read_table(path / "wav.scp")
    segments = read_table(path / "segments", allow_missing=True)
    utts = set(segments) if segments else set(wav_scp)
    if segments:
        missing_rec = sorted({v.split()[0] for v in segments.values()} - set(wav_scp))
        if missing_rec:
            raise DataError(f"{path}/segments: recordings missing from wav.scp: {missing_rec[:5]}")
    for name in ("text", "utt2spk"):
        table = read_table(path / name)
        only_here, only_audio = sorted(set(table) - utts), sorted(utts - set(table))
        if only_here:
            raise DataError(f"{path}/{name}: utterances with no audio in wav.scp: {only_here[:5]}")
        if only_audio:
            raise DataError(f"{path}/{name}: no entry for utterances in wav.scp: {only_audio[:5]}")
        if name == "text":
            empty = sorted(u for u, t in table.items() if not t.strip())
            if empty:
                raise DataError(f"{path}/text: empty or whitespace-only text for {empty[:5]}")
    return len(utts)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="check Kaldi-style data dirs")
    parser.add_argument("--check", type=Path, nargs="+", required=True)
    args = parser.parse_args()
    try:
        for d in args.check:
            print(f"{d}: {check_data_dir(d)} utterances, consistent")
    except DataError as e:
        die(str(e))
