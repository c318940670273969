"""The AISHELL-3 recipe end to end on the bundled mini corpus (multi-speaker, 24 kHz, an unseen test speaker), in a scratch copy.

It runs with the iSTFT decoder (the LJSpeech test runs the paper's HiFi-GAN), so both decoders go
through every stage, the pack and ESPnet's Text2Speech.
"""

import json
import textwrap
import zipfile

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from recipe_helpers import assert_consistent_data_dir, check_paper_ablation, recipe_copy, run, table

# Stock ESPnet entry points in subprocesses: minutes (deselect with -m 'not slow').
pytestmark = pytest.mark.slow

EXP = "exp/tts_glow_wavegan_istft_tiny"
DECODE = f"{EXP}/decode_train.total_count.ave"


@pytest.fixture(scope="module")
def aishell_recipe(tmp_path_factory):
    recipe = recipe_copy(tmp_path_factory.mktemp("aishell"), "aishell3")
    proc = run(recipe, "--decoder", "istft", "--paper_ablation", "true")
    return recipe, proc


def test_aishell3_speakers_rates_and_decoding(aishell_recipe):
    recipe, _ = aishell_recipe
    train_spk = {s for _, s in table(recipe / "data/train_no_dev/utt2spk")}
    test_spk = {s for _, s in table(recipe / "data/test/utt2spk")}
    assert len(train_spk) == 4 and test_spk == {"SSB0015"}
    for dump in ("dump/raw/org/train_no_dev", "dump/raw/test"):
        assert_consistent_data_dir(recipe / dump)
        assert sf.info(table(recipe / dump / "wav.scp")[0][1]).samplerate == 24000  # from 44.1 kHz
    spk2sid = dict(table(recipe / "dump/raw/spk2sid"))
    assert spk2sid["<unk>"] == "0" and sorted(spk2sid.values(), key=int) == ["0", "1", "2", "3", "4"]
    assert {sid for _, sid in table(recipe / "dump/raw/test/utt2sid")} == {"0"}  # unseen speaker
    train_sids = dict(table(recipe / "dump/raw/train_no_dev/utt2sid"))
    assert all(train_sids[u] == spk2sid[s] for u, s in table(recipe / "dump/raw/train_no_dev/utt2spk"))
    for split in ("train_no_dev", "dev", "test"):
        embeddings = dict(kaldiio.load_scp(str(recipe / "dump/spembs" / split / "spembs.scp")))
        assert sorted(embeddings) == [u for u, _ in table(recipe / "dump/raw" / split / "wav.scp")]
        assert all(v.shape == (32,) and np.isfinite(v).all() for v in embeddings.values())
    tokens = (recipe / "dump/token_list/phn_none_pypinyin_g2p_phone/tokens.txt").read_text().split()
    assert tokens[0] == "<blank>" and any(t[-1].isdigit() for t in tokens)  # tonal pinyin phones
    scp = table(recipe / DECODE / "test/wav/wav.scp")
    assert [u for u, _ in scp] == ["SSB00150001", "SSB00150002", "SSB00150003"]
    assert all(sf.info(p).samplerate == 24000 for _, p in scp)
    assert (recipe / "exp/tts_wavegan_vae_istft_tiny/.done").exists()
    # Stage 9 of a Mandarin multi-speaker set: no CER with the English-only default ASR (it says so), and
    # the similarity of each voice to its speaker's recordings beside the recordings' own.
    summary = json.loads((recipe / DECODE / "test/scores/summary.json").read_text())
    assert "cer" not in summary and "English-only" in summary["asr"]
    assert -1 <= summary["spk_similarity"] <= 1 and 0.5 <= summary["spk_similarity_recordings"] <= 1


def test_aishell3_packed_model_speaks_for_an_unseen_speaker_with_text2speech(aishell_recipe, python_run, tmp_path):
    recipe, _ = aishell_recipe
    packed = recipe / EXP / "tts_glow_wavegan_istft_tiny_train.total_count.ave.zip"
    script = textwrap.dedent(
        f"""
        import json, kaldiio, torch
        from espnet2.bin.tts_inference import Text2Speech
        from espnet2.main_funcs.pack_funcs import unpack
        t2s = Text2Speech.from_pretrained(**unpack("{packed}", "{tmp_path / 'unpacked'}"))
        spembs = dict(kaldiio.load_scp("{recipe}/dump/spembs/test/spembs.scp"))
        other = dict(kaldiio.load_scp("{recipe}/dump/spembs/train_no_dev/spembs.scp"))
        conf = {{"noise_scale": 0.0}}
        a = t2s("今天天气很好", sids=torch.tensor([0]), spembs=torch.from_numpy(spembs["SSB00150001"]), decode_conf=conf)
        b = t2s("今天天气很好", sids=torch.tensor([0]), spembs=torch.from_numpy(other["SSB00110001"]),
                decode_conf=dict(conf, length_scale=1.0), durations=a["duration"])
        np.save("{tmp_path / 'torch.npy'}", a["wav"].numpy())
        np.save("{tmp_path / 'spembs.npy'}", spembs["SSB00150001"])
        print(json.dumps({{"n": a["wav"].numel(), "dur": int(a["duration"].sum()), "fs": t2s.fs,
                          "spks": t2s.tts.spks, "spk_embed_dim": t2s.tts.spk_embed_dim,
                          "decoder": t2s.tts.generator.wavegan.decoder_type,
                          "differs": not torch.allclose(a["wav"], b["wav"]),
                          "finite": bool(torch.isfinite(a["wav"]).all())}}))
        """
    )
    import json

    out = json.loads(python_run(["-c", "import numpy as np\n" + script]).stdout.strip().splitlines()[-1])
    assert out["fs"] == 24000 and out["spks"] == 5 and out["spk_embed_dim"] == 32 and out["finite"]
    assert out["decoder"] == "istft"
    assert out["n"] == out["dur"] * 300
    assert out["differs"], "another speaker embedding must change the voice"
    # The same zip exported to ONNX: the runtime speaks as Text2Speech does (sids and spembs, pypinyin g2p).
    python_run(["-m", "espnet2_glow_wavegan.bin.export_onnx", "--packed_model", str(packed),
                "--out_dir", str(tmp_path / "onnx")])
    from espnet2_glow_wavegan.onnx.runtime import OnnxText2Speech

    tts = OnnxText2Speech(tmp_path / "onnx")
    wav = tts("今天天气很好", sids=0, spembs=np.load(tmp_path / "spembs.npy"), noise_scale=0.0)["wav"]
    reference = np.load(tmp_path / "torch.npy")
    assert wav.shape == reference.shape
    assert np.abs(wav - reference).max() / np.sqrt(np.mean(reference**2)) < 1e-4


def test_packed_multi_speaker_model_holds_the_unseen_test_speaker(aishell_recipe):
    recipe, _ = aishell_recipe
    packed = recipe / EXP / "tts_glow_wavegan_istft_tiny_train.total_count.ave.zip"
    with zipfile.ZipFile(packed) as z:
        name = next(n for n in z.namelist() if n.endswith("spk_embeds.npz"))
        with z.open(name) as f:
            speakers = set(np.load(f).files)
    assert "SSB0015" in speakers  # test speaker, unseen in training
    assert {s for _, s in table(recipe / "data/train_no_dev/utt2spk")} <= speakers


def test_aishell3_paper_ablation_writes_both_tables(aishell_recipe):
    check_paper_ablation(aishell_recipe[0], "test", "train_no_dev")


# --- A multi-speaker model adapted to a new speaker id (tts.sh --pretrained_model, docs/adaptation.md) ---

def test_a_multi_speaker_model_adapts_to_a_new_speaker_id_and_still_voices_its_speakers(aishell_recipe, python_run,
                                                                                      tmp_path):
    """The packed mini model adapted to mini_aishell3_new_speaker (SSB0016), prior only: the pretrained speakers
    keep their ids and table rows (bit-identical), the new one gets the next id and a trained row, the WaveGAN is
    kept, and the adapted zip voices an old speaker and the new one."""
    import torch
    import yaml

    from conftest import CORPORA

    recipe, _ = aishell_recipe
    packed = recipe / EXP / "tts_glow_wavegan_istft_tiny_train.total_count.ave.zip"
    new = recipe_copy(tmp_path / "r", "aishell3")
    run(new, "--mini", "true", "--decoder", "istft", "--pretrained_model", str(packed), "--test_sets", "test",
        "--local_data_opts", "--num_dev 2", env_extra={"AISHELL3": str(CORPORA / "mini_aishell3_new_speaker")})
    old_ids, new_ids = dict(table(recipe / "dump/raw/spk2sid")), dict(table(new / "dump/raw/spk2sid"))
    assert new_ids == dict(old_ids, SSB0016="5")
    assert {sid for _, sid in table(new / "dump/raw/test/utt2sid")} == {"5"}
    adapted = new / "exp/tts_glow_wavegan_istft_tiny_adapt"
    assert yaml.safe_load((adapted / "config.yaml").read_text())["tts_conf"]["prior_params"]["spks"] == 6
    before = torch.load(recipe / EXP / "train.total_count.ave.pth", weights_only=True)
    after = torch.load(adapted / "train.total_count.ave.pth", weights_only=True)
    table_key = "tts.generator.prior.speaker.global_emb.weight"
    assert after[table_key].shape == (6, before[table_key].shape[1])
    assert torch.equal(after[table_key][:5], before[table_key])  # no gradient reaches the pretrained speakers
    start = before[table_key][1:].mean(dim=0)  # the new row's start: the trained speakers' mean
    assert not torch.allclose(after[table_key][5], start)
    wavegan = [k for k in before if k.startswith("tts.generator.wavegan.")]
    assert wavegan and all(torch.equal(before[k], after[k]) for k in wavegan)
    report = json.loads((adapted / "RESULTS_adapt.json").read_text())
    assert "TTS, pretrained model (before)" in report["sets"]["test"]
    # The adapted zip: every pretrained speaker's embedding and the new one's, and both kinds of voice.
    zipped = adapted / "tts_glow_wavegan_istft_tiny_adapt_train.total_count.ave.zip"
    with zipfile.ZipFile(zipped) as z:
        with z.open(next(n for n in z.namelist() if n.endswith("spk_embeds.npz"))) as f:
            speakers = set(np.load(f).files)
    assert speakers == {"SSB0011", "SSB0012", "SSB0013", "SSB0014", "SSB0015", "SSB0016"}
    script = textwrap.dedent(
        f"""
        import json, pathlib, numpy as np, torch
        from espnet2.bin.tts_inference import Text2Speech
        from espnet2.main_funcs.pack_funcs import unpack
        t2s = Text2Speech.from_pretrained(**unpack("{zipped}", "{tmp_path / 'unpacked'}"))
        means = np.load(next(pathlib.Path("{tmp_path / 'unpacked'}").rglob("spk_embeds.npz")))
        wavs = [t2s("今天天气很好", sids=torch.tensor([sid]), spembs=torch.from_numpy(means[spk]),
                    decode_conf={{"noise_scale": 0.0}})["wav"] for sid, spk in ((1, "SSB0011"), (5, "SSB0016"))]
        print(json.dumps({{"spks": t2s.tts.spks, "finite": all(bool(torch.isfinite(w).all()) for w in wavs),
                          "differ": wavs[0].shape != wavs[1].shape or not torch.allclose(wavs[0], wavs[1])}}))
        """
    )
    out = json.loads(python_run(["-c", script]).stdout.strip().splitlines()[-1])
    assert out == {"spks": 6, "finite": True, "differ": True}
