"""Text the front end changes beyond what it is meant to: a warning, naming the utterance.

ESPnet's English ``tacotron`` cleaner transliterates anything outside ASCII (through
``unidecode``): "§§§" becomes "SSSSSS" and Japanese becomes romanised syllables, and the
model then reads those aloud. That the cleaner changes case, expands numbers and
abbreviations and spells out ASCII symbols is its job; a non-ASCII character that does not
survive cleaning is a sign of text in another script than the model's.
"""

import logging
from typing import List


def transliterated_characters(raw: str, cleaned: str) -> List[str]:
    """Characters of ``raw`` outside ASCII that are not in ``cleaned`` (the cleaner replaced or dropped them)."""
    return sorted({c for c in raw if ord(c) > 127 and not c.isspace() and c not in cleaned})


def warn_if_transliterated(utt: str, raw: str, cleaned: str, where: str = "") -> bool:
    """Log a warning naming ``utt`` and the characters when the cleaner transliterated some; returns whether it did."""
    lost = transliterated_characters(raw, cleaned)
    if lost:
        shown = "".join(lost[:20]) + ("..." if len(lost) > 20 else "")
        logging.warning(
            f"{where}utterance {utt}: the text cleaner replaced characters the model may not be meant to read "
            f"({shown!r} -> {cleaned[:60]!r}); is the text in the model's language and script?"
        )
    return bool(lost)
