"""The benchmark's reference is a separate, plain implementation of the same objective: it must
compute the engine's loss and gradient, or its timings compare different work."""

import pytest
import torch

from swag_core.bench import reference as ref
from swag_core.cli import main
from swag_core.options import Options
from swag_core.engine.extractors import network_for
from swag_core.engine.pipeline import loss_for


@pytest.mark.parametrize("arch,smoothing,stats,octaves,patch,pixel", [
    ("resnet50", "softmax", "meancov", 1, 0.3, 2.0), ("resnet50", "none", "meancov", 3, 0.0, 0.0),
    ("vgg19", "softmax", "meancov", 3, 0.3, 0.0), ("vgg19", "softmax", "gram", 1, 0.0, 2.0),
    ("vgg19", "softmax", "sliced", 3, 0.3, 2.0), ("vgg19", "none", "sliced", 1, 0.0, 5.0)])
def test_reference_computes_the_engines_loss_and_gradient(arch, smoothing, stats, octaves, patch, pixel):
    cpu = torch.device("cpu")
    opts = Options.build(arch=arch, smoothing=smoothing, style_stats=stats, style_octaves=octaves,
                         patch_weight=patch, pixel_weight=pixel, device="cpu")
    g = torch.Generator().manual_seed(1)
    # 64 x 128: the deep layers (and, on the halved octaves, the middle ones) have too few
    # positions to be matched, and the pixel patches' quarter is too small (engine/losses.py).
    content, style = torch.rand(1, 3, 64, 128, generator=g), torch.rand(1, 3, 72, 64, generator=g) ** 2
    x = torch.rand(1, 3, 64, 128, generator=g)

    engine = loss_for(opts, *network_for(opts, cpu))
    engine.set_targets(content, [(style, 1.0)])
    reference = ref.ReferenceLoss(opts, cpu)
    reference.set_targets(content, style)

    xe, xr = x.clone().requires_grad_(), x.clone().requires_grad_()
    loss_engine, _ = engine(xe)
    loss_reference = reference(xr)
    loss_engine.backward()
    loss_reference.backward()
    assert loss_engine.item() == pytest.approx(loss_reference.item(), rel=5e-4)
    assert torch.allclose(xe.grad, xr.grad, rtol=1e-3, atol=1e-3 * xr.grad.abs().max().item())
    assert loss_engine.item() > 0.1  # not two zeros


@pytest.mark.slow
def test_bench_prints_and_writes_the_table(tmp_path, capsys):
    out = tmp_path / "bench.md"
    assert main(["bench", "--device", "cpu", "--sizes", "64", "--arch", "resnet50", "--evals", "1",
                 "--iterations", "2", "--out", str(out)]) == 0
    table = out.read_text()
    assert table in capsys.readouterr().out
    assert "| resnet50 | no | 64 |" in table and "| resnet50 | yes | 64 |" in table
    assert "torch " in table.splitlines()[0]


def test_bench_check_needs_a_gpu(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the check itself runs in benchmarks/gpu_check.sh")
    assert main(["bench", "--check"]) == 2
    assert "CUDA" in capsys.readouterr().err
