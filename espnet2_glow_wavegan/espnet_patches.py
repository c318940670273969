"""Every change this package makes to ESPnet's behaviour, in one place.

ESPnet 202511 has no plugin mechanism. Each patch names the ESPnet behaviour it relies on;
``tests/test_espnet_patches.py`` checks each of those against the installed ESPnet, so a
release that changes one fails there, by name, before anything else does.

1. :func:`add_to_choices`: our model classes join ESPnet's TTS registries.
2. :func:`wrap_build_model`: the tasks' ``build_model`` hands our models the token list and
   says when ``use_amp`` cannot work.
3. :func:`cli_classes` (``SynthesisText2Speech``, ``KeyedTTSTask``): what the inference CLI
   (``espnet2_glow_wavegan.bin.tts_inference``) puts in the place of ESPnet's ``Text2Speech``
   and ``TTSTask`` for one run of ESPnet's own ``main`` (:func:`run_espnet_inference`).
4. :func:`warn_on_transliteration`: stock ``Text2Speech("§§§")`` warns, as the CLIs and the ONNX
   runtime do, when the text cleaner transliterates characters the model would then read aloud.
5. :func:`optimize_for_synthesis`: ``--optimize_for_inference`` gives ESPnet's VITS our tiled
   synthesis decoder too, so that the RTFs of the two stay comparable (that VITS object only).
6. :func:`padding_zeroed_at_convolutions`: inside our models' padded batches, ESPnet's text
   encoder and HiFi-GAN convolutions (and Vocos') read zeros past each item's end, for one call.

The import hook that applies 1, 2 and 4 when ESPnet's task modules load is in
:mod:`espnet2_glow_wavegan.registry` (pure Python, active from interpreter start-up). This module
imports nothing of the package at load time, so every module may import it.
"""

import contextlib
import functools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Union

# ESPnet's task classes whose build_model gets the token list.
TASK_CLASSES = ("GANTTSTask", "TTSTask")


def add_to_choices(module, key: str, cls: type, replace: bool = False) -> None:
    """Add ``cls`` as ``tts: <key>`` to ``module.tts_choices``.

    Relies on: ``espnet2.tasks.gan_tts`` and ``espnet2.tasks.tts`` keep their TTS classes in a
    module-level ``ClassChoices`` named ``tts_choices`` whose ``classes`` dict is read when the
    parser is built and by ``build_model`` (so additions before ``main()`` are seen); its
    ``base_type`` is the required base class.
    """
    choices = module.tts_choices
    if choices.base_type is not None and not issubclass(cls, choices.base_type):
        logging.warning("espnet2_glow_wavegan: '%s' (%s) is not a %s; not added to %s",
                        key, cls.__qualname__, choices.base_type.__name__, module.__name__)
        return
    existing = choices.classes.get(key)
    if existing is not None and existing is not cls and not replace:
        # Never shadow one of ESPnet's own models (vits, jets, ...).
        logging.warning("espnet2_glow_wavegan: '%s' already names %s.%s in %s; not replaced by %s",
                        key, existing.__module__, existing.__qualname__, module.__name__, cls.__qualname__)
        return
    choices.classes[key] = cls


def wrap_build_model(module) -> None:
    """Make the task classes of ``module`` call :func:`after_build_model` on each model they build.

    Relies on: ``GANTTSTask`` and ``TTSTask`` define ``build_model(cls, args)`` as a classmethod
    in their own class body, and every model ESPnet builds goes through it: training
    (``AbsTask.main_worker``) and ``Text2Speech`` (``TTSTask.build_model_from_file``).
    """
    for name in TASK_CLASSES:
        task = getattr(module, name, None)
        if task is None or "build_model" not in vars(task) or getattr(task.build_model, "_glow_wavegan", False):
            continue
        build_model = _calling_after_build_model(task.build_model.__func__)
        task.build_model = classmethod(build_model)


def _calling_after_build_model(build):
    @functools.wraps(build)  # keeps ESPnet's source and signature reachable (``__wrapped__``)
    def build_model(cls, args):
        model = build(cls, args)
        after_build_model(model, args)
        return model

    build_model._glow_wavegan = True
    return build_model


def after_build_model(model, args) -> None:
    """What a built model learns from the task's arguments.

    - The token list: ESPnet passes a TTS model only the vocabulary size (``idim``); ours
      (``set_token_list``) also learn which ids are which symbol, to refuse text with nothing to speak.
    - ``use_amp`` without CUDA: ESPnet's mixed precision is ``torch.cuda.amp`` only and does
      nothing elsewhere, silently; this says so once.
    """
    tts = getattr(model, "tts", None)
    token_list = getattr(args, "token_list", None)
    if hasattr(tts, "set_token_list") and isinstance(token_list, (list, tuple)):
        tts.set_token_list(list(token_list))
    if getattr(args, "use_amp", False) and not getattr(args, "collect_stats", False):
        import torch

        if not torch.cuda.is_available():
            logging.warning(
                "use_amp: true has no effect here: ESPnet's mixed precision (torch.cuda.amp autocast and "
                "GradScaler) needs CUDA, and this machine has none; training runs in float32"
            )


def warn_on_transliteration(module) -> None:
    """Make ``Text2Speech``'s preprocessing warn when the cleaner transliterates its text (see text_checks).

    Relies on: ``Text2Speech`` builds its preprocessing with ``TTSTask.build_preprocess_fn(args, False)``
    (``TTSTask`` of ``espnet2.tasks.tts``, a classmethod in its class body) and calls it as
    ``preprocess_fn("<dummy>", dict(text=text))`` with the raw text. Only that key warns: validation
    batches of a training (also built with ``train=False``) stay quiet, and the CLI names its utterances
    itself (``KeyedTTSTask``).
    """
    task = getattr(module, "TTSTask", None)
    if task is None or "build_preprocess_fn" not in vars(task) or getattr(task.build_preprocess_fn, "_glow_wavegan", False):
        return
    build = task.build_preprocess_fn.__func__

    @functools.wraps(build)
    def build_preprocess_fn(cls, args, train):
        preprocess = build(cls, args, train)
        if train or preprocess is None:
            return preprocess
        from espnet2.text.cleaner import TextCleaner

        from espnet2_glow_wavegan.text_checks import warn_if_transliterated

        cleaner = TextCleaner(getattr(args, "cleaner", None))

        def warning_preprocess(uid, data):
            if uid == "<dummy>" and isinstance(data.get("text"), str):
                warn_if_transliterated("input", data["text"], cleaner(data["text"]))
            return preprocess(uid, data)

        return warning_preprocess

    build_preprocess_fn._glow_wavegan = True
    task.build_preprocess_fn = classmethod(build_preprocess_fn)


def optimize_for_synthesis(tts, mode: str) -> None:
    """Apply ``--optimize_for_inference`` (``none``, ``float32``, ``bfloat16``) to a TTS model.

    glow_wavegan through its ``optimize_for_inference``; ESPnet's VITS gets the same tiled decoder
    path by replacing its decoder's ``forward`` on that object (relies on: ``VITSGenerator``
    decodes through ``self.decoder(z, g=g)``, a ``HiFiGANGenerator``).
    """
    import torch
    from espnet2.gan_tts.vits import VITS

    from espnet2_glow_wavegan.glow.glow_wavegan import GlowWaveGAN
    from espnet2_glow_wavegan.wavegan.tiled_decoding import prepare_decoder_for_synthesis, synthesis_decode

    if mode == "none":
        return
    dtype = getattr(torch, mode)
    if isinstance(tts, GlowWaveGAN):
        tts.optimize_for_inference(decoder_dtype=dtype)
    elif isinstance(tts, VITS):
        decoder = prepare_decoder_for_synthesis(tts.generator.decoder, dtype)
        decoder.forward = functools.partial(synthesis_decode, decoder)
    else:
        raise SystemExit(f"--optimize_for_inference {mode}: supported for glow_wavegan and vits, not {type(tts).__name__}")
    logging.info(f"optimized {type(tts).__name__} for synthesis ({mode} decoder)")


@contextlib.contextmanager
def padding_zeroed_at_convolutions(module, mask, except_for=()):
    """Inside the block, every 1-D (transposed) convolution of ``module`` reads zeros past each item's end.

    ``mask`` (B, 1, T) marks the valid steps at ``module``'s input rate; a convolution whose
    input is ``rate`` times longer (the decoder's upsampled stages) reads it repeated
    ``rate`` times. An item of a padded batch then sees past its end exactly the zeros
    that a convolution pads a lone item with, so padded batches compute what each item
    alone computes. ESPnet's transformer feed-forward convolutions, HiFi-GAN and the
    ConvNeXt backbone do not mask their inputs themselves (relies on: each convolution
    is a ``torch.nn.Conv1d`` or ``ConvTranspose1d`` module called on its input). The hooks
    are on ``module`` only, and only for the block. ``except_for``: convolutions that do not
    run along time (a speaker condition's projection).
    """
    import torch

    steps = mask.size(-1)
    masks = {}

    def zero_padding(conv, args):
        x = args[0]
        length = x.size(-1)
        if length % steps:
            raise RuntimeError(f"{type(conv).__name__} input of {length} steps is no multiple of the mask's {steps}")
        if length not in masks:
            masks[length] = mask.repeat_interleave(length // steps, dim=-1)
        return (x * masks[length].to(x.dtype), *args[1:])

    convolutions = (torch.nn.Conv1d, torch.nn.ConvTranspose1d)
    skipped = {id(m) for m in except_for}
    handles = [m.register_forward_pre_hook(zero_padding) for m in module.modules()
               if isinstance(m, convolutions) and id(m) not in skipped]
    try:
        yield module
    finally:
        for handle in handles:
            handle.remove()


# ---------------------------------------------------------------------------------------------
# 3. The inference CLI. Its two classes subclass ESPnet's Text2Speech, which lives in
# espnet2.bin.tts_inference; that module imports the task modules, whose loading applies 1 and 2
# from this module. Were they defined when this module is imported, importing ESPnet's inference
# module first would ask this module for a subclass of a class not yet defined (an import cycle):
# cli_classes(run) defines them for one run, when ESPnet has finished loading, bound to that
# run's settings and results (no module state).
# ---------------------------------------------------------------------------------------------


@dataclass
class SynthesisRun:
    """Settings and results of one run of the CLI wrapper (see bin/tts_inference.py)."""

    knobs: Dict[str, float] = field(default_factory=dict)  # glow_wavegan decode_conf given on the command line
    optimize: str = "none"  # --optimize_for_inference
    on_error: str = "stop"  # --on_error
    batch_size: int = 1  # --batch_size: texts synthesised together (glow_wavegan)
    failed: Dict[str, str] = field(default_factory=dict)  # key -> reason of the utterances that failed
    latest: Optional[object] = None  # the Text2Speech that ESPnet's inference() made (it makes one)


def cli_classes(run: Optional[SynthesisRun] = None):
    """``(SynthesisText2Speech, KeyedTTSTask)`` of one ``run``: what the CLI puts in the place of ESPnet's classes."""
    import espnet2.bin.tts_inference as tts_inference

    run = SynthesisRun() if run is None else run

    class SynthesisText2Speech(tts_inference.Text2Speech):
        """ESPnet's ``Text2Speech`` as the CLI wrapper runs it.

        Relies on: ``espnet2.bin.tts_inference.inference()`` builds one ``Text2Speech`` (looked up
        in its module by name) and calls it once per utterance with the batch's tensors; ESPnet
        forwards ``noise_scale``/``speed_control_alpha`` into ``decode_conf`` only for VITS-type
        models, so for glow_wavegan the knobs given on the command line are added here; ESPnet
        unpickles the model file with ``weights_only=False``, so it is read weights-only first.
        """

        def __init__(self, *args, **kwargs):
            from espnet2_glow_wavegan.glow.glow_wavegan import GlowWaveGAN
            from espnet2_glow_wavegan.safe_load import check_model_file

            if kwargs.get("model_file") is not None:
                check_model_file(kwargs["model_file"])  # weights-only read before ESPnet unpickles it
            super().__init__(*args, **kwargs)
            if isinstance(self.tts, GlowWaveGAN):
                self.decode_conf.update(run.knobs)
            optimize_for_synthesis(self.tts, run.optimize)
            self.ready = None
            run.latest = self

        def _timed(self, call, *args, **kwargs):
            """``(call(...), seconds)``; on a GPU the clock stops when the device has finished its work."""
            import torch

            synchronize = torch.cuda.synchronize if self.device != "cpu" and torch.cuda.is_available() else (lambda: None)
            synchronize()
            start = time.perf_counter()
            out = call(*args, **kwargs)
            synchronize()
            return out, time.perf_counter() - start

        def synthesize(self, *args, **kwargs):
            """ESPnet's call, timed: the per-utterance RTF line that stage 9 reads back."""
            out, elapsed = self._timed(super().__call__, *args, **kwargs)
            samples = int(out["wav"].numel()) if out.get("wav") is not None else 0
            if samples:
                logging.info(f"RTF {elapsed * self.fs / samples:.4f} ({samples} samples at {self.fs} Hz in {elapsed:.4f} s)")
            return out

        def synthesize_batch(self, items):
            """``[self(**item) for item in items]`` in one padded batch (glow_wavegan), timed as a whole.

            Each item gets what the call on it alone gives (see ``GlowWaveGAN.batch_inference``),
            durations recomputed from ``att_w`` as ESPnet's call does; its RTF line is the batch's, with
            its share of the batch's time.
            """
            import torch
            from espnet2.torch_utils.device_funcs import to_device
            from espnet2.torch_utils.set_all_random_seed import set_all_random_seed

            from espnet2_glow_wavegan.glow.glow_wavegan import GlowWaveGAN

            if not isinstance(self.tts, GlowWaveGAN):
                raise SystemExit(f"--batch_size > 1 synthesises glow_wavegan models only, not {type(self.tts).__name__}")
            # ESPnet's decode_conf always holds use_teacher_forcing; the model's knobs are added by this CLI.
            knobs = {k: v for k, v in self.decode_conf.items() if v is not None and k != "use_teacher_forcing"}
            unsupported = sorted(set(knobs) - {"noise_scale", "length_scale", "max_output_seconds"})
            if self.decode_conf.get("use_teacher_forcing") or any("speech" in item for item in items):
                unsupported.append("use_teacher_forcing")
            if unsupported:
                raise SystemExit(f"--batch_size > 1 does not take {unsupported}: use --batch_size 1")
            sizes = [int(item["text"].numel()) for item in items]
            text = torch.zeros(len(items), max(sizes), dtype=torch.long)
            for b, item in enumerate(items):
                text[b, : sizes[b]] = torch.as_tensor(item["text"]).view(-1)
            batch = dict(text=text, text_lengths=torch.tensor(sizes))
            for key in ("sids", "spembs", "durations"):
                if any(key in item for item in items):
                    values = [torch.as_tensor(item[key]).view(-1) for item in items]
                    batch[key] = torch.nn.utils.rnn.pad_sequence(values, batch_first=True)
            batch = to_device(batch, self.device)
            if self.always_fix_seed:
                set_all_random_seed(self.seed)
            outs, elapsed = self._timed(self.tts.batch_inference, **batch, **knobs)
            samples = sum(int(out["wav"].numel()) for out in outs)
            for out in outs:
                if out.get("att_w") is not None:
                    duration, focus_rate = self.duration_calculator(out["att_w"])
                    out.update(duration=duration, focus_rate=focus_rate)
                n = int(out["wav"].numel())  # its share of the batch's time, so that stage 9's sums stay exact
                logging.info(f"RTF {elapsed * self.fs / samples:.4f} ({n} samples at {self.fs} Hz in "
                             f"{elapsed * n / samples:.4f} s) in a batch of {len(outs)}")
            return outs

        def __call__(self, *args, **kwargs):
            if self.ready is not None:  # synthesised under its key by KeyedTTSTask's iterator
                out, self.ready = self.ready, None
                return out
            return self.synthesize(*args, **kwargs)

    class KeyedTTSTask(tts_inference.TTSTask):
        """ESPnet's ``TTSTask`` as the CLI wrapper runs it: failures and front-end warnings name the utterance.

        Relies on: ``inference()`` reads the data through ``TTSTask.build_streaming_iterator``
        (batch 1, ``(keys, batch)`` pairs, in order) with the preprocessing of
        ``TTSTask.build_preprocess_fn(args, False)`` (``(uid, data) -> data``), both looked up in
        its module by name.
        """

        @classmethod
        def build_streaming_iterator(cls, *args, **kwargs):
            return synthesised_under_their_keys(super().build_streaming_iterator(*args, **kwargs), run)

        @classmethod
        def build_preprocess_fn(cls, args, train):
            from espnet2.text.cleaner import TextCleaner

            from espnet2_glow_wavegan.text_checks import warn_if_transliterated

            preprocess = super().build_preprocess_fn(args, train)
            cleaner = TextCleaner(getattr(args, "cleaner", None))

            def checked(uid, data):
                if isinstance(data.get("text"), str):
                    warn_if_transliterated(uid, data["text"], cleaner(data["text"]))
                try:
                    return preprocess(uid, data)
                except Exception as e:
                    raise SystemExit(f"ERROR: utterance {uid}: the text front end failed: {type(e).__name__}: {e}")

            return checked

    return SynthesisText2Speech, KeyedTTSTask


def synthesised_under_their_keys(loader, run: SynthesisRun):
    """ESPnet's data iterator, each utterance synthesised as it comes, so that a failure has a key."""
    if run.batch_size > 1:
        yield from synthesised_in_batches(loader, run)
        return
    for keys, batch in loader:
        out = _synthesised_alone(keys[0], _single(batch), run)
        if out is not None:
            run.latest.ready = out
            yield keys, batch


def _single(batch):
    """One utterance's inputs from a batch of one, as ESPnet's loop passes them to ``Text2Speech``."""
    return {k: v[0] for k, v in batch.items() if not k.endswith("_lengths")}


# Utterances read ahead per batch slot: sorted by length within this window, batches waste little
# on padding, while the waveforms held at once stay bounded on a large set.
READ_AHEAD_BATCHES = 16


def synthesised_in_batches(loader, run: SynthesisRun):
    """As :func:`synthesised_under_their_keys`, ``run.batch_size`` utterances at a time (``--batch_size``).

    Utterances are read ahead, sorted by text length and synthesised in padded batches; they
    are handed to ESPnet's loop in their own order. A batch that fails is synthesised one
    utterance at a time, so that the failure is named by its key (``--on_error``) and the
    others are kept.
    """
    t2s = run.latest
    pending = []

    def flush():
        done = {}
        order = sorted(range(len(pending)), key=lambda i: pending[i][1]["text"].shape[-1])
        for first in range(0, len(order), run.batch_size):
            group = [pending[i] for i in order[first : first + run.batch_size]]
            singles = [_single(batch) for _, batch in group]
            try:
                outs = t2s.synthesize_batch(singles)
            except Exception:  # an item that fails (a text, a knob): synthesised alone, it is named
                outs = [_synthesised_alone(keys[0], single, run) for (keys, _), single in zip(group, singles)]
            for (keys, _), out in zip(group, outs):
                done[keys[0]] = out
        for keys, batch in pending:
            if done[keys[0]] is not None:
                t2s.ready = done[keys[0]]
                yield keys, batch
        pending.clear()

    for keys, batch in loader:
        pending.append((keys, batch))
        if len(pending) == run.batch_size * READ_AHEAD_BATCHES:
            yield from flush()
    yield from flush()


def _synthesised_alone(key, single, run: SynthesisRun):
    """One utterance's output, or None when it fails and ``--on_error skip`` (recorded in ``run.failed``)."""
    try:
        return run.latest.synthesize(**single)
    except Exception as e:
        reason = f"{type(e).__name__}: {e}"
        if run.on_error == "stop":
            raise SystemExit(f"ERROR: utterance {key}: {reason} (--on_error skip synthesises the others)")
        logging.error(f"utterance {key} skipped: {reason}")
        run.failed[key] = reason
        return None


def run_espnet_inference(cmd, run: SynthesisRun, output_dir: Union[str, Path]) -> None:
    """ESPnet's ``tts_inference.main(cmd)`` with :func:`cli_classes` in its module, for this run.

    Relies on: ``inference()`` and ``Text2Speech.from_pretrained()`` look ``Text2Speech`` and
    ``TTSTask`` up in ``espnet2.bin.tts_inference``'s namespace at call time.
    """
    import espnet2.bin.tts_inference as tts_inference

    saved = tts_inference.Text2Speech, tts_inference.TTSTask
    tts_inference.Text2Speech, tts_inference.TTSTask = cli_classes(run)
    try:
        tts_inference.main(cmd)
    finally:
        tts_inference.Text2Speech, tts_inference.TTSTask = saved
    if run.failed:
        listing = Path(output_dir) / "failed_utts"
        listing.write_text("".join(f"{key} {reason}\n" for key, reason in sorted(run.failed.items())), encoding="utf-8")
        raise SystemExit(f"ERROR: {len(run.failed)} utterance(s) could not be synthesised; keys and reasons in {listing}")
