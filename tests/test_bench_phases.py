"""The floor of ``python -m repro.bench run``: the matrix products of one optimizer step."""

from types import SimpleNamespace

from repro.bench.phases import gemm_shapes
from repro.config import make_config
from repro.design import ARMS


def test_one_step_of_m3_does_these_products():
    """Worked out by hand for the mini M3 (batch 128, hidden 512, embedding 512; mUSE 512-d
    text features, EfficientNet-Lite0 1280-d image features): per head, the first layer's
    forward and weight gradient (its input is frozen: no input gradient), the second layer's
    forward, weight and input gradients; the text-image similarity matrix forward and its
    two gradients (M3's text-text term is row-wise: no matrix product)."""
    cfg = make_config("mini", ARMS["M3"].overrides())
    task = SimpleNamespace(text_dim=512, image_feat_dim=1280)
    b = 128
    head = lambda k: [(b, k, 512), (512, b, k), (b, 512, 512), (512, b, 512), (b, 512, 512)]
    sim = [(b, 512, b), (b, b, 512), (b, b, 512)]
    assert gemm_shapes(cfg, task) == head(512) + head(1280) + sim
    macs = sum(m * k * n for m, k, n in gemm_shapes(cfg, task))
    # 5 + 3 products of 128 x 512 x 512, 2 of 128 x 1280 x 512, 3 of 128 x 512 x 128
    assert macs == 8 * 2**25 + 2 * 128 * 1280 * 512 + 3 * 2**23 == 461_373_440  # 0.92 GFLOP
    patr = make_config("mini", ARMS["PATR"].overrides())
    assert gemm_shapes(patr, task) == gemm_shapes(cfg, task)
