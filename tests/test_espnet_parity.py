"""What an ESPnet user expects of the recipes: speaker-model rates, online paths, ESPnet's option
names, cluster runners, Kaldi wav.scp forms."""

import os
import subprocess
import zipfile

import kaldiio
import numpy as np
import soundfile as sf
import yaml

from conftest import CORPORA, REPO
from recipe_helpers import recipe_copy, run

LJ_WAV = CORPORA / "mini_ljspeech/LJSpeech-1.1/wavs/LJ001-0001.wav"
UTILS = REPO / "egs2/TEMPLATE/tts1/utils"


def test_speaker_embeddings_are_computed_at_the_speaker_models_rate(tmp_path, monkeypatch):
    """ESPnet's RawNet3 hears 16 kHz audio; the recipe's wavs are at --fs (24 kHz for AISHELL-3)."""
    import espnet2.bin.spk_inference as spk_inference

    from espnet2_glow_wavegan.recipe.speaker_info import espnet_embedder

    heard = []

    class StandInSpeakerModel:
        def __call__(self, audio):
            heard.append(len(audio))
            import torch

            return torch.ones(1, 4)

    monkeypatch.setattr(spk_inference.Speech2Embedding, "from_pretrained", staticmethod(lambda **kw: StandInSpeakerModel()))
    wav = tmp_path / "one_second_at_24k.wav"
    sf.write(wav, np.zeros(24000, dtype=np.float32), 24000)
    embedding = espnet_embedder("espnet/voxcelebs12_rawnet3")(str(wav))
    assert heard == [16000] and embedding.shape == (4,)


def test_recipe_environment_leaves_the_hub_online():
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    out = subprocess.run(["bash", "-c", ". ./path.sh; echo ${HF_HUB_OFFLINE-unset}"], cwd=REPO / "egs2/ljspeech/tts1",
                         env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "unset"  # only the test suite (tools/test.sh) works offline


def test_upload_sends_the_folder_to_the_repo(tmp_path, monkeypatch):
    """Stage 11 for real, against a stand-in huggingface_hub.HfApi."""
    import huggingface_hub

    from espnet2_glow_wavegan.recipe import hf_upload

    packed = tmp_path / "model.zip"
    with zipfile.ZipFile(packed, "w") as z:
        z.writestr("meta.yaml", yaml.safe_dump({"files": {"model_file": "exp/m.pth"},
                                                "yaml_files": {"train_config": "exp/config.yaml"}}))
        z.writestr("exp/config.yaml", yaml.safe_dump({"tts": "glow_wavegan", "tts_conf": {"prior_params": {}}}))
        z.writestr("exp/m.pth", b"weights")
    calls = []

    class StandInHfApi:
        def create_repo(self, **kw):
            calls.append(("create_repo", kw))

        def upload_folder(self, **kw):
            calls.append(("upload_folder", kw))

    monkeypatch.setattr(huggingface_hub, "HfApi", StandInHfApi)
    out = tmp_path / "hf"
    hf_upload.main(["--packed", str(packed), "--hf_repo", "me/glow", "--out_dir", str(out), "--dataset", "ljspeech",
                    "--package_url", "https://example.org/espnet2-glow-wavegan.git"])
    assert calls == [("create_repo", dict(repo_id="me/glow", repo_type="model", exist_ok=True)),
                     ("upload_folder", dict(folder_path=str(out), repo_id="me/glow", repo_type="model"))]
    card = (out / "README.md").read_text()
    assert 'pip install "espnet2-glow-wavegan @ git+https://example.org/espnet2-glow-wavegan.git"' in card
    assert (out / "exp/m.pth").read_bytes() == b"weights"


STAND_IN_SBATCH = """#!/usr/bin/env bash
# Records its arguments, then runs --wrap here, appending to --output (as --open-mode append).
echo "$*" >> "$SBATCH_RECORD"
while [ $# -gt 0 ]; do
    case "$1" in
        --output) output=$2; shift 2 ;;
        --wrap) wrap=$2; shift 2 ;;
        --wait|--parsable) shift ;;
        *) shift 2 ;;
    esac
done
echo 4242
bash -c "$wrap" >> "$output" 2>&1
"""


def test_slurm_runner_submits_each_job_and_reports_failures(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(STAND_IN_SBATCH)
    (bin_dir / "sbatch").chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", SBATCH_RECORD=str(tmp_path / "record"),
               SLURM_SBATCH_OPTS="--account me")
    proc = subprocess.run([str(UTILS / "slurm.sh"), "--gpu", "1", "--mem", "4G", "--num_threads", "2", "JOB=1:2",
                           str(tmp_path / "log/job.JOB.log"), "echo", "hello", "JOB"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for job in (1, 2):
        log = (tmp_path / f"log/job.{job}.log").read_text()
        assert log.startswith(f"# echo hello {job}") and log.rstrip().endswith(f"hello {job}")
    record = (tmp_path / "record").read_text().splitlines()
    assert len(record) == 2 and all("--gres gpu:1" in r and "--mem 4G" in r and "--cpus-per-task 2" in r
                                    and "--account me" in r and "--wait" in r for r in record)
    failing = subprocess.run([str(UTILS / "slurm.sh"), "JOB=1:2", str(tmp_path / "log/bad.JOB.log"), "bash", "-c",
                              "exit $(( JOB - 1 ))"], env=env, capture_output=True, text=True)
    assert failing.returncode == 1 and "1 of 2 Slurm job(s) failed" in failing.stderr and "bad.2.log" in failing.stderr


def test_stage_2_reads_kaldi_pipes_and_ark_offsets(tmp_path):
    """wav.scp entries as ESPnet and Kaldi write them: `cmd |` and `file.ark:offset`, checked as files are."""
    from espnet2_glow_wavegan.recipe.format_wav import main as format_wav

    audio, fs = sf.read(LJ_WAV, dtype="int16")
    ark, ark_scp = tmp_path / "audio.ark", tmp_path / "audio.scp"
    kaldiio.save_ark(str(ark), {"u3": (fs, audio)}, scp=str(ark_scp))
    offset_entry = ark_scp.read_text().split(maxsplit=1)[1].strip()
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text(f"u1 {LJ_WAV}\nu2 cat {LJ_WAV} |\nu3 {offset_entry}\nu4 cat {tmp_path}/missing.wav |\n")
    (tmp_path / "keys").write_text("u1\nu2\nu3\nu4\n")
    out = tmp_path / "out"
    format_wav(["--data", str(data), "--keys", str(tmp_path / "keys"), "--out", str(out), "--job", "1",
                "--fs", str(fs), "--on_error", "skip"])
    written = dict(line.split() for line in (out / "split/wav.scp.1").read_text().splitlines())
    assert sorted(written) == ["u1", "u2", "u3"]
    reference = sf.read(written["u1"])[0]
    for utt in ("u2", "u3"):
        np.testing.assert_array_equal(sf.read(written[utt])[0], reference)
    bad = (out / "split/bad_utts.1").read_text()
    assert bad.startswith("u4 utterance 'u4': the command of its wav.scp entry 'cat ") and "missing.wav |" in bad
    assert "failed with exit status 1: cat: " in bad and "missing.wav: No such file or directory" in bad


def test_espnet_option_names_are_accepted_or_explained(tmp_path):
    recipe = recipe_copy(tmp_path, "ljspeech")
    for option, message in [("--vocoder_file", "--vocoder_file: not used here"), ("--use_lid", "language ids are not supported"),
                            ("--feats_normalize", "there are no features to normalise")]:
        proc = run(recipe, "--stage", "99", option, "global_mvn" if option == "--feats_normalize" else "true", check=False)
        assert proc.returncode != 0 and message in proc.stderr, (option, proc.stderr[-500:])
    proc = run(recipe, "--stage", "11", "--stop_stage", "11", "--skip_upload_hf", "true",
               "--tts_exp", "exp/somewhere", "--tts_stats_dir", "exp/stats", "--spk_embed_tag", "xvector")
    assert "Stage 11: skipped (--skip_upload_hf true)" in proc.stderr


def test_model_card_and_readme_name_a_real_install():
    readme = (REPO / "README.md").read_text()
    assert "pip install espnet2-glow-wavegan" not in readme and "not on PyPI" in readme
