"""Synthesis from an exported glow_wavegan with onnxruntime and numpy: no torch.

    from espnet2_glow_wavegan.onnx.runtime import OnnxText2Speech
    tts = OnnxText2Speech("exp/.../onnx")
    out = tts("Hello world.", noise_scale=0.667, length_scale=1.0)   # out["wav"], out["duration"]

    python -m espnet2_glow_wavegan.onnx.runtime --model_dir D --text "Hello world." --output hello.wav

The text goes through the ESPnet text front end the model was trained with (cleaner, g2p,
tokenizer, token list from the exported ``config.yaml``), then the graphs of
:mod:`espnet2_glow_wavegan.onnx.graphs`, run by the synthesis engine that runs the torch model
(:mod:`espnet2_glow_wavegan.synthesis.engine`; :class:`OnnxStages` is its backend here): the same
checks and messages before onnxruntime sees an input, the same text windows, flow stream and decode
chunks. This module only draws the noise in numpy (or takes the ``noise`` given) and repeats each
token's prior statistics by its duration, so that with ``noise_scale`` 0 or the same noise the
waveform equals ``GlowWaveGAN.inference``'s.
"""

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np
import yaml

from espnet2_glow_wavegan.onnx.manifest import REEXPORT, check_folder
from espnet2_glow_wavegan.output_files import check_output_folder, replaced_on_success
from espnet2_glow_wavegan.synthesis.checks import (
    check_chunk_sizes,
    check_durations,
    check_speaker_inputs,
)
from espnet2_glow_wavegan.synthesis.engine import Settings, Synthesizer
from espnet2_glow_wavegan.synthesis.stream import InverseFlowStream, SynthesisStream
from espnet2_glow_wavegan.text_checks import warn_if_transliterated

PRECISIONS = ("float32", "int8")


def squeeze(x: np.ndarray, factor: int) -> np.ndarray:
    """``glow.flow.squeeze`` in numpy: (1, C, T) -> (1, C * factor, T // factor), T a multiple of ``factor``."""
    b, c, t = x.shape
    return x.reshape(b, c, t // factor, factor).transpose(0, 3, 1, 2).reshape(b, c * factor, t // factor)


def unsqueeze(y: np.ndarray, factor: int) -> np.ndarray:
    """The inverse of :func:`squeeze`: (1, C * factor, T) -> (1, C, T * factor)."""
    b, cf, t = y.shape
    return y.reshape(b, factor, cf // factor, t).transpose(0, 2, 3, 1).reshape(b, cf // factor, t * factor)


def standard_normal_draw(noise) -> Optional[np.ndarray]:
    """A given noise, (latent_dim, T) or (1, latent_dim, T), as (1, latent_dim, T) float32."""
    return None if noise is None else np.asarray(noise, dtype=np.float32).reshape(1, -1, np.shape(noise)[-1])


class OnnxText2Speech:
    """``Text2Speech``-like synthesis from an exported folder (see :mod:`espnet2_glow_wavegan.onnx.export`).

    Args:
        model_dir: The folder ``export_onnx`` wrote.
        precision: ``float32``, or ``int8`` for the graphs quantised at export (``--quantize true``).
        threads: onnxruntime's intra-op threads (default: onnxruntime's choice, one per core).
        providers: onnxruntime execution providers (default: CPU).
    """

    def __init__(self, model_dir: Union[str, Path], precision: str = "float32", threads: Optional[int] = None,
                 providers: Optional[List[str]] = None):
        import onnxruntime

        self.model_dir = Path(model_dir)
        config_path = self.model_dir / "config.yaml"
        if not config_path.is_file():
            raise FileNotFoundError(f"{config_path} not found: give the folder export_onnx wrote")
        check_folder(self.model_dir)
        self.config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        if self.config.get("model_type") != "glow_wavegan":
            raise ValueError(f"{config_path}: model_type is {self.config.get('model_type')!r}, not 'glow_wavegan'")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if precision == "int8" and not self.config["quantized"]:
            raise ValueError(f"{self.model_dir} has no int8 graphs: export with --quantize true")
        if "flow_block_reach" not in self.config:
            raise ValueError(f"{self.model_dir} holds the inverse flow as one graph (an older export); this runtime "
                             f"streams it block by block: {REEXPORT}")
        self.flow_blocks = [f"flow_{k}" for k in range(len(self.config["flow_block_reach"]))]
        options = onnxruntime.SessionOptions()
        # The sessions run one after another: a pool left spinning after its graph would take
        # the cores from the next one's (measured: the flow and the decoder 1.5-2x slower).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.inter_op_num_threads = 1
        if threads:
            options.intra_op_num_threads = threads
        providers = providers or ["CPUExecutionProvider"]
        self.sessions = {}
        for name in ("text_encoder", "sentence", *self.flow_blocks, "decoder"):
            file = f"{name}.int8.onnx" if precision == "int8" and name in self.config["quantized"] else f"{name}.onnx"
            self.sessions[name] = onnxruntime.InferenceSession(str(self.model_dir / file), options, providers=providers)
        self.sentence_outputs = [o.name for o in self.sessions["sentence"].get_outputs()]
        self.fs = self.config["sampling_rate"]
        self.hop = self.config["hop_length"]
        self._frontend = None
        self.engine = Synthesizer(OnnxStages(self))

    # -- the text front end -------------------------------------------------------------

    def frontend(self):
        """ESPnet's cleaner, tokenizer and token-id converter, as ``Text2Speech`` builds them (built on first use)."""
        if self._frontend is None:
            from espnet2.text.build_tokenizer import build_tokenizer
            from espnet2.text.cleaner import TextCleaner
            from espnet2.text.token_id_converter import TokenIDConverter

            front = self.config["frontend"]
            bpemodel = front.get("bpemodel")
            tokenizer = build_tokenizer(
                token_type=front["token_type"], bpemodel=None if bpemodel is None else str(self.model_dir / bpemodel),
                non_linguistic_symbols=front.get("non_linguistic_symbols"), g2p_type=front.get("g2p"),
            )
            self._frontend = (TextCleaner(front.get("cleaner")), tokenizer,
                              TokenIDConverter(token_list=front["token_list"], unk_symbol="<unk>"))
        return self._frontend

    def token_ids(self, text: str) -> np.ndarray:
        """Text -> token ids (T_text,) int64 through the model's front end."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        cleaner, tokenizer, converter = self.frontend()
        cleaned = cleaner(text)
        warn_if_transliterated("input", text, cleaned)
        return np.array(converter.tokens2ids(tokenizer.text2tokens(cleaned)), dtype=np.int64)

    # -- synthesis ------------------------------------------------------------------------

    def __call__(self, text: str, sids=None, spembs=None, noise_scale: Optional[float] = None,
                 length_scale: Optional[float] = None, max_output_seconds: Optional[float] = None,
                 noise: Optional[np.ndarray] = None, seed: Optional[int] = None) -> Dict[str, np.ndarray]:
        """Synthesise ``text``: ``wav`` (T_wav,) float32, ``duration`` frames per token (T_text,), ``feat_gen`` z.

        Args:
            text: Raw text, as ``Text2Speech`` takes it.
            sids: Speaker id (int or (1,)), when the model has a speaker table.
            spembs: Speaker embedding (spk_embed_dim,), when the model takes one.
            noise_scale, length_scale, max_output_seconds: As ``GlowWaveGAN.inference`` (default: the
                model's config).
            noise: The standard-normal draw (latent_dim, T_feats) or (1, latent_dim, T_feats) to use.
            seed: Seed of the noise drawn when ``noise`` is not given.
        """
        return self.synthesize_ids(self.token_ids(text), sids, spembs, noise_scale, length_scale,
                                   max_output_seconds, noise, seed)

    def synthesize_ids(self, ids: np.ndarray, sids=None, spembs=None, noise_scale=None, length_scale=None,
                       max_output_seconds=None, noise=None, seed=None, durations=None) -> Dict[str, np.ndarray]:
        """:meth:`__call__` from token ids (T_text,); ``durations`` (T_text,) frames per token override the predicted ones."""
        sentence = self.engine.sentence(ids, sids, spembs, durations, noise_scale, length_scale, max_output_seconds)
        wav, z = self.engine.one_pass(sentence, standard_normal_draw(noise), seed)
        return dict(wav=wav, duration=sentence.durations, feat_gen=z[0].T)

    def speaker_inputs(self, sids, spembs) -> Dict[str, np.ndarray]:
        """The speaker inputs as the graphs take them, checked as the torch model checks them."""
        spks, dim = self.config["spks"], self.config["spk_embed_dim"]
        sids = None if sids is None else np.asarray(sids, dtype=np.int64).reshape(-1)
        spembs = None if spembs is None else np.asarray(spembs, dtype=np.float32).reshape(-1)
        check_speaker_inputs(spks, dim, sids=None if sids is None else sids.tolist(),
                             spembs_shape=None if spembs is None else spembs.shape,
                             spembs_finite=spembs is None or bool(np.isfinite(spembs).all()))
        if sids is not None and sids.size != 1:  # one sentence, one speaker
            raise ValueError(f"speaker id {sids.tolist()}: give one speaker id")
        inputs = {}
        if spks:
            inputs["sids"] = sids
        if dim:
            inputs["spembs"] = spembs.reshape(1, dim)
        return inputs

    def stream(self, text: str, sids=None, spembs=None, noise_scale=None, length_scale=None,
               max_output_seconds=None, noise=None, seed=None, chunk_frames: int = 256,
               first_chunk_frames: int = 16) -> SynthesisStream:
        """:meth:`__call__` as a stream of waveform chunks (iterate the result); the chunks equal the one pass.

        The sentence-level graphs run here (a long text: on its first window, the next ones when
        the stream reaches them); each chunk then runs the flow blocks and the decoder only as far
        as that chunk needs, as ``GlowWaveGAN.inference_stream`` does (the same engine).
        """
        return self.stream_ids(self.token_ids(text), sids, spembs, noise_scale, length_scale, max_output_seconds,
                               noise, seed, chunk_frames, first_chunk_frames)

    def stream_ids(self, ids: np.ndarray, sids=None, spembs=None, noise_scale=None, length_scale=None,
                   max_output_seconds=None, noise=None, seed=None, chunk_frames: int = 256,
                   first_chunk_frames: int = 16, durations=None) -> SynthesisStream:
        """:meth:`stream` from token ids (T_text,); ``durations`` as in :meth:`synthesize_ids`."""
        check_chunk_sizes(chunk_frames, first_chunk_frames)
        sentence = self.engine.sentence(ids, sids, spembs, durations, noise_scale, length_scale, max_output_seconds)
        return self.engine.stream(sentence, standard_normal_draw(noise), seed,
                                  chunk_frames, first_chunk_frames)


class OnnxStages:
    """The synthesis engine's backend over an exported folder: its onnxruntime sessions on numpy arrays."""

    def __init__(self, tts: OnnxText2Speech):
        self.tts = tts  # its sessions are looked up at each call
        c = tts.config
        self.settings = Settings(
            sampling_rate=c["sampling_rate"], hop_length=c["hop_length"], vocabulary=len(c["frontend"]["token_list"]),
            silent_token_ids=frozenset(c["silent_token_ids"]), decoder_context_frames=c["decoder_context_frames"],
            decode_chunk_frames=c["decode_chunk_frames"], synthesis_window_tokens=c["synthesis_window_tokens"],
            synthesis_window_context=c["synthesis_window_context"], squeeze_factor=c["squeeze_factor"],
            noise_scale=c["noise_scale"],
            length_scale=c["length_scale"], max_output_seconds=c["max_output_seconds"])

    def token_ids(self, ids) -> List[int]:
        return np.asarray(ids, dtype=np.int64).reshape(-1).tolist()

    def speakers(self, sids, spembs) -> Dict[str, np.ndarray]:
        return self.tts.speaker_inputs(sids, spembs)

    def encode_text(self, ids, lo: int, hi: int) -> np.ndarray:
        window = np.asarray(ids, dtype=np.int64).reshape(1, -1)[:, lo:hi]
        return self.tts.sessions["text_encoder"].run(None, dict(text=window))[0]

    def join(self, pieces: List[np.ndarray]) -> np.ndarray:
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces, axis=2)

    def sentence(self, h: np.ndarray, length_scale: float, speakers: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        outs = self.tts.sessions["sentence"].run(
            None, dict(h=h, length_scale=np.array(length_scale, dtype=np.float32), **speakers))
        stages = dict(zip(self.tts.sentence_outputs, outs))
        stages["durations"] = stages["durations"][0]
        return stages

    def given_durations(self, durations, tokens: int) -> np.ndarray:
        durations = np.asarray(durations, dtype=np.int64).reshape(-1)
        check_durations(durations.tolist(), tokens)
        return durations

    def frames(self, durations: np.ndarray) -> int:
        return int(durations.sum())

    def noise_source(self, seed: Optional[int] = None) -> np.random.Generator:
        return np.random.default_rng(seed)

    def prior_sample(self, mean, log_std, durations, frames, noise_scale, noise=None, source=None) -> np.ndarray:
        """N(mean, (noise_scale * std)^2) at each of the ``frames`` frames that ``durations`` give the tokens."""
        mean_y = np.repeat(mean, durations, axis=2)
        log_std_y = np.repeat(log_std, durations, axis=2)
        if noise is None:
            noise = source.standard_normal(mean_y.shape, dtype=np.float32)
        return (mean_y + noise * np.exp(log_std_y) * np.float32(noise_scale)).astype(np.float32)

    def folded(self, z_p: np.ndarray, frames: int) -> np.ndarray:
        return np.pad(z_p, ((0, 0), (0, 0), (0, frames - z_p.shape[2])))

    def inverse_flow(self, prior, g: Optional[np.ndarray] = None) -> InverseFlowStream:
        """The inverse flow of the prior sample that ``prior(frames) -> (z_p, whole)`` gives, computed as far as asked."""
        factor = self.tts.config["squeeze_factor"]

        def block(name):
            def run(y, block_mask):
                inputs = dict(x=np.ascontiguousarray(y), mask=np.ascontiguousarray(block_mask))
                if g is not None:
                    inputs["g"] = g
                return self.tts.sessions[name].run(None, inputs)[0]
            return run

        return InverseFlowStream([block(name) for name in self.tts.flow_blocks], self.tts.config["flow_block_reach"],
                                 prior, factor, lambda z: squeeze(z, factor), lambda y: unsqueeze(y, factor),
                                 lambda pieces: np.concatenate(pieces, axis=2),
                                 lambda x: np.ones((1, 1, x.shape[2]), dtype=np.float32))

    def decode(self, z: np.ndarray, g: Optional[np.ndarray] = None) -> np.ndarray:
        inputs = dict(z=np.ascontiguousarray(z, dtype=np.float32))
        if g is not None:
            inputs["g"] = g
        return self.tts.sessions["decoder"].run(None, inputs)[0][0]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True, help="the folder export_onnx wrote")
    parser.add_argument("--text", help="text to speak (default: standard input)")
    parser.add_argument("--output", required=True, help="a .wav file")
    parser.add_argument("--sid", type=int, help="speaker id (models with a speaker table)")
    parser.add_argument("--spembs", help="speaker embedding, a .npy file (models that take one)")
    parser.add_argument("--noise_scale", type=float)
    parser.add_argument("--length_scale", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--precision", default="float32", choices=PRECISIONS)
    parser.add_argument("--threads", type=int, help="onnxruntime threads (default: one per core)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    import soundfile

    check_output_folder(args.output)
    start = time.perf_counter()
    try:
        tts = OnnxText2Speech(args.model_dir, precision=args.precision, threads=args.threads)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"ERROR: {e}")
    text = args.text if args.text is not None else sys.stdin.read()
    spembs = None if args.spembs is None else np.load(args.spembs)
    synthesis_start = time.perf_counter()
    out = tts(text, sids=args.sid, spembs=spembs, noise_scale=args.noise_scale, length_scale=args.length_scale,
              seed=args.seed)
    seconds = out["wav"].size / tts.fs
    elapsed = time.perf_counter() - synthesis_start
    with replaced_on_success(args.output) as partial:
        soundfile.write(partial, out["wav"], tts.fs, subtype="PCM_16")
    logging.info(f"{args.output}: {seconds:.2f} s of audio in {elapsed:.3f} s (RTF {elapsed / max(seconds, 1e-9):.4f}); "
                 f"{time.perf_counter() - start:.1f} s since loading")


if __name__ == "__main__":
    main()
