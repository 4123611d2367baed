"""Speed levers that the CPU can check: the targets cache, and bf16 autocast (on a CPU with bf16
instructions, the default there; on CUDA benchmarks/gpu_check.sh checks it), with the
statistics kept in fp32 under it."""

import numpy as np
import pytest
import torch
from PIL import Image

from swag_core import SwagError, stylize
from swag_core.engine import device
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
    loss.set_content(content, loss.targets)  # the same random directions and positions again
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low, _ = loss(x)
    assert torch.isfinite(low) and abs(low.item() - exact.item()) < 0.05 * exact.item()


def _autocast_inside(precision: str) -> bool:
    with device.Precision(precision, torch.device("cpu")):
        return torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16


def test_auto_precision_runs_the_network_in_bf16_only_on_a_cpu_with_bf16_instructions(monkeypatch):
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: True)
    assert _autocast_inside("auto") and _autocast_inside("bf16") and not _autocast_inside("fp32")
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: False)
    assert not _autocast_inside("auto") and not _autocast_inside("fp32")
    assert not torch.is_autocast_enabled("cpu")


def test_the_precision_reported_on_cuda_is_the_one_set():
    cuda = torch.device("cuda")  # only the backends' flags are set: no GPU needed
    for precision, reported in (("auto", "TF32"), ("fp32", "fp32")):
        assert device.network_precision(precision, cuda) == reported
        with device.Precision(precision, cuda):
            assert torch.backends.cudnn.allow_tf32 == torch.backends.cuda.matmul.allow_tf32 == (reported == "TF32")


def test_bf16_is_refused_on_a_cpu_without_bf16_instructions(photo, painting, monkeypatch):
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: False)
    with pytest.raises(SwagError, match="precision bf16 needs a CUDA GPU or a CPU with bf16 instructions"):
        stylize(photo, painting, size=64, iterations=1, precision="bf16", device="cpu")


@pytest.mark.skipif(not device.cpu_has_bf16(), reason="this CPU has no bf16 instructions")
def test_a_bf16_job_on_the_cpu_is_close_to_the_fp32_one_and_repeats(photo, painting):
    job = dict(size=64, iterations=8, device="cpu")
    exact = np.asarray(stylize(photo, painting, precision="fp32", **job), dtype=float)
    low = stylize(photo, painting, precision="bf16", **job)
    assert stylize(photo, painting, precision="bf16", **job).tobytes() == low.tobytes()
    low = np.asarray(low, dtype=float)
    # The job moves the photo by tens of levels; bf16 moves the result by a few.
    original = np.asarray(Image.open(photo).convert("RGB"), dtype=float)
    assert np.abs(low - exact).mean() < 0.15 * np.abs(exact - original).mean()
