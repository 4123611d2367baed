"""The GIMP 3 plug-in under the GIMP stand-in (tests/gimpshim).

Two kinds of engine: `ReferenceEngine` (gimpshim/reference_engine.py), whose answer is known
exactly, to check the GIMP side pixel for pixel
(offsets, selection, alpha, precision, undo, failures); and a real `swag serve` through the
real client, for the claim that the filter as a whole stylises a layer.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import gimpshim
from gimpshim.engine import free_port, running_engine
from gimpshim.model import ShimError
from gimpshim.reference_engine import ReferenceEngine

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "gimp_plugin" / "swag_style_transfer" / "swag_style_transfer.py"
PLUGIN_DIR = PLUGIN.parent
ARGUMENTS = ["style-file", "preset", "architecture", "smoothing", "size", "iterations", "strength",
             "preserve-colors", "seed", "device", "layer-name"]


@pytest.fixture
def gimp(monkeypatch):
    """The stand-in with the plug-in loaded: .Gimp, .procedure, .module, .recorder."""
    session = gimpshim.install_gimp3(monkeypatch)
    session.module, session.procedure = session.load_plugin(str(PLUGIN))
    return session


@pytest.fixture
def style_file(painting):
    return painting


def use_engine(monkeypatch, gimp, engine):
    client = gimp.module.swag_client
    monkeypatch.setattr(client.EngineClient, "from_config", classmethod(lambda cls, folder: engine))
    return engine


def make_image(Gimp, width, height, layers, base=None, precision=None):
    """layers: [(name, kind, w, h, x, y, pixel_function(i, j) -> samples in 0..1)] top first."""
    base = Gimp.ImageBaseType.RGB if base is None else base
    image = Gimp.Image.new_with_precision(width, height, base, precision or Gimp.Precision.U8_NON_LINEAR)
    made = []
    for name, kind, w, h, x, y, fn in layers:
        layer = Gimp.Layer.new(image, name, w, h, kind, 100.0, Gimp.LayerMode.NORMAL)
        image.insert_layer(layer, None, len(made))
        layer.set_offsets(x, y)
        layer._m.pixels = [tuple(fn(i, j)) for j in range(h) for i in range(w)]
        made.append(layer)
    image._m.undo_steps.clear()  # building the test image is not the plug-in's undo
    return image, made


def run(gimp, image, drawable, style, mode=None, **args):
    Gimp = gimp.Gimp
    config = gimp.procedure.create_config()
    config.set_property("run-mode", mode if mode is not None else Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", [drawable])
    if style is not None:
        config.set_property("style-file", gimp.modules["gi.repository.Gio"].File.new_for_path(str(style)))
    for name, value in args.items():
        config.set_property(name.replace("_", "-"), value)
    result = gimp.procedure.run(config)
    assert gimp.procedure.last_exception is None, repr(gimp.procedure.last_exception)
    return result.index(0), (result.index(1) if result.length() > 1 else None)


def rgba_pattern(i, j):
    return ((i * 7 % 256) / 255, (j * 11 % 256) / 255, ((i + j) * 5 % 256) / 255, ((i * 13 + j) % 256) / 255)


# ------------------------------------------------------------------ registration


def test_procedure_is_registered_as_the_issue_describes(gimp):
    Gimp, proc = gimp.Gimp, gimp.procedure
    assert proc.name == "python-fu-swag-style-transfer"
    assert proc.menu_label == "SWAG Style Transfer..."
    assert proc.get_menu_paths() == ["<Image>/Filters/Artistic"]
    assert proc.get_image_types() == "RGB*, GRAY*"
    assert proc.sensitivity == Gimp.ProcedureSensitivityMask.DRAWABLE
    assert [a.name for a in proc.arguments] == ARGUMENTS
    assert proc.argument("style-file").action == Gimp.FileChooserAction.OPEN
    assert proc.argument("strength").minimum == 0.0 and proc.argument("strength").maximum == 1.0
    assert proc.argument("size").minimum == 0 and proc.argument("iterations").minimum == 0


def test_choices_are_exactly_what_the_engine_accepts(gimp):
    from swag_core.networks import ARCHITECTURES
    from swag_core.options import DEVICES, PRESETS
    from swag_core.smoothing import MODES

    nicks = lambda name: gimp.procedure.argument(name).choice.list_nicks()  # noqa: E731
    assert nicks("preset") == list(PRESETS)
    assert sorted(nicks("architecture")) == sorted(ARCHITECTURES)
    assert nicks("smoothing") == list(MODES)
    assert set(nicks("device")) <= set(DEVICES) and nicks("device") == ["auto", "gpu", "cpu"]
    assert gimp.procedure.create_config().get_property("preset") == "balanced"


# ------------------------------------------------------------------ pixels, layers, selection


def test_selection_on_an_offset_rgba_layer(gimp, monkeypatch, style_file):
    Gimp = gimp.Gimp
    engine = use_engine(monkeypatch, gimp, ReferenceEngine(gimp.module.swag_client, alpha_out=True))
    bg = lambda i, j: (0.5, 0.5, 0.5)  # noqa: E731
    image, (top, src, background) = make_image(Gimp, 60, 40, [
        ("top", Gimp.ImageType.RGBA_IMAGE, 5, 5, 0, 0, rgba_pattern),
        ("photo", Gimp.ImageType.RGBA_IMAGE, 20, 12, 30, 20, rgba_pattern),
        ("bg", Gimp.ImageType.RGB_IMAGE, 60, 40, 0, 0, bg)])
    image.select_rectangle(Gimp.ChannelOps.REPLACE, 35, 22, 30, 5)  # sticks out of the layer
    before = list(src._m.pixels)

    status, message = run(gimp, image, src, style_file, size=64, iterations=3)

    assert (status, message) == (Gimp.PDBStatusType.SUCCESS, None)
    layers = image.get_layers()
    assert [l.get_name() for l in layers] == ["top", "SWAG: starry_night.jpg", "photo", "bg"]
    new = layers[1]
    assert (new.get_width(), new.get_height(), new.get_offsets()) == (20, 12, (True, 30, 20))
    assert new._m.kind == Gimp.ImageType.RGBA_IMAGE
    assert src._m.pixels == before  # the source is untouched
    # Only the selection's bounds on the layer went to the engine: x 5..19, y 2..6.
    assert engine.calls[0]["size"] == (15, 5) and engine.calls[0]["channels"] == 3
    assert engine.calls[0]["options"] == {
        "preset": "balanced", "arch": "vgg19", "smoothing": "softmax", "strength": 1.0,
        "preserve_colors": False, "seed": 0, "device": "auto", "size": 64, "iterations": 3}
    for j in range(12):
        for i in range(20):
            got, old = new._m.pixels[j * 20 + i], before[j * 20 + i]
            assert got[3] == old[3]  # the source's alpha, although the engine answered alpha 0
            inside = 5 <= i < 20 and 2 <= j < 7
            want = tuple(round((1 - v) * 255) / 255 for v in old[:3]) if inside else old[:3]
            assert got[:3] == pytest.approx(want), (i, j)
            assert new._m.mask.pixels[j * 20 + i] == ((1.0,) if inside else (0.0,))
    # One undo step holding every change; progress moved forward within 0..1.
    assert len(image._m.undo_steps) == 1 and image._m.undo_steps[0][0].startswith("insert")
    assert gimp.recorder.progress == [0.0, 0.5, 1.0]
    assert any("starting engine" in t for t in gimp.recorder.progress_texts)
    assert not gimp.recorder.progress_open and gimp.recorder.messages == []


def test_whole_layer_without_selection_has_no_mask_and_custom_name(gimp, monkeypatch, style_file):
    Gimp = gimp.Gimp
    use_engine(monkeypatch, gimp, ReferenceEngine(gimp.module.swag_client))
    image, (src,) = make_image(Gimp, 8, 6, [("rgb", Gimp.ImageType.RGB_IMAGE, 8, 6, 0, 0,
                                             lambda i, j: rgba_pattern(i, j)[:3])])
    status, _ = run(gimp, image, src, style_file, layer_name="  Night  ")
    assert status == Gimp.PDBStatusType.SUCCESS
    new = image.get_layers()[0]
    assert new.get_name() == "Night" and new._m.mask is None
    assert new._m.kind == Gimp.ImageType.RGB_IMAGE  # no alpha in, no alpha out
    assert new._m.pixels == [tuple(round((1 - v) * 255) / 255 for v in p) for p in src._m.pixels]


@pytest.mark.parametrize("kind", ["GRAYA_IMAGE", "GRAY_IMAGE"])
def test_grayscale_image_gets_a_grayscale_layer(gimp, monkeypatch, style_file, kind):
    Gimp = gimp.Gimp
    engine = use_engine(monkeypatch, gimp, ReferenceEngine(gimp.module.swag_client))
    kind = getattr(Gimp.ImageType, kind)
    alpha = kind == Gimp.ImageType.GRAYA_IMAGE
    fn = lambda i, j: ((i * 17 % 256) / 255,) + (((j * 40) % 256) / 255,) * alpha  # noqa: E731
    image, (src,) = make_image(Gimp, 10, 7, [("gray", kind, 10, 7, 0, 0, fn)], base=Gimp.ImageBaseType.GRAY)
    status, _ = run(gimp, image, src, style_file)
    assert status == Gimp.PDBStatusType.SUCCESS
    new = image.get_layers()[0]
    assert new._m.kind == kind and engine.calls[0]["channels"] == 1
    assert [p[0] for p in new._m.pixels] == [round((1 - p[0]) * 255) / 255 for p in src._m.pixels]
    if alpha:
        assert [p[1] for p in new._m.pixels] == [p[1] for p in src._m.pixels]


def test_16_bit_gray_keeps_16_bit_precision(gimp, monkeypatch, style_file):
    Gimp = gimp.Gimp
    engine = use_engine(monkeypatch, gimp, ReferenceEngine(gimp.module.swag_client))
    fn = lambda i, j: ((1000 + 37 * i + 501 * j) / 65535, (300 + i) / 65535)  # noqa: E731 (not 8-bit values)
    image, (src,) = make_image(Gimp, 9, 4, [("g16", Gimp.ImageType.GRAYA_IMAGE, 9, 4, 0, 0, fn)],
                               base=Gimp.ImageBaseType.GRAY, precision=Gimp.Precision.U16_NON_LINEAR)
    assert run(gimp, image, src, style_file)[0] == Gimp.PDBStatusType.SUCCESS
    assert engine.calls[0]["depth"] == 16
    new = image.get_layers()[0]
    for got, old in zip(new._m.pixels, src._m.pixels):
        assert round(got[0] * 65535) == 65535 - round(old[0] * 65535)
        assert got[1] == old[1]  # 16-bit alpha, bit for bit


def test_16_bit_rgb_with_an_8_bit_answer_is_widened_exactly(gimp, monkeypatch, style_file):
    Gimp = gimp.Gimp
    use_engine(monkeypatch, gimp, ReferenceEngine(gimp.module.swag_client, depth_out=8))
    fn = lambda i, j: (i * 257 * 20 / 65535, j * 257 * 30 / 65535, 0.25, (40000 + i) / 65535)  # noqa: E731
    image, (src,) = make_image(Gimp, 6, 5, [("c16", Gimp.ImageType.RGBA_IMAGE, 6, 5, 0, 0, fn)],
                               precision=Gimp.Precision.U16_NON_LINEAR)
    assert run(gimp, image, src, style_file)[0] == Gimp.PDBStatusType.SUCCESS
    new = image.get_layers()[0]
    for got, old in zip(new._m.pixels, src._m.pixels):
        assert round(got[0] * 65535) == (255 - round(old[0] * 255)) * 257
        assert got[3] == old[3]


def test_float_image_does_not_fail(gimp, monkeypatch, style_file):
    Gimp = gimp.Gimp
    use_engine(monkeypatch, gimp, ReferenceEngine(gimp.module.swag_client, depth_out=8))
    image, (src,) = make_image(Gimp, 5, 5, [("f", Gimp.ImageType.RGBA_IMAGE, 5, 5, 0, 0, rgba_pattern)],
                               precision=Gimp.Precision.FLOAT_LINEAR)
    assert run(gimp, image, src, style_file)[0] == Gimp.PDBStatusType.SUCCESS
    assert len(image.get_layers()) == 2


# ------------------------------------------------------------------ failures leave the image as it was


def _one_layer(Gimp):
    return make_image(Gimp, 12, 8, [("photo", Gimp.ImageType.RGBA_IMAGE, 12, 8, 0, 0, rgba_pattern)])


def _fails(gimp, image, src, style, expected, mode=None, **args):
    before = image._m.snapshot()
    status, message = run(gimp, image, src, style, mode=mode, **args)
    assert status == gimp.Gimp.PDBStatusType.EXECUTION_ERROR
    assert expected in message and "\n" not in message
    assert image._m.snapshot() == before
    return message


def test_no_style_file(gimp, monkeypatch):
    use_engine(monkeypatch, gimp, ReferenceEngine(gimp.module.swag_client))
    image, (src,) = _one_layer(gimp.Gimp)
    _fails(gimp, image, src, None, "no style image chosen: pick a style image file")


def test_unreadable_and_empty_style_files(gimp, monkeypatch, tmp_path):
    engine = use_engine(monkeypatch, gimp, ReferenceEngine(gimp.module.swag_client))
    image, (src,) = _one_layer(gimp.Gimp)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    _fails(gimp, image, src, empty, "is empty (0 bytes)")
    _fails(gimp, image, src, tmp_path, "is a folder")
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked.png"
        locked.write_bytes(b"x")
        locked.chmod(0)
        _fails(gimp, image, src, locked, "cannot read style image")
    assert engine.calls == []


def test_engine_error_is_returned_in_batch_and_shown_when_interactive(gimp, monkeypatch, style_file):
    Gimp = gimp.Gimp
    error = gimp.module.swag_client.EngineError("the engine ran out of GPU memory; use device cpu")
    use_engine(monkeypatch, gimp, ReferenceEngine(gimp.module.swag_client, fail=error))
    image, (src,) = _one_layer(Gimp)
    message = _fails(gimp, image, src, style_file, "out of GPU memory; use device cpu")
    assert message.startswith("SWAG Style Transfer: ") and gimp.recorder.messages == []
    _fails(gimp, image, src, style_file, "use device cpu", mode=Gimp.RunMode.INTERACTIVE)
    assert gimp.recorder.messages == [message]
    assert not gimp.recorder.progress_open


def test_broken_engine_answers(gimp, monkeypatch, style_file):
    client = gimp.module.swag_client
    image, (src,) = _one_layer(gimp.Gimp)
    use_engine(monkeypatch, gimp, ReferenceEngine(client, size_out=(3, 3)))
    _fails(gimp, image, src, style_file, "returned a 3x3 image for a 12x8 area")

    class Garbage(ReferenceEngine):
        def stylize(self, *args, **kwargs):
            return b"not a png"
    use_engine(monkeypatch, gimp, Garbage(client))
    _fails(gimp, image, src, style_file, "unreadable image")


def test_cancelled_job_changes_nothing(gimp, monkeypatch, style_file):
    Gimp = gimp.Gimp
    use_engine(monkeypatch, gimp, ReferenceEngine(gimp.module.swag_client,
                                                  fail=gimp.module.swag_client.Cancelled("cancelled")))
    image, (src,) = _one_layer(Gimp)
    before = image._m.snapshot()
    assert run(gimp, image, src, style_file) == (Gimp.PDBStatusType.CANCEL, None)
    assert image._m.snapshot() == before


def test_dialog_cancel_and_ok(gimp, monkeypatch, style_file):
    Gimp = gimp.Gimp
    engine = use_engine(monkeypatch, gimp, ReferenceEngine(gimp.module.swag_client))
    image, (src,) = _one_layer(Gimp)
    gimp.dialog_accepts = False
    assert run(gimp, image, src, style_file, mode=Gimp.RunMode.INTERACTIVE) == (Gimp.PDBStatusType.CANCEL, None)
    assert engine.calls == [] and len(image.get_layers()) == 1
    gimp.dialog_accepts = True
    assert run(gimp, image, src, style_file, mode=Gimp.RunMode.INTERACTIVE)[0] == Gimp.PDBStatusType.SUCCESS
    dialog = gimp.recorder.dialogs[-1]
    assert dialog.filled is None and dialog.destroyed and gimp.recorder.flushes == 1


def test_indexed_image_is_refused(gimp, monkeypatch, style_file):
    Gimp = gimp.Gimp
    engine = use_engine(monkeypatch, gimp, ReferenceEngine(gimp.module.swag_client))
    image, (src,) = make_image(Gimp, 6, 6, [("idx", Gimp.ImageType.INDEXED_IMAGE, 6, 6, 0, 0,
                                             lambda i, j: (1.0, 0.5, 0.0))], base=Gimp.ImageBaseType.INDEXED)
    _fails(gimp, image, src, style_file, "indexed images are not supported: use Image > Mode > RGB")
    assert engine.calls == []


def test_selection_beside_the_layer_and_a_mask_as_drawable(gimp, monkeypatch, style_file):
    Gimp = gimp.Gimp
    use_engine(monkeypatch, gimp, ReferenceEngine(gimp.module.swag_client))
    image, (src, bg) = make_image(Gimp, 40, 40, [
        ("small", Gimp.ImageType.RGBA_IMAGE, 8, 8, 30, 30, rgba_pattern),
        ("bg", Gimp.ImageType.RGBA_IMAGE, 40, 40, 0, 0, rgba_pattern)])
    image.select_rectangle(Gimp.ChannelOps.REPLACE, 0, 0, 10, 10)
    _fails(gimp, image, src, style_file, "the selection does not touch layer 'small'")
    mask = bg.create_mask(Gimp.AddMaskType.WHITE)
    bg.add_mask(mask)
    image._m.undo_steps.clear()
    _fails(gimp, image, mask, style_file, "is not a layer: select a layer")


def test_failure_while_adding_the_layer_removes_it(gimp, monkeypatch, style_file):
    """If GIMP refuses a step after the new layer was inserted, the layer goes again."""
    Gimp = gimp.Gimp
    use_engine(monkeypatch, gimp, ReferenceEngine(gimp.module.swag_client))
    image, (src,) = _one_layer(Gimp)
    monkeypatch.setattr(type(src), "update", lambda self, *a: (_ for _ in ()).throw(ShimError("refused")))
    before = [l.get_name() for l in image.get_layers()]
    status, message = run(gimp, image, src, style_file)
    assert status == Gimp.PDBStatusType.EXECUTION_ERROR and "refused" in message
    assert [l.get_name() for l in image.get_layers()] == before


# ------------------------------------------------------------------ the stand-in itself can fail


def test_the_stand_in_refuses_what_gimp_refuses(gimp):
    Gimp, Gegl = gimp.Gimp, gimp.modules["gi.repository.Gegl"]
    image, (layer,) = _one_layer(Gimp)
    buf = layer.get_buffer()
    rect = Gegl.Rectangle.new(0, 0, 12, 8)
    with pytest.raises(ShimError, match="bytes"):
        buf.set(rect, "R'G'B'A u8", b"\0" * (12 * 8 * 3))
    with pytest.raises(ShimError, match="linear-light"):
        buf.get(rect, 1.0, "RGBA u8", Gegl.AbyssPolicy.CLAMP)
    with pytest.raises(ShimError, match="unknown babl format"):
        buf.get(rect, 1.0, "RGBA8", Gegl.AbyssPolicy.CLAMP)
    with pytest.raises(ShimError, match="leaves"):
        buf.set(Gegl.Rectangle.new(5, 0, 12, 8), "R'G'B'A u8", b"\0" * (12 * 8 * 4))
    with pytest.raises(ShimError, match="does not fit"):
        Gimp.Layer.new(image, "x", 4, 4, Gimp.ImageType.GRAY_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    with pytest.raises(ShimError, match="already in the image"):
        image.insert_layer(layer, None, 0)
    config = gimp.procedure.create_config()
    with pytest.raises(ShimError):
        config.set_property("preset", "ultra")
    with pytest.raises(ShimError):
        config.set_property("size", 99999)
    with pytest.raises(ShimError):
        config.set_property("strength", "high")


# ------------------------------------------------------------------ shared logic, Python 2.7


def test_option_mapping_and_layer_name(gimp):
    sys.path.insert(0, str(PLUGIN_DIR))
    import swag_gimp_common as common

    opts = common.engine_options("fast", "vgg19", "none", 0, 0, 0.5, True, 7, "gpu")
    assert opts == {"preset": "fast", "arch": "vgg19", "smoothing": "none", "strength": 0.5,
                    "preserve_colors": True, "seed": 7, "device": "gpu"}
    with pytest.raises(common.FilterError, match="unknown architecture 'alexnet': choose one of"):
        common.engine_options("fast", "alexnet", "none", 0, 0, 1.0, False, 0, "auto")
    assert common.layer_name("", "/a/b/Starry Night.png") == "SWAG: Starry Night.png"

    from swag_core.options import Options
    Options.build(**{k: v for k, v in opts.items()})  # the engine accepts the mapped options


PY27 = "/root/.pyenv/versions/2.7.18/bin/python"


@pytest.mark.skipif(not os.path.exists(PY27), reason="no Python 2.7 at " + PY27)
def test_gimp_210_side_runs_on_python_27(tmp_path):
    """The 2.10 plug-in and the shared module are valid Python 2.7, and the pixel round trip
    (PNG out, PNG back, alpha kept) gives the same bytes under 2.7."""
    files = [ROOT / "gimp_plugin" / "swag_style_transfer_210.py", PLUGIN_DIR / "swag_gimp_common.py"]
    code = ("import sys; sys.dont_write_bytecode = True; sys.path.insert(0, %r)\n"
            "for f in %r: compile(open(f).read(), f, 'exec')\n"
            "import swag_gimp_common as c, swag_client\n"
            "layout = c.PixelLayout(4, 1)\n"
            "raw = bytes(bytearray(range(256)) * 3)[:8 * 6 * 4]\n"
            "png = c.content_png(raw, 8, 6, layout)\n"
            "w, h, ch, d, data = swag_client.decode_png(png)\n"
            "inv = bytes(bytearray(255 - b for b in bytearray(data)))\n"
            "out = c.result_pixels(swag_client.encode_png(w, h, ch, d, inv), 8, 6, layout, raw)\n"
            "sys.stdout.write(repr((ch, d, bytearray(out)[:12])))\n") % (str(PLUGIN_DIR), [str(f) for f in files])
    py2 = subprocess.run([PY27, "-c", code], capture_output=True, text=True)
    assert py2.returncode == 0, py2.stderr
    assert py2.stdout == "(3, 8, bytearray(b'\\xff\\xfe\\xfd\\x03\\xfb\\xfa\\xf9\\x07\\xf7\\xf6\\xf5\\x0b'))"


# ------------------------------------------------------------------ with the real engine


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    with running_engine(tmp_path_factory.mktemp("engine")) as url_token:
        yield url_token


def photo_layer(Gimp, photo, offset=(7, 5), canvas=(96, 72)):
    """A real photo (80x56) with an alpha gradient, at an offset on a larger canvas."""
    from PIL import Image as PILImage

    rgb = PILImage.open(photo).convert("RGB").resize((80, 56))
    px = rgb.load()
    fn = lambda i, j: tuple(v / 255 for v in px[i, j]) + ((i * 5) % 256 / 255,)  # noqa: E731
    return make_image(Gimp, canvas[0], canvas[1],
                      [("photo", Gimp.ImageType.RGBA_IMAGE, 80, 56, offset[0], offset[1], fn)])


def test_real_engine_stylises_the_selected_area(gimp, engine, monkeypatch, photo, painting):
    Gimp = gimp.Gimp
    url, token = engine
    monkeypatch.setenv("SWAG_ENGINE_URL", url)
    monkeypatch.setenv("SWAG_ENGINE_TOKEN", token)
    image, (src,) = photo_layer(Gimp, photo)
    image.select_rectangle(Gimp.ChannelOps.REPLACE, 10, 8, 70, 50)
    before = list(src._m.pixels)
    status, message = run(gimp, image, src, painting, preset="fast", size=64, iterations=3)
    assert (status, message) == (Gimp.PDBStatusType.SUCCESS, None)
    new = image.get_layers()[0]
    assert new.get_name() == "SWAG: starry_night.jpg" and new.get_offsets() == (True, 7, 5)
    assert src._m.pixels == before
    changed = 0
    for j in range(56):
        for i in range(80):
            got, old = new._m.pixels[j * 80 + i], before[j * 80 + i]
            assert got[3] == old[3]
            inside = 3 <= i < 73 and 3 <= j < 53
            if inside:
                changed += max(abs(a - b) for a, b in zip(got[:3], old[:3])) > 2 / 255
            else:
                assert got == old
    assert changed > 0.5 * 70 * 50  # most of the selected area really changed
    # The client reports what each poll saw (a 3-iteration job may finish between two polls).
    assert gimp.recorder.progress and gimp.recorder.progress == sorted(gimp.recorder.progress)


def test_real_client_unreachable_engine_leaves_the_image(gimp, monkeypatch, painting, tmp_path):
    Gimp = gimp.Gimp
    monkeypatch.setenv("SWAG_ENGINE_URL", "http://127.0.0.1:%d" % free_port())
    monkeypatch.setenv("SWAG_ENGINE_TOKEN", "x")
    monkeypatch.setattr(gimp.module, "PLUGIN_DIR", str(tmp_path))  # no swag_engine.json: nothing to start
    image, (src,) = _one_layer(Gimp)
    message = _fails(gimp, image, src, painting, "engine not installed")
    assert "installer/install.py" in message
