import pytest
import torch

from swag_core.errors import SwagError
from swag_core.engine.networks import ARCHITECTURES, FeatureExtractor
from swag_core.engine.weights import imagenet_cache_path, load_model


def _extractor(name, weights="random", seed=0, layers=None):
    arch, model = load_model(name, weights, seed)
    return FeatureExtractor(arch, model, layers or arch.style_layers + (arch.content_layer,))


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_every_network_gives_its_default_layers(name):
    arch = ARCHITECTURES[name]
    extractor = _extractor(name)
    x = torch.rand(1, 3, 96, 96)
    out = extractor(x)
    assert set(out) == set(arch.style_layers) | {arch.content_layer}
    for f in out.values():
        assert f.ndim == 4 and f.shape[0] == 1 and torch.isfinite(f).all()
    # Deeper layers are coarser: the spatial size never grows along the style layers.
    sides = [out[n].shape[-1] for n in arch.style_layers]
    assert sides == sorted(sides, reverse=True)


def test_network_is_cut_after_the_deepest_requested_layer():
    shallow = _extractor("resnet50", layers=("layer1",))
    assert shallow.order[-1] == "layer1"
    assert not any(isinstance(m, torch.nn.Sequential) and m is getattr(shallow, "layer4", None)
                   for m in shallow.stages)
    full = _extractor("resnet50")
    assert full.order[-1] == "layer4"
    params = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert params(shallow) < params(full) / 10
    vgg = _extractor("vgg19", layers=("relu1_1", "relu2_1"))
    assert vgg.order == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1", "conv2_1", "relu2_1"]


def test_a_pass_asked_for_some_layers_stops_at_the_deepest_of_them():
    extractor = _extractor("vgg19")
    ran = []
    for name, stage in zip(extractor.order, extractor.stages):
        stage.register_forward_hook(lambda *_, name=name: ran.append(name))
    x = torch.rand(1, 3, 64, 64)
    full = extractor(x)
    assert ran == extractor.order
    ran.clear()
    some = extractor(x, ["relu2_1", "relu1_1"])
    assert ran == extractor.order[: extractor.depth_of("relu2_1") + 1]
    assert set(some) == {"relu1_1", "relu2_1"}
    assert all(torch.equal(some[n], full[n]) for n in some)
    ran.clear()
    assert extractor(x, []) == {} and ran == []


def test_unknown_layer_is_a_clear_error():
    arch, model = load_model("vgg16")
    with pytest.raises(SwagError, match="no layer 'relu9_1'"):
        FeatureExtractor(arch, model, ("relu9_1",))


def test_random_weights_are_seeded_and_leave_the_global_rng_alone():
    x = torch.rand(1, 3, 64, 64)
    state = torch.random.get_rng_state()
    a = _extractor("resnet50", seed=1)(x)["layer2"]
    assert torch.equal(torch.random.get_rng_state(), state)
    b = _extractor("resnet50", seed=1)(x)["layer2"]
    c = _extractor("resnet50", seed=2)(x)["layer2"]
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize("name", ["resnet50", "vgg16", "noresnet50", "pseudo_resvgg"])
def test_state_dict_file_loads_through_the_users_path(tmp_path, name):
    _, model = load_model(name, "random", seed=7)
    path = tmp_path / f"{name}.pth"
    torch.save(model.state_dict(), path)
    x = torch.rand(1, 3, 64, 64)
    from_file = _extractor(name, weights=str(path), seed=0)(x)  # seed 0 would give other weights
    reference = _extractor(name, seed=7)(x)
    for layer in reference:
        assert torch.equal(from_file[layer], reference[layer])


def test_resnet50_weights_fit_noresnet50_and_change_its_output(tmp_path):
    _, resnet = load_model("resnet50", seed=3)
    path = tmp_path / "resnet50.pth"
    torch.save(resnet.state_dict(), path)
    x = torch.rand(1, 3, 64, 64)
    plain = _extractor("noresnet50", weights=str(path))(x)
    residual = _extractor("resnet50", weights=str(path))(x)
    assert torch.equal(plain["conv1"], residual["conv1"])  # same weights before the first block
    assert not torch.allclose(plain["layer1"], residual["layer1"])  # the shortcut is gone


def test_weights_that_do_not_fit_say_so(tmp_path):
    _, vgg = load_model("vgg16")
    path = tmp_path / "vgg16.pth"
    torch.save(vgg.state_dict(), path)
    with pytest.raises(SwagError, match="does not fit resnet50"):
        load_model("resnet50", str(path))


@pytest.mark.parametrize("content", [b"", b"not a torch file at all", b"PK\x03\x04broken zip"])
def test_broken_weights_file_is_a_clear_error(tmp_path, content):
    path = tmp_path / "broken.pth"
    path.write_bytes(content)
    with pytest.raises(SwagError, match="cannot read weights file"):
        load_model("resnet50", str(path))


def test_missing_weights_file(tmp_path):
    with pytest.raises(SwagError, match="does not exist"):
        load_model("resnet50", str(tmp_path / "nope.pth"))


def test_imagenet_weights_are_read_from_the_cache_only(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    arch = ARCHITECTURES["resnet50"]
    with pytest.raises(SwagError, match="swag download-weights resnet50"):
        load_model("resnet50", "imagenet")
    # A file placed in the cache (as the installer's download step leaves it) is used.
    _, model = load_model("resnet50", seed=5)
    path = imagenet_cache_path(arch)
    assert str(path).startswith(str(tmp_path))
    path.parent.mkdir(parents=True)
    torch.save(model.state_dict(), path)
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(_extractor("resnet50", "imagenet")(x)["layer3"], _extractor("resnet50", seed=5)(x)["layer3"])


def test_pseudo_nets_have_no_imagenet_weights():
    with pytest.raises(SwagError, match="no pre-trained weights"):
        load_model("pseudo_vgg", "imagenet")
