import pytest
import torch

from swag_core.losses import StyleContentLoss, Weights, gram
from swag_core.networks import FeatureExtractor
from swag_core.smoothing import smooth
from swag_core.weights import load_model


def test_softmax_is_the_papers_softmax_over_all_elements_rescaled_by_their_count():
    f = torch.randn(2, 8, 5, 7) * 3
    expected = torch.softmax(f.reshape(2, -1) / 1.5, dim=1).reshape_as(f) * (8 * 5 * 7)
    assert torch.allclose(smooth(f, "softmax", 1.5), expected, rtol=1e-5, atol=1e-6)


def test_softmax_treats_each_sample_of_a_batch_on_its_own():
    f = torch.randn(3, 4, 6, 6)
    batch = smooth(f, "softmax", 1.0)
    for i in range(3):
        assert torch.allclose(batch[i : i + 1], smooth(f[i : i + 1], "softmax", 1.0), atol=1e-6)


def test_softmax_is_stable_for_huge_activations():
    # Random-weight Inception-v3 reaches 1e10 in its deep layers.
    f = torch.rand(1, 16, 4, 4) * 1e10
    out = smooth(f, "softmax", 1.0)
    assert torch.isfinite(out).all()
    assert out.sum().item() == pytest.approx(16 * 4 * 4, rel=1e-4)


def test_softmax_gradient_is_finite_and_nonzero():
    f = (torch.rand(1, 8, 6, 6) * 50).requires_grad_()
    smooth(f, "softmax", 10.0).pow(2).sum().backward()
    assert torch.isfinite(f.grad).all() and f.grad.abs().sum() > 0


def test_channel_mode_is_a_softmax_over_channels_at_each_pixel():
    f = torch.randn(2, 5, 3, 4)
    out = smooth(f, "channel", 1.0)
    assert torch.allclose(out, torch.softmax(f, dim=1) * 5, atol=1e-6)
    assert torch.allclose(out.sum(1), torch.full((2, 3, 4), 5.0))


def test_none_is_the_identity_and_unknown_modes_are_refused():
    f = torch.randn(1, 2, 3, 3)
    assert smooth(f, "none") is f
    with pytest.raises(ValueError, match="unknown smoothing"):
        smooth(f, "sigmoid")


def test_smoothing_raises_the_entropy_of_peaky_activations(photo):
    """The paper's point on a real photo: smoothing at the engine's default temperature flattens
    the deepest ResNet-50 layer (its normalised entropy, 0.94 raw, goes to above 0.99)."""
    from swag_core import images
    from swag_core.losses import activation_scale
    from swag_core.options import Options

    arch, model = load_model("resnet50")
    layer4 = FeatureExtractor(arch, model, ("layer4",))(images.to_tensor(images.open_image(photo)))["layer4"]

    def entropy(t):
        p = t.flatten() / t.sum()
        return float(-(p * p.clamp_min(1e-30).log()).sum() / torch.log(torch.tensor(float(p.numel()))))

    smoothed = smooth(layer4, "softmax", Options().temperature * activation_scale(layer4))
    assert entropy(smoothed) > 0.99 > entropy(layer4)


def test_gram_is_equation_1_divided_by_the_pixel_count():
    f = torch.randn(2, 3, 4, 5)
    flat = f.reshape(2, 3, 20)
    expected = torch.einsum("bik,bjk->bij", flat, flat) / 20
    assert torch.allclose(gram(f), expected, atol=1e-5)


@pytest.fixture(scope="module")
def resnet():
    arch, model = load_model("resnet50")
    return arch, FeatureExtractor(arch, model, arch.style_layers + (arch.content_layer,))


@pytest.mark.parametrize("smoothing", ["none", "softmax", "channel"])
def test_losses_are_normalised_to_the_content_image(resnet, smoothing):
    arch, extractor = resnet
    loss = StyleContentLoss(extractor, arch.style_layers, arch.content_layer, smoothing, 10.0,
                            set(extractor.layers), Weights(content=1.0, style=1.0))
    content, style = torch.rand(1, 3, 64, 80), torch.rand(1, 3, 64, 80) ** 2
    loss.set_targets(content, [(style, 1.0)])
    total, parts = loss(content)
    # At the content image the content term is 0 and every style layer is 1: whatever the
    # network, the smoothing and the scale of its activations, the weights mean the same.
    assert parts["content"] == pytest.approx(0.0, abs=1e-6)
    assert parts["style"] == pytest.approx(1.0, rel=1e-4)
    # The style image itself meets the style target.
    _, parts_style = loss(style)
    assert parts_style["style"] < 0.05


def test_blended_styles_average_their_gram_targets(resnet):
    arch, extractor = resnet
    a, b = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64) * 0.5
    loss = StyleContentLoss(extractor, arch.style_layers, arch.content_layer, "none", 1.0, set(), Weights())
    blended = loss.style_targets_for(a, [(a, 3.0), (b, 1.0)]).grams
    only_a = loss.style_targets_for(a, [(a, 1.0)]).grams
    only_b = loss.style_targets_for(a, [(b, 1.0)]).grams
    for name in arch.style_layers:
        expected = 0.75 * only_a[name] + 0.25 * only_b[name]
        assert torch.allclose(blended[name], expected, rtol=1e-4, atol=1e-6)
