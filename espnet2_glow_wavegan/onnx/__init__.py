"""ONNX export of a trained glow_wavegan and a runtime that needs no torch.

``graphs`` (torch) turns the model into graphs (text encoder, sentence, the flow's blocks, decoder); ``runtime`` (numpy, onnxruntime and
ESPnet's text front end, no torch) synthesises with them. See docs/onnx.md.
"""
