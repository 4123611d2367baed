import dataclasses

import pytest
import torch

from swag_core import stylize
from swag_core.engine import losses
from swag_core.engine.extractors import network_for
from swag_core.engine.losses import (LossSettings, StyleContentLoss, Weights, gram, layer_weights, mean_covariance,
                                     patch_distance, pixel_patches, sliced_distance)
from swag_core.engine.networks import FeatureExtractor
from swag_core.engine.pipeline import loss_for
from swag_core.engine.smoothing import smooth
from swag_core.engine.weights import load_model
from swag_core.imaging import images
from swag_core.options import Options


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


def test_shift_is_the_first_order_expansion_of_the_softmax():
    f = torch.randn(2, 4, 5, 5)
    shifted = smooth(f, "shift", 2.0)
    z = f.reshape(2, -1) / 2.0
    assert torch.allclose(shifted, (1 + z - z.mean(1, keepdim=True)).reshape_as(f), atol=1e-6)
    # Linear: the softmax's curvature is gone; and at a high temperature the two agree.
    assert torch.allclose(smooth(2 * f, "shift", 2.0) - 1, 2 * (shifted - 1), atol=1e-5)
    assert torch.allclose(smooth(f, "softmax", 100.0), smooth(f, "shift", 100.0), atol=1e-3)
    assert not torch.allclose(smooth(f, "softmax", 1.0), smooth(f, "shift", 1.0), atol=0.1)


def test_linearisation_error_tells_a_linear_softmax_from_a_non_linear_one():
    from swag_core.engine.smoothing import linearisation_error

    f = torch.relu(torch.randn(1, 8, 6, 6)) ** 2  # peaky, as ReLU activations are
    assert linearisation_error(f, 1000.0) < 0.01  # hot: the softmax is its expansion
    assert linearisation_error(f, 0.5) > 0.5  # cold: far from it


def test_unscaled_smoothing_sums_to_one_as_the_papers():
    f = torch.randn(1, 3, 4, 4)
    assert smooth(f, "softmax", 1.0, scaled=False).sum().item() == pytest.approx(1.0, rel=1e-5)
    assert smooth(f, "shift", 1.0, scaled=False).sum().item() == pytest.approx(1.0, rel=1e-5)


def test_none_is_the_identity_and_unknown_modes_are_refused():
    f = torch.randn(1, 2, 3, 3)
    assert smooth(f, "none") is f
    with pytest.raises(ValueError, match="unknown smoothing"):
        smooth(f, "sigmoid")


def test_smoothing_raises_the_entropy_of_peaky_activations(photo):
    """The paper's point on a real photo: smoothing at the engine's default temperature flattens
    the deepest ResNet-50 layer (its normalised entropy, 0.94 raw, goes to above 0.99)."""
    from swag_core.engine.losses import activation_scale

    arch, model = load_model("resnet50")
    layer4 = FeatureExtractor(arch, model, ("layer4",))(images.to_tensor(images.open_image(photo)))["layer4"]

    def entropy(t):
        p = t.flatten() / t.sum()
        return float(-(p * p.clamp_min(1e-30).log()).sum() / torch.log(torch.tensor(float(p.numel()))))

    smoothed = smooth(layer4, "softmax", Options().temperature * activation_scale(layer4))
    assert entropy(smoothed) > 0.99 > entropy(layer4)


def test_mean_covariance_is_the_centred_gram_and_the_means():
    f = torch.randn(1, 3, 4, 5) + 2
    stats = mean_covariance(f)
    flat = f.reshape(3, 20)
    assert torch.allclose(stats[0, :, 3], flat.mean(1), atol=1e-6)
    assert torch.allclose(stats[0, :, :3], torch.cov(flat, correction=0), atol=1e-5)
    # A constant added to the activations (what SWAG's softmax nearly is at the default
    # temperature) moves the means and leaves the covariance alone.
    shifted = mean_covariance(f + 5)
    assert torch.allclose(shifted[0, :, :3], stats[0, :, :3], atol=1e-4)
    assert torch.allclose(shifted[0, :, 3], stats[0, :, 3] + 5, atol=1e-5)


def test_layer_weights_favour_shallow_layers_and_sum_to_one():
    assert layer_weights("shallow", 5) == pytest.approx([256 / 341, 64 / 341, 16 / 341, 4 / 341, 1 / 341])
    assert layer_weights("equal", 4) == pytest.approx([0.25] * 4)


def test_gram_is_equation_1_divided_by_the_pixel_count():
    f = torch.randn(2, 3, 4, 5)
    flat = f.reshape(2, 3, 20)
    expected = torch.einsum("bik,bjk->bij", flat, flat) / 20
    assert torch.allclose(gram(f), expected, atol=1e-5)


@pytest.fixture(scope="module")
def resnet():
    arch, model = load_model("resnet50")
    return arch, FeatureExtractor(arch, model, arch.style_layers + (arch.content_layer,))


@pytest.mark.parametrize("stats", ["gram", "meancov", "sliced"])
@pytest.mark.parametrize("smoothing", ["none", "softmax", "shift", "channel"])
def test_losses_are_normalised_to_the_content_image(resnet, smoothing, stats):
    arch, extractor = resnet
    settings = LossSettings(smoothing, 10.0, "spread", frozenset(extractor.layers), stats, "shallow")
    loss = StyleContentLoss(extractor, arch.style_layers, arch.content_layer, settings)
    content, style = torch.rand(1, 3, 64, 80), torch.rand(1, 3, 64, 80) ** 2
    loss.set_targets(content, [(style, 1.0)])
    total, parts = loss(content)
    # At the content image the content term is 0 and every style layer matched is 1: whatever
    # the network, the smoothing and the scale of its activations, the weights mean the same.
    assert parts["content"] == pytest.approx(0.0, abs=1e-6)
    assert parts["style"] == pytest.approx(_matched_weight(loss), rel=1e-4)
    assert "layer4" not in loss.targets.stats  # 2 x 3 positions here (STYLE_MIN_POSITIONS)
    # The style image itself meets the style target.
    _, parts_style = loss(style)
    assert parts_style["style"] < 0.05


def _matched_weight(loss: StyleContentLoss) -> float:
    """The weights of the style layers matched at the targets' scale, together."""
    return sum(w for w, name in zip(loss.layer_weights, loss.style_layers) if name in loss.targets.stats)


def test_the_content_share_scales_the_content_term_alone(resnet):
    arch, extractor = resnet
    settings = LossSettings("softmax", 10.0, "spread", frozenset(extractor.layers), "meancov", "equal",
                            weights=Weights(content=2.0, style=1.0))
    loss = StyleContentLoss(extractor, arch.style_layers, arch.content_layer, settings)
    g = torch.Generator().manual_seed(5)
    content, style, x = (torch.rand(1, 3, 64, 64, generator=g) for _ in range(3))
    loss.set_targets(content, [(style, 1.0)])
    whole, parts = loss(x)
    loss.set_content(content, loss.targets, content_share=0.25)
    quarter, parts_quarter = loss(x)
    assert parts_quarter == pytest.approx(parts)  # the terms themselves are unchanged
    assert parts["content"] > 0.01
    assert float(whole - quarter) == pytest.approx(0.75 * 2.0 * parts["content"], rel=1e-4)


def test_paper_scaling_is_the_public_codes_loss(resnet):
    """loss_scaling="paper": raw temperature 1, the literal softmax on the smoothed layers,
    Gram / (C*H*W), mean squared differences, content + 1e17 * the sum of the style layers."""
    arch, extractor = resnet
    deep = frozenset({"layer3", "layer4"})
    settings = LossSettings("softmax", 1.0, "raw", deep, "gram", "equal", "paper", Weights(1.0, 1.0, 0.0))
    loss = StyleContentLoss(extractor, arch.style_layers, arch.content_layer, settings)
    g = torch.Generator().manual_seed(3)
    content, style, x = (torch.rand(1, 3, 64, 64, generator=g) for _ in range(3))
    loss.set_targets(content, [(style, 1.0)])
    total, _ = loss(x)

    def feats(image):
        out = extractor(image)
        return {k: torch.softmax(v.reshape(1, -1), 1).reshape_as(v) if k in deep else v for k, v in out.items()}

    def paper_gram(f):
        a, b, c, d = f.shape
        m = f.reshape(a * b, c * d)
        return m @ m.t() / (a * b * c * d)

    fx, fs, fc = feats(x), feats(style), feats(content)
    style_loss = sum(((paper_gram(fx[k]) - paper_gram(fs[k])) ** 2).mean() for k in arch.style_layers)
    content_loss = ((fx["layer3"] - fc["layer3"]) ** 2).mean()
    assert total.item() == pytest.approx((content_loss + 1e17 * style_loss).item(), rel=1e-3)


def test_blended_styles_average_their_gram_targets(resnet):
    arch, extractor = resnet
    a, b = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64) * 0.5
    loss = StyleContentLoss(extractor, arch.style_layers, arch.content_layer, LossSettings("none"))
    blended = loss.style_targets_for(a, [(a, 3.0), (b, 1.0)]).stats
    only_a = loss.style_targets_for(a, [(a, 1.0)]).stats
    only_b = loss.style_targets_for(a, [(b, 1.0)]).stats
    assert set(blended) == set(only_a) == set(only_b)
    for name in only_a:
        expected = 0.75 * only_a[name] + 0.25 * only_b[name]
        assert torch.allclose(blended[name], expected, rtol=1e-4, atol=1e-6)


def test_sliced_distance_compares_distributions_whatever_the_positions():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(1, 8, 40, 40, generator=g)
    positions = features.flatten(2)[0]
    shuffled = positions[:, torch.randperm(1600, generator=g)]
    directions = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    assert sliced_distance(features, shuffled, directions()).item() == pytest.approx(0.0, abs=1e-10)
    # Each projection of a shift by s along every channel moves by s times the sum of the unit
    # direction's components: C directions whose squared sums add up to about C.
    shifted = sliced_distance(features, positions + 0.5, directions()).item()
    assert shifted == pytest.approx(0.25 * 8, rel=0.6)
    # A style sample of another size is compared through its quantiles.
    assert sliced_distance(features, positions[:, ::3], directions()).item() < 0.02 * shifted


def test_sliced_distance_tells_sparse_responses_from_dense_ones_which_moments_do_not():
    """Sparse responses (mostly 0, a few strong ones: marks on flat paper) and dense Gaussian
    ones with the same mean and covariance: equal to the means and covariances, told apart by
    the sliced distance."""
    g = torch.Generator().manual_seed(3)
    dense = torch.randn(1, 4, 64, 64, generator=g)
    strong = torch.rand(1, 4, 64, 64, generator=g) < 0.1
    sparse = torch.where(strong, torch.randn(1, 4, 64, 64, generator=g).sign() * 10 ** 0.5, torch.zeros(()))
    other_dense = torch.randn(1, 4, 64, 64, generator=g)
    moments = lambda a, b: (mean_covariance(a) - mean_covariance(b)).pow(2).sum().item()  # noqa: E731
    sliced = lambda a, b: sliced_distance(a, b.flatten(2)[0], torch.Generator().manual_seed(0)).item()  # noqa: E731
    assert moments(sparse, dense) < 2 * moments(other_dense, dense)
    assert sliced(sparse, dense) > 20 * sliced(other_dense, dense)


def test_sliced_style_targets_sample_the_blend_and_the_loss_repeats_per_region(monkeypatch):
    arch, model = load_model("vgg19")
    extractor = FeatureExtractor(arch, model, arch.style_layers + (arch.content_layer,), "avg")
    settings = LossSettings("softmax", 10.0, "spread", frozenset(extractor.layers), "sliced")
    loss = StyleContentLoss(extractor, arch.style_layers, arch.content_layer, settings)
    g = torch.Generator().manual_seed(6)
    content, style, other, x = (torch.rand(1, 3, 48, 64, generator=g) ** (k + 1) for k in range(4))
    monkeypatch.setattr(losses, "SLICED_SAMPLE", 40)
    targets = loss.style_targets_for(content, [(style, 3.0), (other, 1.0)])
    style_positions = set(map(tuple, loss._smoothed(loss._activations(style), targets.units)["relu2_1"]
                              .flatten(2)[0].T.tolist()))
    sample = targets.stats["relu2_1"]
    assert sample.shape[1] == 40 and sum(tuple(c) in style_positions for c in sample.T.tolist()) == 30
    # Every step draws new directions (and positions), and each region's draws start afresh,
    # so that a job repeats.
    loss.set_content(content, targets)
    first, second = loss(x)[0].item(), loss(x)[0].item()
    loss.set_content(content, targets)
    assert first != second and loss(x)[0].item() == first


def test_rescaling_random_filters_layer_by_layer_changes_nothing():
    """He, Wang and Hopcroft rescale random VGG filters layer by layer so that no layer's loss
    dominates. Here that is a no-op: random VGG is bias-free (torchvision zeroes the biases),
    ReLU and max pooling are positively homogeneous, and every layer is measured in units of
    its own spread at the content image, so any positive factor per layer cancels."""
    import copy

    arch, model = load_model("vgg19")
    layers = arch.style_layers + (arch.content_layer,)
    rescaled = copy.deepcopy(model)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for conv in (m for m in rescaled.features if isinstance(m, torch.nn.Conv2d)):
            assert not conv.bias.any()
            conv.weight.mul_(10 ** (4 * torch.rand((), generator=g) - 2))  # 0.01 to 100
    settings = LossSettings("softmax", 10.0, "spread", frozenset(layers), weights=Weights(0.3, 1.0))
    content, style, x = (torch.rand(1, 3, 64, 64, generator=g) for _ in range(3))
    results, deepest = [], []
    for network in (model, rescaled):
        extractor = FeatureExtractor(arch, network, layers)
        deepest.append(extractor(content)[arch.style_layers[-1]].abs().mean())
        loss = StyleContentLoss(extractor, arch.style_layers, arch.content_layer, settings)
        loss.set_targets(content, [(style, 1.0)])
        image = x.clone().requires_grad_(True)
        total, _ = loss(image)
        total.backward()
        results.append((total.detach(), image.grad))
    (loss_a, grad_a), (loss_b, grad_b) = results
    assert not torch.isclose(deepest[0], deepest[1], rtol=0.5)  # the activations did change
    assert torch.allclose(loss_a, loss_b, rtol=1e-4)
    assert torch.allclose(grad_a, grad_b, rtol=1e-3, atol=1e-4 * grad_a.abs().max().item())


def test_style_octaves_match_the_style_on_the_halved_images_too():
    import torch.nn.functional as F

    arch, model = load_model("vgg19")
    extractor = FeatureExtractor(arch, model, arch.style_layers + (arch.content_layer,), "avg")
    settings = LossSettings("softmax", 10.0, "spread", frozenset(extractor.layers), "meancov", style_octaves=3)
    loss = StyleContentLoss(extractor, arch.style_layers, arch.content_layer, settings, min_size=16)
    assert loss.style_layers[:5] == arch.style_layers and loss.style_layers[-1] == "relu5_1@2"
    # The octaves' shares halve from the image's own size down: 4/7, 2/7, 1/7 of the style weight.
    assert [sum(loss.layer_weights[5 * k:5 * k + 5]) for k in range(3)] == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    g = torch.Generator().manual_seed(1)
    content, style = torch.rand(1, 3, 64, 96, generator=g), torch.rand(1, 3, 64, 96, generator=g) ** 3
    loss.set_targets(content, [(style, 1.0)])
    # Octave 2 is the style a quarter the size, through the same network and smoothing.
    quarter = F.interpolate(style, size=(16, 24), mode="bilinear", align_corners=False, antialias=True)
    units = loss.targets.units
    f = smooth(extractor(quarter)["relu1_1"] / units["relu1_1@2"], "softmax", 10.0)
    assert torch.allclose(loss.targets.stats["relu1_1@2"], mean_covariance(f), rtol=1e-4, atol=1e-6)
    # Normalised as every layer: 1 at the content, near 0 at the style.
    assert loss(content)[1]["style"] == pytest.approx(_matched_weight(loss), rel=1e-4)
    assert loss(style)[1]["style"] < 0.05
    # An octave never goes below the network's smallest input.
    small = StyleContentLoss(extractor, arch.style_layers, arch.content_layer, settings, min_size=24)
    assert min(small._activations(torch.rand(1, 3, 32, 48))["relu1_1@2"].shape[-2:]) == 24


def test_a_style_layer_is_matched_only_where_it_has_enough_positions():
    """A distribution of a deep layer's few positions on a small image asks for the style's
    composition: such layers are left out of the style term at that scale (STYLE_MIN_POSITIONS),
    but for the public code's loss, which matches every layer."""
    arch, model = load_model("vgg19")
    extractor = FeatureExtractor(arch, model, arch.style_layers + (arch.content_layer,), "avg")
    settings = LossSettings("softmax", 10.0, "spread", frozenset(extractor.layers), "sliced", style_octaves=3)
    loss = StyleContentLoss(extractor, arch.style_layers, arch.content_layer, settings, min_size=16)
    g = torch.Generator().manual_seed(2)
    content, style = torch.rand(1, 3, 64, 96, generator=g), torch.rand(1, 3, 80, 80, generator=g)
    loss.set_targets(content, [(style, 1.0)])
    # 16 x 24 positions: relu3_1 on the image, relu2_1 on its half, relu1_1 on its quarter.
    assert set(loss.targets.stats) == {"relu1_1", "relu2_1", "relu3_1", "relu1_1@1", "relu2_1@1", "relu1_1@2"}
    assert set(loss.targets.norms) == set(loss.targets.stats)
    assert _matched_weight(loss) < 0.8
    assert loss(content)[1]["style"] == pytest.approx(_matched_weight(loss), rel=1e-4)
    paper = dataclasses.replace(settings, style_stats="gram", scaling="paper")
    everything = StyleContentLoss(extractor, arch.style_layers, arch.content_layer, paper, min_size=16)
    everything.set_targets(content, [(style, 1.0)])
    assert set(everything.targets.stats) == set(everything.style_layers)


@pytest.mark.parametrize("patch, runs_to", [
    # Matched (16 x 24 positions): up to relu3_1 on the image, relu2_1 on its half, relu1_1 on its quarter.
    (0.0, ["relu3_1", "relu2_1", "relu1_1"]),
    # The nearest patches search relu3_1, the middle style layer, on the half and the quarter.
    (0.1, ["relu3_1", "relu3_1", "relu3_1"]),
])
def test_a_step_runs_each_octave_only_as_deep_as_the_layers_it_matches(patch, runs_to):
    """The layers left out at a scale cost nothing: each pass of a step stops at the deepest
    layer its octave needs, and gives the same loss and gradient as the full passes."""
    arch, model = load_model("vgg19")
    extractor = FeatureExtractor(arch, model, arch.style_layers + ("relu1_1",), "avg")
    settings = LossSettings("softmax", 10.0, "spread", frozenset(extractor.layers), "sliced", style_octaves=3,
                            weights=Weights(content=0.1, patch=patch))
    loss = StyleContentLoss(extractor, arch.style_layers, "relu1_1", settings, min_size=16)
    g = torch.Generator().manual_seed(3)
    content, style = torch.rand(1, 3, 64, 96, generator=g), torch.rand(1, 3, 80, 80, generator=g)
    loss.set_targets(content, [(style, 1.0)])
    deepest = []
    extractor.stages[0].register_forward_hook(lambda *_: deepest.append(None))
    for name, stage in zip(extractor.order, extractor.stages):
        stage.register_forward_hook(lambda *_, name=name: deepest.__setitem__(-1, name))
    image = content.clone().requires_grad_(True)
    total, _ = loss(image)
    total.backward()
    assert deepest == runs_to

    everything = loss._activations
    loss._activations = lambda x, needed=None: everything(x)  # the full passes
    loss.set_content(content, loss.targets)  # the same random directions again
    full = image.detach().clone().requires_grad_(True)
    full_total, _ = loss(full)
    full_total.backward()
    assert torch.equal(total, full_total) and torch.equal(image.grad, full.grad)


def test_pixel_patches_are_matched_on_the_octaves_at_least_64_px_long():
    def octaves(h, w):
        return losses.pixel_octaves(torch.zeros(1, 3, h, w))
    # The scales of a 3:2 photo at `balanced`, 128 to 512 px long.
    assert [octaves(h, w) for h, w in [(85, 128), (121, 181), (171, 256), (241, 362), (341, 512)]] == [2, 2, 3, 3, 3]
    assert octaves(2000, 3000) == losses.PIXEL_OCTAVES
    assert octaves(60, 100) == 1


def test_patch_distance_is_the_mean_distance_to_the_most_similar_bank_column():
    g = torch.Generator().manual_seed(2)
    features, bank = torch.randn(1, 8, 5, 6, generator=g), torch.randn(8, 20, generator=g)
    columns = features.flatten(2)[0].T
    expected = []
    for f in columns:  # by hand: the most similar column by cosine, its squared distance
        cosines = [float(f @ b / (f.norm() * b.norm())) for b in bank.T]
        expected.append(float((f - bank[:, cosines.index(max(cosines))]).pow(2).sum()))
    assert patch_distance(features, bank, chunk=7).item() == pytest.approx(sum(expected) / len(expected), rel=1e-5)
    # Positions that are all in the bank are at distance 0.
    assert patch_distance(features, torch.cat([bank, columns.T], 1)).item() == pytest.approx(0.0, abs=1e-5)


def test_patch_term_is_normalised_and_its_bank_shared_by_the_blend(monkeypatch):
    arch, model = load_model("vgg19")
    extractor = FeatureExtractor(arch, model, arch.style_layers + (arch.content_layer,), "avg")
    settings = LossSettings("softmax", 10.0, "spread", frozenset(extractor.layers), "meancov",
                            weights=Weights(0.05, 1.0, patch=0.3), style_octaves=2)
    loss = StyleContentLoss(extractor, arch.style_layers, arch.content_layer, settings)
    assert loss.patch_layers == ("relu3_1@1",)  # the middle style layer, on the halved octaves
    g = torch.Generator().manual_seed(4)
    content, style, other = (torch.rand(1, 3, 48, 64, generator=g) ** (k + 1) for k in range(3))
    loss.set_targets(content, [(style, 1.0)])
    # 1 at the content, 0 at the style, whose every position is in the bank (12 x 16 < PATCH_BANK).
    assert loss(content)[1]["patch"] == pytest.approx(1.0, rel=1e-4)
    assert loss(style)[1]["patch"] == pytest.approx(0.0, abs=1e-4)
    # A blend draws a random subset of each style's positions, in proportion to its weight.
    monkeypatch.setattr(losses, "PATCH_BANK", 20)
    bank = loss.style_targets_for(content, [(style, 3.0), (other, 1.0)]).patches["relu3_1@1"]
    style_columns = set(map(tuple, loss._smoothed(loss._activations(style), loss.targets.units)["relu3_1@1"]
                            .flatten(2)[0].T.tolist()))
    assert len(style_columns) == 48 and bank.shape[1] == 20
    assert sum(tuple(c) in style_columns for c in bank.T.tolist()) == 15
    # With one octave the term is on the image itself; off by default in LossSettings (the paper's loss).
    one = dataclasses.replace(settings, style_octaves=1)
    assert StyleContentLoss(extractor, arch.style_layers, arch.content_layer, one).patch_layers == ("relu3_1",)
    assert StyleContentLoss(extractor, arch.style_layers, arch.content_layer, LossSettings()).patch_layers == ()


def _term_after_stylising(photo, painting, term: str, weights, **settings) -> dict[float, float]:
    """For each of `weights` of the setting `<term>_weight`, the loss term `term` (1 at the photo,
    measured with the default weights) of the photo stylised with that weight."""
    job = dict(size=96, iterations=30, device="cpu", **settings)
    opts = Options.build(**job)
    loss = loss_for(opts, *network_for(opts, torch.device("cpu")))
    results = {w: stylize(photo, painting, **{f"{term}_weight": w}, **job) for w in weights}
    content = images.to_tensor(images.open_image(photo).convert("RGB").resize(results[weights[0]].size))
    style = images.to_tensor(images.open_image(painting).convert("RGB").resize((96, 96)))
    loss.set_targets(content, [(style, 1.0)])
    return {w: loss(images.to_tensor(r.convert("RGB")))[1][term] for w, r in results.items()}


def test_a_stylisation_with_the_patch_term_ends_nearer_the_styles_patches(photo, painting):
    # Without the pixel term, which also brings the image nearer the style's patches.
    patch = _term_after_stylising(photo, painting, "patch", (0.0, 3.0), pixel_weight=0.0)
    # Both moved off the photo (1 on this term); the run with the patch term, further. The
    # margin is small because the default style term (the sliced distance) already brings the
    # image near the style's patches: 0.47 without the patch term and 0.45 with it here, where
    # the means and covariances gave 0.52 and 0.44.
    assert patch[3.0] < 0.97 * patch[0.0] and patch[0.0] < 0.8


def test_pixel_patches_are_the_images_own_patches_and_carry_the_gradient():
    g = torch.Generator().manual_seed(7)
    image = torch.rand(1, 3, 12, 15, generator=g, requires_grad=True)
    every = torch.nn.functional.unfold(image, losses.PIXEL_PATCH)[0]  # (3 * 49, 6 * 9)
    drawn = pixel_patches(image, 1000, torch.Generator().manual_seed(0))
    # Asked for more than there are: every patch, as F.unfold gives them.
    assert torch.equal(drawn, every)
    some = pixel_patches(image, 10, torch.Generator().manual_seed(1))
    assert some.shape == (147, 10) and all(tuple(c) in set(map(tuple, every.T.tolist())) for c in some.T.tolist())
    some.sum().backward()
    assert image.grad.abs().sum() > 0


def test_pixel_patches_gradient_is_the_same_whatever_the_thread_count():
    """Overlapping patches share pixels; their gradient must sum in the same order with one
    CPU thread as with two, or a job's bytes change with the machine's load."""
    g = torch.Generator().manual_seed(9)
    image, weights = torch.rand(1, 3, 120, 160, generator=g), torch.randn(147, 4096, generator=g)
    threads, grads = torch.get_num_threads(), []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            x = image.clone().requires_grad_()
            (pixel_patches(x, 4096, torch.Generator().manual_seed(1)) * weights).sum().backward()
            grads.append(x.grad)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(grads[0], grads[1])


def test_pixel_term_is_normalised_off_by_default_and_its_sample_shared_by_the_blend(monkeypatch):
    arch, model = load_model("vgg19")
    extractor = FeatureExtractor(arch, model, arch.style_layers + (arch.content_layer,), "avg")
    settings = LossSettings("softmax", 10.0, "spread", frozenset(extractor.layers), "sliced",
                            weights=Weights(0.05, 1.0, pixel=2.0))
    loss = StyleContentLoss(extractor, arch.style_layers, arch.content_layer, settings)
    g = torch.Generator().manual_seed(8)
    content, style, other = (torch.rand(1, 3, 36, 128, generator=g) ** (k + 1) for k in range(3))
    loss.set_targets(content, [(style, 1.0)])
    # The image and its half, 64 px long; its quarter, 57 px long (its short side kept at
    # PIXEL_MIN_SIDE), is too small to be matched (PIXEL_MIN_LONG_SIDE).
    assert len(loss.targets.pixels) == 2
    # 1 at the content; 0 at the style, all of whose patches are in the sample at every octave.
    assert loss(content)[1]["pixel"] == pytest.approx(1.0, rel=1e-4)
    assert loss(style)[1]["pixel"] == pytest.approx(0.0, abs=1e-4)
    # A blend draws a random subset of each style's patches, in proportion to its weight.
    monkeypatch.setattr(losses, "SLICED_SAMPLE", 40)
    sample = loss.style_targets_for(content, [(style, 3.0), (other, 1.0)]).pixels[0]
    style_patches = set(map(tuple, torch.nn.functional.unfold(style, losses.PIXEL_PATCH)[0].T.tolist()))
    assert sample.shape == (147, 40) and sum(tuple(c) in style_patches for c in sample.T.tolist()) == 30
    # Off in LossSettings (the paper's loss): no samples, no term.
    off = StyleContentLoss(extractor, arch.style_layers, arch.content_layer, LossSettings(style_stats="sliced"))
    off.set_targets(content, [(style, 1.0)])
    assert off.targets.pixels == () and "pixel" not in off(content)[1]


def test_a_stylisation_with_the_pixel_term_ends_nearer_the_styles_pixel_patches(photo, painting):
    pixel = _term_after_stylising(photo, painting, "pixel", (0.0, 4.0))
    # Both moved off the photo (1 on this term); the run with the pixel term, further.
    assert pixel[4.0] < 0.9 * pixel[0.0] and pixel[0.0] < 1.0
