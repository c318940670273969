"""Stage 11: model-zoo folder (unpacked model + model card) and its upload to the Hugging Face hub.

With ``--dry_run true`` only the folder is written: exactly what would be uploaded.
Otherwise ``huggingface_hub.HfApi`` creates ``--hf_repo`` (if needed) and uploads the
folder (no git-lfs needed; log in first with ``huggingface-cli login`` or HF_TOKEN).
"""

import argparse
import shutil
import zipfile
from pathlib import Path

import yaml

CARD = """---
tags:
- espnet
- audio
- text-to-speech
- glow-wavegan
language: {lang}
datasets:
- {dataset}
license: cc-by-4.0
library_name: espnet
pipeline_tag: text-to-speech
---

# {title}

ESPnet TTS model `{system}` trained with the `egs2/{dataset}/tts1` recipe of espnet2-glow-wavegan
(Glow-WaveGAN: a Glow-TTS flow prior over the latent of a GAN-based VAE, Cong et al., Interspeech 2021),
an ESPnet plugin ({package_source}).

## Usage

espnet2-glow-wavegan is not on PyPI. Install it from its source (it registers the model classes with
ESPnet's own entry points; tested with espnet 202511, torch 2.9.1, Python 3.11):

```bash
{install}
```

```python
import soundfile as sf
import torch
from espnet2.bin.tts_inference import Text2Speech

t2s = Text2Speech(train_config="{config}", model_file="{model}")
out = t2s("{example}"{speaker_args}, decode_conf={{"noise_scale": 0.667, "length_scale": 1.0}})
sf.write("out.wav", out["wav"].numpy(), t2s.fs)
```

{onnx}## Results

{results}

## Training config

<details><summary>config.yaml</summary>

```yaml
{config_text}
```
</details>
"""

ONNX_CARD = """### Without torch (ONNX Runtime)

`{model_dir}` holds the model as ONNX graphs (stage 10 with `--export_onnx true`). The runtime needs
numpy, onnxruntime and ESPnet's text front end, and never imports torch:

```bash
python -m espnet2_glow_wavegan.onnx.runtime --model_dir {model_dir} --text "{example}" --output out.wav
```

"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packed", type=Path, required=True, help="zip written by stage 10")
    parser.add_argument("--hf_repo", required=True, help="<user or org>/<name>")
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--lang", default="en")
    parser.add_argument("--example", default="Hello world.")
    parser.add_argument("--dry_run", type=lambda s: s.lower() == "true", default=False)
    parser.add_argument("--package_url", default="",
                        help="where users get espnet2-glow-wavegan (a git URL pip can install); default: a source checkout")
    args = parser.parse_args(argv)
    if "/" not in args.hf_repo:
        raise SystemExit(f"ERROR: --hf_repo '{args.hf_repo}' must look like <user>/<name>")
    if not args.packed.exists():
        raise SystemExit(f"ERROR: {args.packed} is missing: run stage 10 first")
    if args.out_dir.exists():  # a folder this stage made earlier from an older pack
        print(f"replacing {args.out_dir} (written by an earlier stage 11)")
        shutil.rmtree(args.out_dir)
    args.out_dir.mkdir(parents=True)
    with zipfile.ZipFile(args.packed) as z:
        z.extractall(args.out_dir)
    meta = yaml.safe_load((args.out_dir / "meta.yaml").read_text())
    config_rel = meta["yaml_files"]["train_config"]
    model_rel = meta["files"]["model_file"]
    config = yaml.safe_load((args.out_dir / config_rel).read_text())
    tts_conf = config.get("tts_conf", {})
    prior = tts_conf.get("prior_params", tts_conf.get("generator_params", {}))
    speaker_args = ""
    if prior.get("spks"):
        speaker_args += ", sids=torch.tensor([1])"
    if prior.get("spk_embed_dim"):
        speaker_args += ", spembs=torch.from_numpy(embedding)  # see spk_embeds.npz"
    results = [p for p in args.out_dir.rglob("RESULTS.md")]
    onnx_dirs = [p.parent.relative_to(args.out_dir) for p in sorted(args.out_dir.rglob("config.yaml"))
                 if (p.parent / "decoder.onnx").exists()]
    if args.package_url:
        package_source = f"source: {args.package_url}"
        install = f'pip install "espnet2-glow-wavegan @ git+{args.package_url}"'
    else:
        package_source = "from its source repository"
        install = ("git clone <espnet2-glow-wavegan repository> && cd espnet2-glow-wavegan\n"
                   "pip install .            # or: python -m build && pip install dist/espnet2_glow_wavegan-*.whl")
    card = CARD.format(
        package_source=package_source, install=install,
        lang=args.lang, dataset=args.dataset, title=args.hf_repo.split("/")[-1], system=config["tts"],
        config=config_rel, model=model_rel, example=args.example, speaker_args=speaker_args,
        onnx=ONNX_CARD.format(model_dir=onnx_dirs[0], example=args.example) if onnx_dirs else "",
        results=results[0].read_text().replace("# Results", "").strip() if results else "(no scores)",
        config_text=yaml.safe_dump(config, sort_keys=False, allow_unicode=True).strip(),
    )
    (args.out_dir / "README.md").write_text(card, encoding="utf-8")
    if args.dry_run:
        print(f"dry run: {args.out_dir} holds what would be uploaded to {args.hf_repo}")
        return
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id=args.hf_repo, repo_type="model", exist_ok=True)
    api.upload_folder(folder_path=str(args.out_dir), repo_id=args.hf_repo, repo_type="model")
    print(f"uploaded {args.out_dir} to https://huggingface.co/{args.hf_repo}")


if __name__ == "__main__":
    main()
