"""Write a trained glow_wavegan as ONNX graphs plus the settings the runtime needs (``config.yaml``).

The exported folder::

    config.yaml            model_type, sampling rate, hop, the synthesis defaults and limits, the
                           graphs' contexts, speakers, and the ESPnet text front end (token list,
                           cleaner, g2p, tokenizer type; a BPE model is copied beside it)
    text_encoder.onnx      token ids -> encoder states
    sentence.onnx          states, length_scale, speakers -> prior statistics, durations, conditions
    flow_<k>.onnx          the inverse flow's blocks, in the order they run (squeezed frames)
    decoder.onnx           latent -> waveform
    *.int8.onnx            with ``quantize``: the flow blocks (and the iSTFT decoder) with int8 weights
                           (onnxruntime's dynamic quantisation of matrix products)
    manifest.json          every file's size and sha256, and the exporter's version (written last;
                           the runtime checks the folder against it)
"""

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
import yaml

from espnet2_glow_wavegan.onnx.graphs import convolutions_as_matmuls, exportable_parts, flow_graph, speaker_input_names
from espnet2_glow_wavegan.onnx.manifest import write_manifest
from espnet2_glow_wavegan.output_files import folder_replaced_on_success
from espnet2_glow_wavegan.synthesis.checks import is_silent_token

OPSET = 17  # LayerNormalization (the text encoder, the ConvNeXt backbone) is an operator from 17 on
# Matrix products only (convolutions are rewritten as matrix products first): onnxruntime's int8
# convolutions (ConvInteger) measured slower than float32 ones here, its int8 matrix products about
# twice as fast (benchmarks/results/onnx_runtime.md).
QUANTIZED_OPS = ["MatMul"]
FRONTEND_KEYS = ("token_type", "token_list", "bpemodel", "cleaner", "g2p", "non_linguistic_symbols")


def example_inputs(model, tokens: int = 12, frames: int = 24) -> Dict[str, Dict[str, torch.Tensor]]:
    """Inputs to trace each graph with, by graph and input name (the sizes are dynamic in the graphs)."""
    prior, wavegan = model.generator.prior, model.generator.wavegan
    hidden, latent = prior.text_encoder.attention_dim, wavegan.latent_dim
    speakers = {}
    if model.spks:
        speakers["sids"] = torch.tensor([min(1, model.spks - 1)])
    if model.spk_embed_dim:
        speakers["spembs"] = torch.randn(1, model.spk_embed_dim)
    factor = prior.squeeze_factor
    squeezed = -(-frames // factor)
    flow = dict(x=torch.randn(1, latent * factor, squeezed), mask=torch.ones(1, 1, squeezed))
    if prior.speaker.channels > 0:
        flow["g"] = torch.randn(1, prior.speaker.channels, 1)
    inputs = dict(text_encoder=dict(text=torch.randint(2, 10, (1, tokens))),
                  sentence=dict(h=torch.randn(1, hidden, tokens), length_scale=torch.tensor(1.0), **speakers),
                  **{flow_graph(k): flow for k in range(len(prior.flow.inverse_blocks()[0]))},
                  decoder=dict(z=torch.randn(1, latent, squeezed * factor)))
    if wavegan.speaker.channels > 0:
        inputs["decoder"]["g"] = torch.randn(1, wavegan.speaker.channels, 1)
    return inputs


def sentence_outputs(model) -> List[str]:
    names = ["mean", "log_std", "durations"]
    if model.generator.prior.speaker.channels > 0:
        names.append("flow_condition")
    if model.generator.wavegan.speaker.channels > 0:
        names.append("decoder_condition")
    return names


DYNAMIC = dict(text=[1], h=[2], x=[2], y=[2], mask=[2], z=[2], mean=[2], log_std=[2], durations=[1], wav=[1])


def graph_outputs(model, name: str) -> List[str]:
    if name == "sentence":
        return sentence_outputs(model)
    return dict(text_encoder=["h"], decoder=["wav"]).get(name, ["y"])  # a flow block: x -> y


def export_graph(module: torch.nn.Module, inputs: Dict[str, torch.Tensor], outputs: List[str], path: Path) -> None:
    names = list(inputs)
    dynamic = {n: {axis: f"{n}_{axis}" for axis in DYNAMIC[n]} for n in names + outputs if n in DYNAMIC}
    with torch.no_grad():
        torch.onnx.export(module, tuple(inputs.values()), str(path), input_names=names, output_names=outputs,
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False, do_constant_folding=True)


def export(model, frontend: Dict[str, Any], out_dir: Path, quantize: bool = False,
           bpemodel: Optional[Path] = None) -> Path:
    """Export ``model`` (a ``GlowWaveGAN``) with its text front end settings to ``out_dir``; returns the config path.

    Args:
        model: The trained model (left unchanged: the graphs are made from a prepared copy).
        frontend: ``token_type``, ``token_list``, ``cleaner``, ``g2p`` (and ``non_linguistic_symbols``)
            as in the model's training config.
        out_dir: A new or empty folder.
        quantize: Also write int8 versions of the graphs :func:`quantized_graphs` names
            (onnxruntime's dynamic quantisation).
        bpemodel: The BPE model file when ``token_type`` is ``bpe`` (copied into ``out_dir``).
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty: export into a new folder (nothing was overwritten)")
    out_dir.absolute().parent.mkdir(parents=True, exist_ok=True)
    # Written beside out_dir and renamed into place when whole (the manifest last): a failed export
    # leaves no half folder that the runtime could load.
    with folder_replaced_on_success(out_dir) as staging:
        _export_into(model, frontend, staging, quantize, bpemodel)
        write_manifest(staging)
    logging.info(f"exported {model.__class__.__name__} as ONNX graphs to {out_dir}")
    return out_dir / "config.yaml"


def _export_into(model, frontend: Dict[str, Any], out_dir: Path, quantize: bool, bpemodel: Optional[Path]) -> None:
    parts = exportable_parts(model)
    inputs = example_inputs(model)
    outputs = {name: graph_outputs(model, name) for name in parts}
    for name, part in parts.items():
        export_graph(part, inputs[name], outputs[name], out_dir / f"{name}.onnx")
    quantized = []
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        for name, as_matmuls in quantized_graphs(model).items():
            with tempfile.TemporaryDirectory() as tmp:
                source = Path(tmp) / f"{name}.onnx"
                graph = convolutions_as_matmuls(parts[name]) if as_matmuls else parts[name]
                export_graph(graph, inputs[name], outputs[name], source)
                source = unshared_weights(source, source)
                logging.getLogger().setLevel(max(logging.getLogger().level, logging.WARNING))  # one line per tensor
                quantize_dynamic(str(source), str(out_dir / f"{name}.int8.onnx"), weight_type=QuantType.QInt8,
                                 op_types_to_quantize=QUANTIZED_OPS)
            quantized.append(name)
    front = {k: frontend.get(k) for k in FRONTEND_KEYS}
    if front["token_type"] == "bpe":
        if bpemodel is None:
            raise ValueError("token_type bpe: give the BPE model file (bpemodel)")
        shutil.copy(bpemodel, out_dir / "bpe.model")
        front["bpemodel"] = "bpe.model"
    config = dict(model_type="glow_wavegan", **runtime_settings(model), frontend=front, quantized=quantized,
                  silent_token_ids=[i for i, t in enumerate(front["token_list"]) if is_silent_token(t)])
    (out_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))


def quantized_graphs(model) -> Dict[str, bool]:
    """The graphs ``quantize`` writes in int8, and whether their convolutions become matrix products first.

    The flow blocks: their WaveNet convolutions as matrix products. The iSTFT decoder: its ConvNeXt
    pointwise layers already are. Not the HiFi-GAN decoder (its long transposed and dilated
    convolutions as matrix products measured slower and took several GB), nor the text encoder
    and the sentence graph, which set the durations (int8 could move them by a frame).
    """
    graphs = {flow_graph(k): True for k in range(len(model.generator.prior.flow.inverse_blocks()[0]))}
    if model.generator.wavegan.decoder_type == "istft":
        graphs["decoder"] = False
    return graphs


def unshared_weights(path: Path, out: Path) -> Path:
    """``path`` with every weight its own initializer, written to ``out``.

    The exporter stores equal weights once and feeds the other users through ``Identity``
    nodes (untrained couplings' zero output layers, for one); the quantiser needs each
    convolution's weight as an initializer of its own.
    """
    import onnx
    from onnx import numpy_helper

    graph = (model := onnx.load(str(path))).graph
    weights = {w.name: w for w in graph.initializer}
    for node in [n for n in graph.node if n.op_type == "Identity" and n.input[0] in weights]:
        graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(weights[node.input[0]]), node.output[0]))
        graph.node.remove(node)
    onnx.save(model, str(out))
    return out


def runtime_settings(model) -> Dict[str, Any]:
    """What the runtime does between the graphs, and the model's synthesis defaults and limits."""
    prior, wavegan = model.generator.prior, model.generator.wavegan
    return dict(
        sampling_rate=model.fs, hop_length=wavegan.upsample_factor, latent_dim=wavegan.latent_dim,
        decoder_type=wavegan.decoder_type,
        speaker_inputs=speaker_input_names(model), spks=model.spks, spk_embed_dim=model.spk_embed_dim,
        noise_scale=float(model.noise_scale), length_scale=float(model.length_scale),
        max_output_seconds=float(model.max_output_seconds),
        squeeze_factor=prior.squeeze_factor, flow_block_reach=prior.flow.inverse_blocks()[1],
        decoder_context_frames=wavegan.decoder.context_frames(), decode_chunk_frames=model.decode_chunk_frames,
        synthesis_window_tokens=prior.synthesis_window_tokens, synthesis_window_context=prior.synthesis_window_context,
    )
