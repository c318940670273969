"""Fail early, with instructions, when a text front end needs data that is not installed.

ESPnet's ``g2p_en`` / ``g2p_en_no_space`` (package g2p_en) load NLTK's
``averaged_perceptron_tagger_eng`` and ``cmudict`` corpora and try to download
them on first use; without internet that fails deep inside tokenisation.
"""

import argparse
import sys

NLTK_DATA = {"taggers/averaged_perceptron_tagger_eng": "averaged_perceptron_tagger_eng", "corpora/cmudict": "cmudict"}


def missing_nltk_data():
    import nltk

    missing = []
    for resource, package in NLTK_DATA.items():
        try:
            nltk.data.find(resource)
        except LookupError:
            missing.append(package)
    return missing


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--g2p", required=True)
    args = parser.parse_args(argv)
    if args.g2p in ("g2p_en", "g2p_en_no_space"):
        missing = missing_nltk_data()
        if missing:
            print(
                f"ERROR: --g2p {args.g2p} needs the NLTK data {', '.join(missing)}, which is not installed.\n"
                "  With internet: python -c \"import nltk; "
                + "; ".join(f"nltk.download('{m}')" for m in missing)
                + "\"\n  Offline: copy an nltk_data folder here (set NLTK_DATA to it), or use a front end "
                "that needs no data, e.g. --token_type char --cleaner tacotron.",
                file=sys.stderr,
            )
            sys.exit(1)


if __name__ == "__main__":
    main()
