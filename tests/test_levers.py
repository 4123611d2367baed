"""Speed levers that the CPU can check: the targets cache, and Gram matrices kept in fp32 under
bf16 autocast (bf16 itself runs on CUDA only; benchmarks/gpu_check.sh checks it there)."""

import torch

from swag_core import stylize
from swag_core.engine.extractors import network_for
from swag_core.engine.losses import gram
from swag_core.engine.pipeline import TARGETS, loss_for
from swag_core.options import Options


def test_a_repeated_job_reuses_its_targets_and_gives_the_same_image(photo, painting):
    job = dict(size=64, iterations=3, device="cpu")
    TARGETS.clear()
    first = stylize(photo, painting, **job)
    hits = TARGETS.hits
    again = stylize(photo, painting, **job)
    assert TARGETS.hits == hits + 1
    assert again.tobytes() == first.tobytes()
    # Another strength shares the targets too; another temperature does not.
    stylize(photo, painting, strength=0.5, **job)
    stylize(photo, painting, temperature=5.0, **job)
    assert TARGETS.hits == hits + 2


def test_gram_stays_fp32_under_bf16_autocast():
    f = torch.randn(1, 16, 32, 32) * 10
    with torch.autocast("cpu", dtype=torch.bfloat16):
        g = gram(f.to(torch.bfloat16))
    assert g.dtype == torch.float32
    assert torch.allclose(g, gram(f.to(torch.bfloat16).float()), rtol=1e-6)


def test_the_loss_under_bf16_autocast_is_close_to_fp32():
    opts = Options.build(device="cpu")
    loss = loss_for(opts, *network_for(opts, torch.device("cpu")))
    g = torch.Generator().manual_seed(0)
    content, style, x = (torch.rand(1, 3, 64, 64, generator=g) for _ in range(3))
    loss.set_targets(content, [(style, 1.0)])
    exact, _ = loss(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low, _ = loss(x)
    assert torch.isfinite(low) and abs(low.item() - exact.item()) < 0.05 * exact.item()
