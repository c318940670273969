"""What every synthesis path shares (the torch model, the ONNX runtime, the CLIs), without torch.

``plan``: which input window each stage reads for which stretch of output, and the knob
defaults. ``checks``: the input checks and their messages.
"""
