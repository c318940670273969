"""Export a trained glow_wavegan to ONNX: graphs and settings for the torch-free runtime.

    python -m espnet2_glow_wavegan.bin.export_onnx --train_config exp/tts_glow_wavegan/config.yaml \\
        --model_file exp/tts_glow_wavegan/train.total_count.ave.pth --out_dir exp/tts_glow_wavegan/onnx
    python -m espnet2_glow_wavegan.bin.export_onnx --packed_model model.zip --out_dir onnx [--quantize true]

Then ``python -m espnet2_glow_wavegan.onnx.runtime --model_dir onnx --text "..." --output out.wav``
(numpy, onnxruntime and ESPnet's text front end; no torch). The folder's layout is in
:mod:`espnet2_glow_wavegan.onnx.export`; the recipes' stage 10 runs this with ``--export_onnx true``.
"""

import argparse
import logging
import tempfile
from pathlib import Path


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    model = parser.add_argument_group("the model: --train_config and --model_file, or --packed_model")
    model.add_argument("--train_config", type=Path)
    model.add_argument("--model_file", type=Path)
    model.add_argument("--packed_model", type=Path, help="a zip written by espnet2.bin.pack (the recipes' stage 10)")
    parser.add_argument("--out_dir", type=Path, required=True, help="a new or empty folder")
    parser.add_argument("--quantize", type=lambda s: s.lower() == "true", default=False,
                        help="true: also write int8 flow and decoder graphs (runtime --precision int8)")
    return parser


def load(args, unpack_dir: Path):
    """The Text2Speech of the arguments' model, after the weights-only check."""
    from espnet2_glow_wavegan.safe_load import packed_text2speech, safe_text2speech

    if args.packed_model:
        if args.train_config or args.model_file:
            raise SystemExit("give --packed_model, or --train_config and --model_file, not both")
        if not args.packed_model.is_file():
            raise SystemExit(f"--packed_model {args.packed_model}: no such file")
        return packed_text2speech(args.packed_model, unpack_dir)
    if not (args.train_config and args.model_file):
        raise SystemExit("give --train_config and --model_file, or --packed_model")
    for path in (args.train_config, args.model_file):
        if not path.is_file():
            raise SystemExit(f"{path}: no such file")
    return safe_text2speech(args.model_file, args.train_config)


def main(argv=None) -> None:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    if args.out_dir.exists() and any(args.out_dir.iterdir()):
        raise SystemExit(f"{args.out_dir} is not empty: give a new folder (nothing was overwritten)")
    from espnet2_glow_wavegan.glow.glow_wavegan import GlowWaveGAN
    from espnet2_glow_wavegan.onnx.export import FRONTEND_KEYS, export

    with tempfile.TemporaryDirectory() as unpack_dir:
        t2s = load(args, Path(unpack_dir))
        if not isinstance(t2s.tts, GlowWaveGAN):
            raise SystemExit(f"export_onnx exports glow_wavegan models, not {type(t2s.tts).__name__} "
                             "(ESPnet's own VITS, JETS, ...: see espnet_onnx)")
        train_args = vars(t2s.train_args)
        frontend = {k: train_args.get(k) for k in FRONTEND_KEYS}
        bpemodel = frontend["bpemodel"] if frontend["token_type"] == "bpe" else None
        config = export(t2s.tts, frontend, args.out_dir, quantize=args.quantize, bpemodel=bpemodel)
    logging.info(f"wrote {config.parent} (synthesise: python -m espnet2_glow_wavegan.onnx.runtime "
                 f"--model_dir {config.parent} --text ... --output out.wav)")


if __name__ == "__main__":
    main()
