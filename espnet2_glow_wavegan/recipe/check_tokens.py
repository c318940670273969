"""After stage 5: find utterances whose text the token list cannot represent at all.

ESPnet maps unknown symbols to <unk> silently; an utterance made only of <unk>
(another script, a wrong cleaner/g2p for the language) trains and decodes
garbage. Each such utterance is named with its file, and the share of <unk>
tokens per set is reported. Utterances whose characters the cleaner transliterated
(see espnet2_glow_wavegan.text_checks) get a warning each.

With ``--refuse_unknown true`` (adaptation: the token list is a pretrained model's, which cannot
learn new symbols), any symbol outside the list stops the recipe, naming the utterances and symbols.
"""

import argparse
import logging
import sys
from pathlib import Path

from espnet2_glow_wavegan.recipe.kaldi_dir import DataError, die, read_table
from espnet2_glow_wavegan.text_checks import warn_if_transliterated


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--token_list", required=True)
    parser.add_argument("--token_type", required=True)
    parser.add_argument("--cleaner", default="none")
    parser.add_argument("--g2p", default="none")
    parser.add_argument("--text", type=Path, nargs="+", required=True, help="Kaldi text files to check")
    parser.add_argument("--refuse_unknown", type=lambda s: s.lower() == "true", default=False,
                        help="true: any symbol outside the token list is an error (a pretrained model's list)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="WARNING: %(message)s")
    from espnet2.text.build_tokenizer import build_tokenizer
    from espnet2.text.cleaner import TextCleaner
    from espnet2.text.token_id_converter import TokenIDConverter

    none = lambda v: None if v in ("none", "", None) else v  # noqa: E731
    cleaner = TextCleaner(none(args.cleaner))
    tokenizer = build_tokenizer(args.token_type, g2p_type=none(args.g2p))
    converter = TokenIDConverter(args.token_list)
    unk = converter.token2id["<unk>"]
    try:
        for text_file in args.text:
            bad, unknown, total, outside = [], 0, 0, {}
            for utt, text in read_table(text_file).items():
                cleaned = cleaner(text)
                warn_if_transliterated(utt, text, cleaned, where=f"{text_file}: ")
                tokens = tokenizer.text2tokens(cleaned)
                ids = converter.tokens2ids(tokens)
                unknown += sum(i == unk for i in ids)
                total += len(ids)
                if not ids or all(i == unk for i in ids):
                    bad.append(utt)
                symbols = sorted({t for t, i in zip(tokens, ids) if i == unk and t != "<unk>"})
                if symbols:
                    outside[utt] = symbols
            if args.refuse_unknown and outside:
                named = "; ".join(f"{utt}: {' '.join(map(repr, symbols))}" for utt, symbols in list(outside.items())[:10])
                more = f" (and {len(outside) - 10} more)" if len(outside) > 10 else ""
                raise DataError(
                    f"{text_file}: {len(outside)} utterance(s) have symbols outside {args.token_list}, which the "
                    f"pretrained model cannot learn: {named}{more}; rewrite or remove them"
                )
            if bad:
                raise DataError(
                    f"{text_file}: the text of {len(bad)} utterance(s) has no symbol of {args.token_list} "
                    f"(all <unk>): {bad[:5]}; check the cleaner/g2p for this language, or remove them"
                )
            print(f"{text_file}: {100.0 * unknown / max(total, 1):.2f}% <unk> tokens", file=sys.stderr)
    except DataError as e:
        die(str(e))


if __name__ == "__main__":
    main()
