"""A trained glow_wavegan as the start of a new voice (``tts.sh --pretrained_model``).

    python -m espnet2_glow_wavegan.recipe.pretrained prepare --pretrained_model model.zip|exp/tts_x \\
        --out_dir exp/pretrained/<name> --vae_config conf/tuning/train_wavegan_vae.yaml \\
        --prior_finetune conf/finetune/glow_wavegan.yaml --decoder_finetune conf/finetune/wavegan_decoder.yaml

Glow-WaveGAN's two stages make adaptation cheap: the WaveGAN is a waveform autoencoder that can be
kept as it is, so a new voice's recordings are encoded once (stage 7b) and only the prior is
fine-tuned. ``prepare`` lays out what the recipe's stages read, in ``--out_dir``:

- ``tts/config.yaml``, ``tts/model.pth``: the pretrained model (a packed zip is unpacked by
  ESPnet's own ``unpack``; an experiment dir gives its ``config.yaml`` and ``--model_name``);
- ``tokens.txt`` and ``frontend.sh`` (``token_type``, ``cleaner``, ``g2p``): the pretrained front
  end, which stage 5 reuses instead of building a token list from the new text;
- ``wavegan/config.yaml``, ``wavegan/model.pth``: its WaveGAN as a ``wavegan_vae`` experiment (what
  stage 7b encodes with, copy synthesis reads and ``--adapt_decoder`` starts from). The training
  settings come from the WaveGAN experiment the pretrained prior was initialised from when its
  ``init_param`` still points at one (then its discriminator is kept too), else from
  ``--vae_config`` with an untrained discriminator (a packed model holds none);
- ``spk2sid``, ``spk_embeds.npz`` and ``speakers.sh`` of a multi-speaker model (stage 3 extends its
  spk2sid with the new speakers; ``grow_speakers`` then writes ``prior_init.pth``, its speaker table
  grown by their rows, which stage 7c starts from);
- ``finetune_prior.yaml`` (and ``finetune_decoder.yaml``): the pretrained training configs with
  the run-specific keys dropped and the fine-tuning settings of ``--prior_finetune``
  (``--decoder_finetune``; several files: each on top of the one before) on top, so the
  architecture is the pretrained one by construction.

A second ``prepare`` into the same folder lays out nothing again for the same pretrained model (its
path, size and modification time are recorded; only the fine-tuning configs are written anew) and is
an error for another one: nothing is overwritten silently.
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

import yaml

from espnet2_glow_wavegan.recipe.kaldi_dir import DataError, die

# Keys of an ESPnet config.yaml that belong to one run (its data, paths, machines, initialisation),
# not to the model or its training: a fine-tuning run gets them from the recipe's command line.
RUN_SPECIFIC = {
    "config", "print_config", "output_dir", "init_param", "freeze_param", "ignore_init_mismatch", "pretrain_path",
    "train_shape_file", "valid_shape_file", "train_data_path_and_name_and_type", "valid_data_path_and_name_and_type",
    "token_list", "required", "version", "distributed", "ngpu", "resume", "collect_stats", "write_collected_feats",
    "dry_run", "local_rank", "multiprocessing_distributed", "dist_backend", "dist_init_method", "dist_world_size",
    "dist_rank", "dist_master_addr", "dist_master_port", "dist_launcher",
}
WAVEGAN_PREFIX = "tts.generator.wavegan."


def unpack_pretrained(source: Path, out: Path, model_name: str) -> tuple:
    """(config.yaml, model file) of a packed zip (unpacked into ``out``) or of an experiment dir."""
    if source.is_file():
        from espnet2.main_funcs.pack_funcs import unpack
        import zipfile

        try:
            files = unpack(str(source), str(out / "unpacked"))
        except (zipfile.BadZipFile, KeyError, RuntimeError) as e:
            raise DataError(f"--pretrained_model {source}: not a packed ESPnet model ({e})") from None
        return Path(files["train_config"]), Path(files["model_file"])
    if source.is_dir():
        config, model = source / "config.yaml", source / model_name
        for path in (config, model):
            if not path.is_file():
                raise DataError(f"--pretrained_model {source}: experiment dir without {path.name} "
                                "(give a packed zip, or an experiment that finished training)")
        return config, model
    raise DataError(f"--pretrained_model {source}: no such file or directory")


def merged(base: dict, settings: dict) -> dict:
    """``settings`` on top of ``base``, section by section: a mapping (``tts_conf``, ``optim_conf``) keeps the keys
    ``settings`` does not name, so a fine-tuning file can change one model setting without repeating the others."""
    out = dict(base)
    for key, value in settings.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def finetune_config(pretrained: dict, finetune: dict) -> dict:
    """The pretrained training config without its run-specific keys, ``finetune``'s keys on top."""
    return merged({k: v for k, v in pretrained.items() if k not in RUN_SPECIFIC}, finetune)


def wavegan_source(config: dict, config_dir: Path) -> Path:
    """The WaveGAN model file the prior was initialised from, when it is still there (else None)."""
    for entry in config.get("init_param") or []:
        path, _, rest = str(entry).partition(":")
        if rest.startswith("tts.generator:tts.generator.wavegan"):
            # ESPnet records it relative to the recipe dir that trained it (the exp dir's parent's parent).
            for candidate in (Path(path), config_dir.parent.parent / path):
                if candidate.is_file() and (candidate.parent / "config.yaml").is_file():
                    return candidate
    return None


def named(path: Path) -> str:
    """``<experiment>/<file>`` of a file in an experiment folder."""
    return f"{path.parent.name}/{path.name}"


def wavegan_experiment(tts_config: dict, tts_state: dict, tts_config_dir: Path, vae_config: Path, out: Path) -> str:
    """Write out/config.yaml and out/model.pth, the pretrained WaveGAN as a wavegan_vae experiment; says
    where its training settings and discriminator came from."""
    import torch
    from espnet2.tasks.gan_tts import GANTTSTask

    settings = tts_config.get("tts_conf", {}).get("wavegan_params")
    if tts_config.get("tts") != "glow_wavegan" or not settings:
        raise DataError(f"the pretrained model is a {tts_config.get('tts')!r} model; --pretrained_model adapts a "
                        "glow_wavegan (for VITS, train from its checkpoint with ESPnet's --init_param)")
    trained = wavegan_source(tts_config, tts_config_dir)
    base_file = trained.parent / "config.yaml" if trained else vae_config
    if not base_file.is_file():
        raise DataError(f"--vae_config {vae_config}: missing (the WaveGAN training settings for the pretrained WaveGAN)")
    base = yaml.safe_load(base_file.read_text(encoding="utf-8"))
    config = finetune_config(base, {})
    config["tts_conf"] = dict(base.get("tts_conf") or {}, generator_params=settings)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    # A recipe config holds only what it changes: complete it with the task's defaults, as the
    # config.yaml of a training run is (what build_model_from_file and the stages read).
    parsed = vars(GANTTSTask.get_parser().parse_args(["--config", str(out / "config.yaml")]))
    config = {k: v for k, v in parsed.items() if k not in RUN_SPECIFIC or k in config}
    config["token_list"] = tts_config["token_list"]
    (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    model, _ = GANTTSTask.build_model_from_file(out / "config.yaml", None, "cpu")
    state = model.state_dict()
    generator = {"tts.generator." + k[len(WAVEGAN_PREFIX):]: v for k, v in tts_state.items() if k.startswith(WAVEGAN_PREFIX)}
    missing = sorted(k for k in state if k.startswith("tts.generator.") and k not in generator)
    if missing:
        raise DataError(f"the pretrained model has no WaveGAN weights for {missing[:3]}")
    state.update(generator)
    # Named by experiment and file, not by this machine's folders: the text reaches RESULTS_adapt.md,
    # which the packed model carries.
    origin = f"settings from {named(base_file)}"
    if trained:
        kept = {k: v for k, v in torch.load(trained, map_location="cpu", weights_only=True).items()
                if k.startswith("tts.discriminator.") and k in state and state[k].shape == v.shape}
        state.update(kept)
        origin += f", discriminator from {named(trained)}" if kept else ", discriminator untrained"
    else:
        origin += ", discriminator untrained (a packed model holds none)"
    model.load_state_dict(state, strict=True)
    torch.save(model.state_dict(), out / "model.pth")
    return origin


def speaker_settings(source: Path, out: Path, tts_config: dict) -> dict:
    """A multi-speaker pretrained model's speakers: ``out/spk2sid`` and ``out/spk_embeds.npz`` (what stage 10 packed,
    or, from an experiment dir, its recipe's dump/raw/spk2sid and the experiment's spk_embeds.npz) and
    ``out/speakers.sh`` (``pretrained_spks``, ``pretrained_spk_embed_dim``: 0 for none), which stage 3 checks."""
    conf = tts_config.get("tts_conf") or {}
    prior, wavegan = conf.get("prior_params") or {}, conf.get("wavegan_params") or {}
    spks, dim = int(prior.get("spks") or 0), int(prior.get("spk_embed_dim") or 0)
    if wavegan.get("spks"):
        raise DataError(f"--pretrained_model {source}: its WaveGAN decoder is conditioned on speaker ids; adapting it "
                        "to a new id is not supported (a WaveGAN without a speaker table is kept as it is)")
    found = {}
    for name in ("spk2sid", "spk_embeds.npz"):
        candidates = (sorted(out.rglob(name)) if source.is_file()
                      else [source.parent.parent / "dump/raw" / name, source / name])
        found[name] = next((c for c in candidates if c.is_file() and c.parent != out), None)
        if found[name]:
            shutil.copyfile(found[name], out / name)
    if spks and not found["spk2sid"]:
        raise DataError(f"--pretrained_model {source}: a model with a table of {spks} speaker ids but no spk2sid "
                        "(stage 10 packs it; an experiment dir finds it in its recipe's dump/raw/spk2sid)")
    (out / "speakers.sh").write_text(f"pretrained_spks={spks}\npretrained_spk_embed_dim={dim}\n")
    return dict(spks=spks, spk_embed_dim=dim)


SPEAKER_TABLE = "tts.generator.prior.speaker.global_emb.weight"


def grow_speakers(out: Path, spk2sid_file: Path) -> None:
    """``out/prior_init.pth``, what stage 7c starts the prior from: the pretrained model, its speaker-id table grown
    to the ids of ``spk2sid_file`` (the pretrained ids kept, the new ones after them). A new speaker's row starts at
    the mean of the pretrained speakers' rows (``<unk>``'s row never trained), and ``finetune_prior.yaml`` gets the
    new table size. Without a speaker table, the pretrained model itself."""
    import torch

    target = out / "prior_init.pth"
    if target.is_symlink() or target.exists():
        target.unlink()
    state = torch.load(out / "tts/model.pth", map_location="cpu", weights_only=True)
    if SPEAKER_TABLE not in state:
        target.symlink_to("tts/model.pth")
        return
    if spk2sid_file is None:
        raise DataError(f"{out}: the pretrained prior has a speaker-id table: give the new data's spk2sid (--use_sid true)")
    from espnet2_glow_wavegan.recipe.kaldi_dir import read_table

    table, old, new = state[SPEAKER_TABLE], read_table(out / "spk2sid"), read_table(spk2sid_file)
    moved = sorted(spk for spk in old if spk in new and new[spk] != old[spk])
    if moved:
        raise DataError(f"{spk2sid_file}: the pretrained speakers {', '.join(moved[:5])} have other ids than in "
                        f"{out / 'spk2sid'} (stage 3 extends the pretrained spk2sid; delete dump/raw/speakers to redo it)")
    size = max(map(int, new.values())) + 1
    trained = [int(sid) for spk, sid in old.items() if spk != "<unk>"]
    rows = table[trained].mean(dim=0, keepdim=True).expand(size - table.size(0), -1)
    state[SPEAKER_TABLE] = torch.cat([table, rows]) if size > table.size(0) else table
    torch.save(state, target)
    config_file = out / "finetune_prior.yaml"
    header = "".join(line for line in config_file.read_text(encoding="utf-8").splitlines(keepends=True)
                     if line.startswith("#"))
    config = merged(yaml.safe_load(config_file.read_text(encoding="utf-8")),
                    {"tts_conf": {"prior_params": {"spks": int(state[SPEAKER_TABLE].size(0))}}})
    config_file.write_text(header + f"# speaker ids: {table.size(0)} pretrained + {size - table.size(0)} new "
                           f"({spk2sid_file})\n" + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    print(f"{target}: speaker table {table.size(0)} -> {state[SPEAKER_TABLE].size(0)} ids")


def write_finetune_configs(out: Path, prior_files: list, decoder_files: list) -> None:
    """out/finetune_prior.yaml and out/finetune_decoder.yaml: the pretrained configs with the fine-tuning files on top
    (written on every run: the files or their list may have changed since the pretrained model was laid out)."""
    bases = {"prior": out / "tts/config.yaml", "WaveGAN": out / "wavegan/config.yaml"}
    for name, files, what in (("finetune_prior.yaml", prior_files, "prior"), ("finetune_decoder.yaml", decoder_files, "WaveGAN")):
        settings = {}
        for finetune in files:
            if not finetune.is_file():
                raise DataError(f"{finetune}: missing fine-tuning config")
            settings = merged(settings, yaml.safe_load(finetune.read_text(encoding="utf-8")) or {})
        if files:
            base = yaml.safe_load(bases[what].read_text(encoding="utf-8"))
            (out / name).write_text(f"# The pretrained {what}'s training config with the settings of "
                                    f"{', '.join(map(str, files))} on top (recipe.pretrained)\n"
                                    + yaml.safe_dump(finetune_config(base, settings), sort_keys=False), encoding="utf-8")


def prepare(args):
    out = args.out_dir
    source = args.pretrained_model.resolve()
    stamp = dict(pretrained_model=str(source), **({"size": source.stat().st_size, "mtime": source.stat().st_mtime}
                                                 if source.is_file() else {}))
    record = out / "source.json"
    if record.is_file():
        earlier = json.loads(record.read_text())
        if {k: earlier.get(k) for k in stamp} == stamp and (out / ".done").is_file():
            write_finetune_configs(out, args.prior_finetune, args.decoder_finetune)
            print(f"{out}: prepared from {source} ({earlier['wavegan']})")
            return
        if {k: earlier.get(k) for k in stamp} != stamp:
            raise DataError(f"{out} holds another pretrained model ({earlier['pretrained_model']}); "
                            f"move it away to adapt {source}")
    if out.exists() and not record.is_file():
        raise DataError(f"{out} exists but was not written by this step; move it away")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    import torch

    config_file, model_file = unpack_pretrained(source, out, args.model_name)
    tts_config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    tts_state = torch.load(model_file, map_location="cpu", weights_only=True)
    (out / "tts").mkdir()
    shutil.copyfile(config_file, out / "tts/config.yaml")
    shutil.copyfile(model_file, out / "tts/model.pth")
    tokens = tts_config.get("token_list")
    if isinstance(tokens, str):
        tokens = Path(tokens).read_text(encoding="utf-8").split()
    (out / "tokens.txt").write_text("".join(f"{t}\n" for t in tokens), encoding="utf-8")
    front = {k: tts_config.get(k) or "none" for k in ("token_type", "cleaner", "g2p")}
    (out / "frontend.sh").write_text("".join(f"{k}={v}\n" for k, v in front.items()))
    origin = wavegan_experiment(tts_config, tts_state, config_file.parent, args.vae_config, out / "wavegan")
    speakers = speaker_settings(source, out, tts_config)
    write_finetune_configs(out, args.prior_finetune, args.decoder_finetune)
    record.write_text(json.dumps(dict(stamp, wavegan=origin, frontend=front, speakers=speakers), indent=2) + "\n")
    (out / ".done").touch()
    print(f"{out}: prepared from {source}: front end {front}, WaveGAN {origin}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--pretrained_model", type=Path, required=True, help="a packed zip or a TTS experiment dir")
    p.add_argument("--out_dir", type=Path, required=True)
    p.add_argument("--vae_config", type=Path, required=True,
                   help="WaveGAN training settings when the pretrained model's own cannot be found")
    p.add_argument("--model_name", default="train.total_count.ave.pth", help="model file of an experiment dir")
    p.add_argument("--prior_finetune", type=Path, nargs="*", default=[])
    p.add_argument("--decoder_finetune", type=Path, nargs="*", default=[])
    g = sub.add_parser("grow_speakers", help="stage 7: the prior's start, its speaker table grown to the new spk2sid")
    g.add_argument("--out_dir", type=Path, required=True, help="the folder prepare laid out")
    g.add_argument("--spk2sid", type=Path, help="stage 3's spk2sid (the pretrained one extended), with --use_sid")
    args = parser.parse_args(argv)
    try:
        if args.command == "prepare":
            prepare(args)
        else:
            grow_speakers(args.out_dir, args.spk2sid)
    except DataError as e:
        die(str(e))


if __name__ == "__main__":
    sys.exit(main())
