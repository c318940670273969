"""The tiled synthesis path of the HiFi-GAN decoder against ESPnet's one-pass forward."""

import pytest
import torch
from espnet2.gan_tts.hifigan import HiFiGANGenerator

from espnet2_glow_wavegan.wavegan.tiled_decoding import residual_block_halo, synthesis_decode, tiled_decode


def decoder(global_channels=-1):
    torch.manual_seed(0)
    dec = HiFiGANGenerator(
        in_channels=16, out_channels=1, channels=32, global_channels=global_channels, kernel_size=7,
        upsample_scales=[4, 4], upsample_kernel_sizes=[8, 8], resblock_kernel_sizes=[3, 7, 11],
        resblock_dilations=[[1, 3, 5]] * 3,
    )
    dec.remove_weight_norm()
    return dec.eval()


def test_halo_is_the_receptive_field_of_a_residual_block():
    dec = decoder()
    # kernel 11, dilations 1/3/5 then three kernel-11 dilation-1 convs: 5 * (1 + 3 + 5) + 3 * 5
    assert residual_block_halo(dec.blocks[2]) == 60
    assert residual_block_halo(dec.blocks[0]) == 1 * (1 + 3 + 5) + 3 * 1


@pytest.mark.parametrize("tile_elements", [1, 4096, 2**20])
def test_tiled_decode_equals_the_one_pass_decoder(tile_elements):
    dec = decoder(global_channels=8)
    c, g = torch.randn(2, 16, 300), torch.randn(2, 8, 1)
    with torch.inference_mode():
        expected = dec(c, g=g)
        # tile_elements=1 forces the smallest tiles (1024 samples: 5 tiles at the last stage,
        # so seams inside the residual stacks are exercised); 2**20 is one tile.
        got = tiled_decode(dec, c, g, tile_elements=tile_elements)
    assert got.shape == expected.shape == (2, 1, 300 * 16)
    assert torch.allclose(got, expected, atol=1e-5, rtol=0), (got - expected).abs().max()
    assert not torch.equal(got[0], got[1])


def test_tiles_do_not_leak_between_utterances_or_change_the_input():
    dec = decoder()
    c = torch.randn(1, 16, 300)
    kept = c.clone()
    with torch.inference_mode():
        alone = tiled_decode(dec, c, tile_elements=1)
        # A second, different item in the batch must not change the first one's output.
        batched = tiled_decode(dec, torch.cat([c, torch.randn(1, 16, 300)]), tile_elements=1)
    assert torch.equal(c, kept)
    assert torch.allclose(batched[0], alone[0], atol=1e-5, rtol=0)


def test_tiled_decode_refuses_to_run_with_autograd():
    dec = decoder()
    with pytest.raises(RuntimeError, match="inference_mode"):
        tiled_decode(dec, torch.randn(1, 16, 20))


def test_bfloat16_decoder_stays_close_and_returns_float32():
    dec = decoder(global_channels=8)
    c, g = torch.randn(1, 16, 200), torch.randn(1, 8, 1)
    with torch.inference_mode():
        expected = dec(c, g=g)
        dec.to(torch.bfloat16)
        got = synthesis_decode(dec, c, g, tile_elements=1)
    assert got.dtype == torch.float32
    relative_rms = ((got - expected).pow(2).mean() / expected.pow(2).mean()).sqrt()
    assert relative_rms < 0.03, relative_rms
