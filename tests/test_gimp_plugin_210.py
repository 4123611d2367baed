"""The GIMP 2.10 plug-in (gimpfu) under the GIMP stand-in, laid out as the installer installs it:
the plug-in file with swag_style_transfer_210_lib/ (client + shared module) beside it."""

import shutil
from pathlib import Path

import pytest

import gimpshim
from gimpshim import gimp2
from gimpshim.model import ImageBaseType, ImageType
from gimpshim.reference_engine import ReferenceEngine

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "gimp_plugin" / "swag_style_transfer_210.py"
LIB_SOURCES = sorted(p for p in (ROOT / "gimp_plugin" / "swag_style_transfer").glob("*.py")
                     if p.name != "swag_style_transfer.py")  # what the installer puts in the lib folder
NAME = "python-fu-swag-style-transfer"
NONINTERACTIVE = gimp2.RUN_NONINTERACTIVE
RGB, GRAY, INDEXED = (int(t) for t in ImageBaseType)


@pytest.fixture
def gimp(monkeypatch, tmp_path):
    plugins = tmp_path / "plug-ins"
    (plugins / "swag_style_transfer_210_lib").mkdir(parents=True)
    shutil.copy(SOURCE, plugins / SOURCE.name)
    for source in LIB_SOURCES:
        shutil.copy(source, plugins / "swag_style_transfer_210_lib" / source.name)
    session = gimpshim.install_gimp2(monkeypatch)
    namespace = {"__file__": str(plugins / SOURCE.name), "__name__": "__main__"}
    exec(compile(SOURCE.read_text(), str(plugins / SOURCE.name), "exec"), namespace)
    session.namespace = namespace
    return session


def use_engine(monkeypatch, gimp, engine):
    monkeypatch.setattr(gimp.namespace["swag_client"].EngineClient, "from_config",
                        classmethod(lambda cls, folder: engine))
    return engine


def args(style, preset=1, architecture=5, smoothing=0, size=0, iterations=0, strength=1.0,
         preserve_colors=False, layout_weight=0.5, full_resolution=False, seed=0, device=0, layer_name="",
         style_layer=None, animation=False):
    """gimpfu's arguments after (image, drawable): options as indices, defaults as registered."""
    return [1 if style_layer is not None else 0, str(style) if style is not None else "", style_layer, preset,
            architecture, smoothing, size, iterations, strength, preserve_colors, layout_weight, full_resolution,
            seed, device, animation, layer_name]


def pattern(i, j):
    return ((i * 7 % 256) / 255, (j * 11 % 256) / 255, ((i + j) * 5 % 256) / 255, ((i * 13 + j) % 256) / 255)


def make(gimp, base, kind, w, h, offset=(0, 0), canvas=(40, 30), fn=pattern, channels=4):
    g = gimp.modules["gimp"]
    image = g.Image(canvas[0], canvas[1], base)
    layer = g.Layer(image, "photo", w, h, kind, 100, gimp2.LAYER_MODE_NORMAL)
    image.insert_layer(layer)
    layer.set_offsets(*offset)
    layer._m.pixels = [tuple(fn(i, j)[:channels]) for j in range(h) for i in range(w)]
    image._m.undo_steps.clear()
    return image, layer


def test_registration_matches_the_gimp_3_plugin(gimp):
    reg = gimp.registered[NAME]
    assert reg["menu"] == "<Image>/Filters/Artistic" and reg["label"] == "SWAG Style Transfer..."
    assert reg["imagetypes"] == "RGB*, GRAY*"
    common = gimp.namespace["common"]
    assert [p[:2] for p in reg["params"][:2]] == [(gimp2.PF_IMAGE, "image"), (gimp2.PF_DRAWABLE, "drawable")]
    kinds = {common.FILE: gimp2.PF_FILE, common.LAYER: gimp2.PF_LAYER, common.CHOICE: gimp2.PF_OPTION,
             common.INT: gimp2.PF_SPINNER, common.DOUBLE: gimp2.PF_SLIDER, common.BOOLEAN: gimp2.PF_TOGGLE,
             common.STRING: gimp2.PF_STRING}
    # The shared table's arguments, in its order, with its labels (no mnemonic marks: gimpfu shows
    # them as they are), ranges and defaults.
    for spec, param in zip(common.ARGUMENTS, reg["params"][2:], strict=True):
        assert param[:3] == (kinds[spec.kind], spec.name, spec.label.replace("_", ""))
        if spec.kind == common.CHOICE:
            assert param[3:] == (spec.nicks().index(spec.default), tuple(label for _, label in spec.choices))
        elif spec.kind in (common.INT, common.DOUBLE):
            assert param[3:] == (spec.default, (spec.low, spec.high, spec.step))
    assert args(None)[3:6] == [1, 5, 0]  # the defaults: balanced, vgg19, softmax


def test_selection_on_an_offset_layer(gimp, monkeypatch, painting):
    engine = use_engine(monkeypatch, gimp, ReferenceEngine(gimp.namespace["swag_client"], alpha_out=True))
    image, src = make(gimp, RGB, ImageType.RGBA_IMAGE, 16, 10, offset=(20, 15))
    image._m.select_rectangle(22, 10, 30, 8)  # layer-local x 2..15, y 0..2
    before = list(src._m.pixels)
    status, message = gimp.run(NAME, NONINTERACTIVE, image, src, *args(painting, preset=0, size=64,
                                                                          layout_weight=0.3))
    assert (status, message) == (gimp2.SUCCESS, None)
    new = image.layers[0]
    assert (new.name, new.width, new.height, new.offsets) == ("SWAG: starry_night.jpg", 16, 10, (20, 15))
    assert image.layers[1] is src and src._m.pixels == before
    assert engine.calls[0]["size"] == (14, 3)
    options = engine.calls[0]["options"]
    assert (options["preset"], options["size"], options["layout_weight"]) == ("fast", 64, 0.3)
    for j in range(10):
        for i in range(16):
            got, old = new._m.pixels[j * 16 + i], before[j * 16 + i]
            inside = 2 <= i and j < 3
            assert got[3] == old[3]
            want = tuple(round((1 - v) * 255) / 255 for v in old[:3]) if inside else old[:3]
            assert got[:3] == pytest.approx(want)
            assert new._m.mask.pixels[j * 16 + i] == ((1.0,) if inside else (0.0,))
    assert len(image._m.undo_steps) == 1
    assert gimp.recorder.progress == [0.0, 0.5, 1.0]


def test_grayscale_gets_grayscale(gimp, monkeypatch, painting):
    use_engine(monkeypatch, gimp, ReferenceEngine(gimp.namespace["swag_client"]))
    image, src = make(gimp, GRAY, ImageType.GRAY_IMAGE, 9, 6, channels=1)
    assert gimp.run(NAME, NONINTERACTIVE, image, src, *args(painting))[0] == gimp2.SUCCESS
    new = image.layers[0]
    assert new._m.kind == ImageType.GRAY_IMAGE
    assert [p[0] for p in new._m.pixels] == [round((1 - p[0]) * 255) / 255 for p in src._m.pixels]


def test_failures_leave_the_image_unchanged(gimp, monkeypatch, painting, tmp_path):
    client = gimp.namespace["swag_client"]
    image, src = make(gimp, RGB, ImageType.RGBA_IMAGE, 8, 8)
    before = image._m.snapshot()
    use_engine(monkeypatch, gimp, ReferenceEngine(client, fail=client.EngineError("engine crashed; see its log")))
    for style, expected in ((None, "no style image chosen"), (tmp_path / "missing.png", "does not exist"),
                            (painting, "engine crashed; see its log")):
        status, message = gimp.run(NAME, NONINTERACTIVE, image, src, *args(style))
        assert status == gimp2.EXECUTION_ERROR and expected in message and "\n" not in message
        assert image._m.snapshot() == before
    use_engine(monkeypatch, gimp, ReferenceEngine(client, fail=client.Cancelled("cancelled")))
    assert gimp.run(NAME, NONINTERACTIVE, image, src, *args(painting)) == (gimp2.SUCCESS, None)
    assert image._m.snapshot() == before


def test_indexed_image_is_refused(gimp, monkeypatch, painting):
    engine = use_engine(monkeypatch, gimp, ReferenceEngine(gimp.namespace["swag_client"]))
    image, src = make(gimp, INDEXED, ImageType.INDEXED_IMAGE, 4, 4, channels=3)
    status, message = gimp.run(NAME, NONINTERACTIVE, image, src, *args(painting))
    assert status == gimp2.EXECUTION_ERROR and "Image > Mode > RGB" in message and engine.calls == []


def test_style_from_a_layer_of_another_open_image(gimp, monkeypatch):
    client = gimp.namespace["swag_client"]
    engine = use_engine(monkeypatch, gimp, ReferenceEngine(client))
    image, src = make(gimp, RGB, ImageType.RGBA_IMAGE, 8, 8)
    _, style = make(gimp, GRAY, ImageType.GRAYA_IMAGE, 5, 4, channels=2)
    style.name = "pencil"
    assert gimp.run(NAME, NONINTERACTIVE, image, src, *args(None, style_layer=style)) == (gimp2.SUCCESS, None)
    assert image.layers[0].name == "SWAG: pencil"
    w, h, channels, depth, raw = client.decode_png(engine.calls[0]["style"])
    assert (w, h, channels, depth) == (5, 4, 2, 8) and raw == style.get_pixel_rgn(0, 0, 5, 4, False)[0:5, 0:4]


def test_animation_frames_open_a_new_image(gimp, monkeypatch, painting):
    engine = use_engine(monkeypatch, gimp, ReferenceEngine(gimp.namespace["swag_client"]))
    image, bottom = make(gimp, RGB, ImageType.RGB_IMAGE, 6, 4, channels=3)
    top = gimp.modules["gimp"].Layer(image, "Frame 2 (80ms)", 6, 4, ImageType.RGB_IMAGE, 100, gimp2.LAYER_MODE_NORMAL)
    image.insert_layer(top, None, 0)
    top._m.pixels = [(0.2, 0.4, 0.6)] * 24
    image._m.undo_steps.clear()
    before = image._m.snapshot()
    assert gimp.run(NAME, NONINTERACTIVE, image, top, *args(painting, animation=True)) == (gimp2.SUCCESS, None)
    assert image._m.snapshot() == before
    (new,) = gimp.recorder.displays
    assert [l.name for l in new.layers] == ["Frame 2 (80ms)", "photo"]
    assert new.layers[0].pixels == [(0.8, 0.6, 0.4)] * 24
    assert engine.calls[0]["init"] is None and engine.calls[1]["init"] is not None  # bottom frame first


def test_the_stand_in_refuses_bad_calls(gimp):
    image, src = make(gimp, RGB, ImageType.RGBA_IMAGE, 4, 4)
    with pytest.raises(gimp2.ShimError, match="dirty=False"):
        src.get_pixel_rgn(0, 0, 4, 4, False, False)[0:4, 0:4] = b"\0" * 64
    with pytest.raises(gimp2.ShimError, match="bytes"):
        src.get_pixel_rgn(0, 0, 4, 4, True, False)[0:4, 0:4] = b"\0" * 48
    with pytest.raises(gimp2.ShimError, match="not valid"):
        gimp.run(NAME, NONINTERACTIVE, image, src, *args("x.png", preset=3))


@pytest.fixture(scope="module")
def engine(engine):
    """The session's engine (conftest.py) as the plug-in's client is given it: (url, token)."""
    return engine.url, engine.token


def test_real_engine(gimp, engine, monkeypatch, photo, painting):
    from PIL import Image as PILImage

    url, token = engine
    monkeypatch.setenv("SWAG_ENGINE_URL", url)
    monkeypatch.setenv("SWAG_ENGINE_TOKEN", token)
    px = PILImage.open(photo).convert("RGB").resize((72, 48)).load()
    image, src = make(gimp, RGB, ImageType.RGB_IMAGE, 72, 48, offset=(4, 3), canvas=(80, 56),
                      fn=lambda i, j: tuple(v / 255 for v in px[i, j]), channels=3)
    before = list(src._m.pixels)
    status, message = gimp.run(NAME, NONINTERACTIVE, image, src,
                               *args(painting, preset=0, size=64, iterations=3, layer_name="night"))
    assert (status, message) == (gimp2.SUCCESS, None)
    new = image.layers[0]
    assert (new.name, new.offsets, new._m.kind) == ("night", (4, 3), ImageType.RGB_IMAGE)
    assert src._m.pixels == before
    changed = sum(max(abs(a - b) for a, b in zip(p, q)) > 2 / 255 for p, q in zip(new._m.pixels, before))
    assert changed > 0.5 * 72 * 48
