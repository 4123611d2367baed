"""The GIMP 3 plug-in under the GIMP stand-in (tests/gimpshim).

Two kinds of engine: `ReferenceEngine` (gimpshim/reference_engine.py), whose answer is known
exactly, to check the GIMP side pixel for pixel
(offsets, selection, alpha, precision, undo, failures); and a real `swag serve` through the
real client, for the claim that the filter as a whole stylises a layer.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import gimpshim
from gimpshim.engine import free_port
from gimpshim.gimp3 import Argument
from gimpshim.model import ShimError
from gimpshim.reference_engine import ReferenceEngine

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "gimp_plugin" / "swag_style_transfer" / "swag_style_transfer.py"
PLUGIN_DIR = PLUGIN.parent
ARGUMENTS = ["style-source", "style-file", "style-layer", "preset", "architecture", "smoothing", "size",
             "iterations", "strength", "preserve-colors", "layout-weight", "full-resolution", "seed", "device",
             "animation", "layer-name"]


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
    """Run the procedure on `drawable` (or a list of drawables); (status, message or new image)."""
    Gimp = gimp.Gimp
    config = gimp.procedure.create_config()
    config.set_property("run-mode", mode if mode is not None else Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", drawable if isinstance(drawable, list) else [drawable])
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
    mask = Gimp.ProcedureSensitivityMask
    assert proc.sensitivity == mask.DRAWABLE | mask.DRAWABLES  # one selected layer or several
    assert [a.name for a in proc.arguments] == ARGUMENTS
    assert [(name, kind.__name__) for name, kind, _ in proc.return_values] == [("new-image", "Image")]
    assert proc.argument("style-file").action == Gimp.FileChooserAction.OPEN
    assert proc.argument("style-layer").kind == "layer" and proc.argument("style-layer").none_ok
    assert proc.argument("strength").minimum == 0.0 and proc.argument("strength").maximum == 1.0
    assert proc.argument("size").minimum == 0 and proc.argument("iterations").minimum == 0


def test_choices_are_exactly_what_the_engine_accepts(gimp):
    from swag_core.choices import ARCHITECTURE_NAMES as ARCHITECTURES
    from swag_core.choices import DEVICES, MODES
    from swag_core.options import PRESETS

    nicks = lambda name: gimp.procedure.argument(name).choice.list_nicks()  # noqa: E731
    assert nicks("preset") == list(PRESETS)
    assert sorted(nicks("architecture")) == sorted(ARCHITECTURES)
    assert nicks("smoothing") == list(MODES)
    assert set(nicks("device")) <= set(DEVICES) and nicks("device") == ["auto", "gpu", "cpu"]
    assert nicks("style-source") == ["file", "layer"]
    assert gimp.procedure.create_config().get_property("preset") == "balanced"


def test_labels_have_mnemonics_that_do_not_clash_with_gimps_dialog_buttons(gimp):
    """GIMP 3 warns each time the dialog opens when a label's mnemonic is missing, used twice, or
    is one of the dialog's buttons' (_Reset, _Cancel, _OK, _Load Saved Settings, _Save Settings)."""
    from gimpshim.gimp3 import DIALOG_BUTTONS, check_mnemonics, mnemonic

    labels = [a.nick for a in gimp.procedure.arguments]
    keys = [mnemonic(label) for label in labels]
    assert None not in keys and len(set(keys)) == len(keys), labels
    assert not set(keys) & {mnemonic(b) for b in DIALOG_BUTTONS}
    check_mnemonics(gimp.procedure.arguments)  # what the stand-in's dialog checks on every fill
    clash = Argument("choice", "x", "_Save as", "", None, None)
    with pytest.raises(ShimError, match="duplicate mnemonic 's' .* dialog button '_Save Settings'"):
        check_mnemonics([clash])


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
        "preserve_colors": False, "layout_weight": 0.5, "full_resolution": False, "seed": 0, "device": "auto",
        "size": 64,
        "iterations": 3}
    for j in range(12):
        for i in range(20):
            got, old = new._m.pixels[j * 20 + i], before[j * 20 + i]
            assert got[3] == old[3]  # the source's alpha, although the engine answered alpha 0
            inside = 5 <= i < 20 and 2 <= j < 7
            want = tuple(round((1 - v) * 255) / 255 for v in old[:3]) if inside else old[:3]
            assert got[:3] == pytest.approx(want), (i, j)
            assert new._m.mask.pixels[j * 20 + i] == ((1.0,) if inside else (0.0,))
    # One undo step holding every change; progress moved forward within 0..1 and named the stage.
    assert len(image._m.undo_steps) == 1 and image._m.undo_steps[0][0].startswith("insert")
    assert gimp.recorder.progress == [0.0, 0.5, 1.0]
    assert "SWAG Style Transfer: scale 1 of 1: iteration 1 of 2" in gimp.recorder.progress_texts
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


def test_engine_error_is_reported_once(gimp, monkeypatch, style_file):
    """GIMP shows the error a plug-in returns; a Gimp.message with the same text on top of it
    showed the failure twice."""
    Gimp = gimp.Gimp
    error = gimp.module.swag_client.EngineError("the engine ran out of GPU memory; use device cpu")
    use_engine(monkeypatch, gimp, ReferenceEngine(gimp.module.swag_client, fail=error))
    image, (src,) = _one_layer(Gimp)
    message = _fails(gimp, image, src, style_file, "out of GPU memory; use device cpu")
    assert message.startswith("SWAG Style Transfer: ")
    assert _fails(gimp, image, src, style_file, "use device cpu", mode=Gimp.RunMode.INTERACTIVE) == message
    assert gimp.recorder.messages == [] and not gimp.recorder.progress_open


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
    assert dialog.destroyed and gimp.recorder.flushes == 1
    assert dialog.filled == ARGUMENTS[:4] + ["preset-info"] + ARGUMENTS[4:]


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


def test_new_layer_is_plain_whatever_the_source_looks_like(gimp, monkeypatch, style_file):
    """GIMP's copy of the source carries its mode, opacity, visibility and mask; the new layer
    shows the stylised pixels as they are, as a layer made from scratch would."""
    Gimp = gimp.Gimp
    use_engine(monkeypatch, gimp, ReferenceEngine(gimp.module.swag_client))
    image, (src,) = _one_layer(Gimp)
    src.set_mode(Gimp.LayerMode.NORMAL_LEGACY)
    src.set_opacity(40.0)
    src.set_visible(False)
    src.add_mask(src.create_mask(Gimp.AddMaskType.WHITE))
    image._m.undo_steps.clear()
    assert run(gimp, image, src, style_file)[0] == Gimp.PDBStatusType.SUCCESS
    new = image.get_layers()[0]
    assert (new.get_mode(), new.get_opacity(), new.get_visible(), new.get_mask()) == \
        (Gimp.LayerMode.NORMAL, 100.0, True, None)
    assert new._m.pixels == [tuple(round((1 - v) * 255) / 255 for v in p[:3]) + p[3:] for p in src._m.pixels]
    assert len(image._m.undo_steps) == 1


def test_a_layer_group_is_refused(gimp, monkeypatch, style_file):
    engine = use_engine(monkeypatch, gimp, ReferenceEngine(gimp.module.swag_client))
    image, (src,) = _one_layer(gimp.Gimp)
    src._m.group = True
    _fails(gimp, image, src, style_file, "'photo' is a layer group: select the layers inside it")
    assert engine.calls == []


# ------------------------------------------------------------------ style from a layer of any open image


def test_style_from_a_layer_of_another_open_image(gimp, monkeypatch):
    Gimp = gimp.Gimp
    client = gimp.module.swag_client
    engine = use_engine(monkeypatch, gimp, ReferenceEngine(client))
    image, (src,) = _one_layer(Gimp)
    paint = lambda i, j: ((i * 40 % 256) / 255, (j * 50 % 256) / 255, 0.5, 1.0)  # noqa: E731
    _, (style_layer,) = make_image(Gimp, 7, 5, [("brush strokes", Gimp.ImageType.RGBA_IMAGE, 7, 5, 0, 0, paint)])
    status, _ = run(gimp, image, src, None, style_source="layer", style_layer=style_layer)
    assert status == Gimp.PDBStatusType.SUCCESS
    assert image.get_layers()[0].get_name() == "SWAG: brush strokes"
    # The engine got the style layer's colours as a PNG.
    w, h, channels, depth, raw = client.decode_png(engine.calls[0]["style"])
    assert (w, h, channels, depth) == (7, 5, 3, 8)
    assert raw == bytes(round(v * 255) for j in range(5) for i in range(7) for v in paint(i, j)[:3])


def test_no_style_layer_chosen(gimp, monkeypatch, style_file):
    engine = use_engine(monkeypatch, gimp, ReferenceEngine(gimp.module.swag_client))
    image, (src,) = _one_layer(gimp.Gimp)
    _fails(gimp, image, src, style_file, "no style layer chosen: pick a layer of an open image", style_source="layer")
    assert engine.calls == []


# ------------------------------------------------------------------ several selected layers


def _three_layers(Gimp):
    flat = lambda v: (lambda i, j: (v, 1 - v, (i + j) % 2, 1.0))  # noqa: E731
    return make_image(Gimp, 20, 16, [("a", Gimp.ImageType.RGBA_IMAGE, 10, 8, 1, 2, flat(0.2)),
                                     ("b", Gimp.ImageType.RGBA_IMAGE, 20, 16, 0, 0, flat(0.6)),
                                     ("c", Gimp.ImageType.RGBA_IMAGE, 6, 6, 9, 9, flat(0.9))])


def test_several_selected_layers_in_one_undo_step_with_progress_across_all(gimp, monkeypatch, style_file):
    Gimp = gimp.Gimp
    engine = use_engine(monkeypatch, gimp, ReferenceEngine(gimp.module.swag_client))
    image, (a, b, c) = _three_layers(Gimp)
    status, _ = run(gimp, image, [a, c], style_file, layer_name="styled")
    assert status == Gimp.PDBStatusType.SUCCESS
    assert [l.get_name() for l in image.get_layers()] == ["styled", "a", "b", "styled", "c"]
    for new, source in ((image.get_layers()[0], a), (image.get_layers()[3], c)):
        assert new.get_offsets() == source.get_offsets()
        assert new._m.pixels == [tuple(round((1 - v) * 255) / 255 for v in p[:3]) + p[3:] for p in source._m.pixels]
    assert [call["size"] for call in engine.calls] == [(10, 8), (6, 6)]
    assert len(image._m.undo_steps) == 1 and len(image._m.undo_steps[0]) == 4  # two inserts, two paints
    assert gimp.recorder.progress == [0.0, 0.25, 0.5, 0.5, 0.75, 1.0]
    assert "SWAG Style Transfer: layer 2 of 2 (c): scale 1 of 1: iteration 1 of 2" in gimp.recorder.progress_texts


@pytest.mark.parametrize("failure", ["cancelled", "engine error"])
def test_a_failure_on_a_later_layer_leaves_the_image_as_it_was(gimp, monkeypatch, style_file, failure):
    Gimp = gimp.Gimp
    client = gimp.module.swag_client
    error = client.Cancelled("cancelled") if failure == "cancelled" else client.EngineError("out of memory")
    use_engine(monkeypatch, gimp, ReferenceEngine(client, fail=error, fail_at=1))
    image, (a, b, c) = _three_layers(Gimp)
    before = image._m.snapshot()
    status, message = run(gimp, image, [a, b, c], style_file)
    if failure == "cancelled":
        assert (status, message) == (Gimp.PDBStatusType.CANCEL, None)
    else:
        assert status == Gimp.PDBStatusType.EXECUTION_ERROR and message.endswith("out of memory")
    assert image._m.snapshot() == before


# ------------------------------------------------------------------ animation frames


def _frames(Gimp, count=3):
    """An animation as GIMP keeps one: a layer per frame, the first frame at the bottom, the
    timing in the names."""
    frame = lambda k: (lambda i, j: (((i + k) * 20 % 256) / 255, (j * 30 % 256) / 255, k * 60 / 255))  # noqa: E731
    return make_image(Gimp, 12, 9, [("Frame %d (100ms)" % (k + 1), Gimp.ImageType.RGB_IMAGE, 12, 9, 0, 0, frame(k))
                                    for k in reversed(range(count))])


def test_animation_frames_go_into_a_new_image_each_starting_from_the_previous_result(gimp, monkeypatch, style_file):
    """Each frame after the first starts from half of the previous frame's stylisation carried
    onto it: this frame + (the previous result - the previous frame) / 2, sample by sample,
    rounded and clamped."""
    Gimp = gimp.Gimp
    client = gimp.module.swag_client
    engine = use_engine(monkeypatch, gimp, ReferenceEngine(client))
    image, frames = _frames(Gimp)
    selected = frames[0]
    before = image._m.snapshot()
    status, new_image = run(gimp, image, selected, style_file, animation=True, layer_name="ignored")
    assert status == Gimp.PDBStatusType.SUCCESS and isinstance(new_image, Gimp.Image)
    assert image._m.snapshot() == before  # the original is not touched
    assert [l.get_name() for l in new_image.get_layers()] == ["Frame 3 (100ms)", "Frame 2 (100ms)", "Frame 1 (100ms)"]
    for new, old in zip(new_image.get_layers(), image.get_layers()):
        assert new._m.pixels == [tuple(round((1 - v) * 255) / 255 for v in p) for p in old._m.pixels]
    # Frame by frame from the first (the bottom layer); the engine's answer inverts every sample.
    firsts = list(reversed(image.get_layers()))
    assert engine.calls[0]["init"] is None
    for k in (1, 2):
        w, h, _, _, init = client.decode_png(engine.calls[k]["init"])
        assert (w, h) == (12, 9)
        now = [round(v * 255) for p in firsts[k]._m.pixels for v in p]
        before = [round(v * 255) for p in firsts[k - 1]._m.pixels for v in p]
        assert init == bytes(min(255, max(0, round(n + ((255 - b) - b) / 2 + 0.001))) for n, b in zip(now, before))
        assert sum(v in (0, 255) for v in init) < len(init) / 10  # the formula, not the clamp, made most
    assert "SWAG Style Transfer: frame 2 of 3 (Frame 2 (100ms)): scale 1 of 1: iteration 1 of 2" \
        in gimp.recorder.progress_texts
    assert gimp.recorder.displays == []  # not in batch use: the caller gets the image


def test_animation_frames_interactive_open_the_new_image(gimp, monkeypatch, style_file):
    Gimp = gimp.Gimp
    use_engine(monkeypatch, gimp, ReferenceEngine(gimp.module.swag_client))
    image, frames = _frames(Gimp, 2)
    status, new_image = run(gimp, image, frames[0], style_file, mode=Gimp.RunMode.INTERACTIVE, animation=True)
    assert status == Gimp.PDBStatusType.SUCCESS and gimp.recorder.displays == [new_image._m]


def test_a_failed_frame_leaves_no_new_image(gimp, monkeypatch, style_file):
    Gimp = gimp.Gimp
    client = gimp.module.swag_client
    use_engine(monkeypatch, gimp, ReferenceEngine(client, fail=client.EngineError("the engine stopped"), fail_at=2))
    image, frames = _frames(Gimp)
    before = image._m.snapshot()
    monkeypatch.setattr(type(image), "duplicate", lambda self: pytest.fail("no image may be made"))
    assert run(gimp, image, frames[0], style_file, animation=True)[0] == Gimp.PDBStatusType.EXECUTION_ERROR
    assert image._m.snapshot() == before


# ------------------------------------------------------------------ the dialog


def test_the_dialog_shows_what_the_engine_says_the_preset_works_at(gimp, monkeypatch, style_file):
    Gimp = gimp.Gimp
    use_engine(monkeypatch, gimp, ReferenceEngine(gimp.module.swag_client))
    image, (src,) = _one_layer(Gimp)
    seen = []

    def user(dialog):
        label = dialog.labels["preset-info"]
        seen.append((label.get_text(), dialog.is_sensitive("style-file"), dialog.is_sensitive("style-layer")))
        dialog.config.set_property("preset", "fast")
        dialog.config.set_property("style-source", "layer")
        seen.append((label.get_text(), dialog.is_sensitive("style-file"), dialog.is_sensitive("style-layer")))
        dialog.config.set_property("style-source", "file")
    gimp.dialog_actions.append(user)
    assert run(gimp, image, src, style_file, mode=Gimp.RunMode.INTERACTIVE)[0] == Gimp.PDBStatusType.SUCCESS
    balanced, fast = ReferenceEngine.PRESETS["balanced"], ReferenceEngine.PRESETS["fast"]
    assert seen == [
        ("Balanced works at up to %d px with %d iterations (where Working size and Iterations are 0)"
         % (balanced["size"], balanced["iterations"]), True, False),
        ("Fast (preview) works at up to %d px with %d iterations (where Working size and Iterations are 0)"
         % (fast["size"], fast["iterations"]), False, True)]


# ------------------------------------------------------------------ the engine's three cases, with the real client


def _no_engine_environment(monkeypatch, gimp, plugin_dir):
    monkeypatch.delenv("SWAG_ENGINE_URL", raising=False)
    monkeypatch.delenv("SWAG_ENGINE_TOKEN", raising=False)
    monkeypatch.setattr(gimp.module, "PLUGIN_DIR", str(plugin_dir))


@pytest.mark.parametrize("case", ["not configured", "python not visible", "not answering"])
def test_each_engine_problem_has_its_own_message(gimp, monkeypatch, painting, tmp_path, case):
    """No engine configured: install it. The engine's Python not visible from GIMP (a Flatpak or
    Snap sandbox): start the engine outside GIMP. An engine elsewhere that does not answer:
    start it there. The dialog says so before the user has chosen anything, and the run
    reports it once."""
    Gimp = gimp.Gimp
    _no_engine_environment(monkeypatch, gimp, tmp_path)
    port = free_port()
    config = {"engine_python": str(tmp_path / "venv-outside-the-sandbox" / "bin" / "python"),
              "engine_url": "http://127.0.0.1:%d" % port, "token_file": "engine-token", "device": "cpu",
              "log_file": str(tmp_path / "engine.log")}
    if case == "not answering":
        config["engine_url"] = "http://engine.invalid:8765"  # .invalid never resolves
    if case != "not configured":
        (tmp_path / "swag_engine.json").write_text(json.dumps(config))
    expected = {
        "not configured": "no engine is configured for this GIMP (no %s): run python3 installer/install.py"
                          % (tmp_path / "swag_engine.json"),
        "python not visible": "its Python %s is not visible from GIMP (a Flatpak or Snap GIMP runs in a sandbox); "
                              "start the engine outside GIMP with `%s -m swag_core serve --idle-timeout 0 --port %d`"
                              % (config["engine_python"], config["engine_python"], port),
        "not answering": "the engine at http://engine.invalid:8765 does not answer: start it on that machine",
    }[case]
    image, (src,) = _one_layer(Gimp)
    message = _fails(gimp, image, src, painting, expected, mode=Gimp.RunMode.INTERACTIVE)
    assert gimp.recorder.messages == []
    assert expected in gimp.recorder.dialogs[-1].labels["preset-info"].get_text()
    assert message.count(expected) == 1


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

    values = dict(common.DEFAULTS, preset="fast", smoothing="none", strength=0.5, seed=7, device="gpu",
                  **{"preserve-colors": True, "layout-weight": 0.3, "full-resolution": True, "size": 96})
    opts = common.engine_options(values)
    assert opts == {"preset": "fast", "arch": "vgg19", "smoothing": "none", "strength": 0.5,
                    "preserve_colors": True, "layout_weight": 0.3, "full_resolution": True, "seed": 7,
                    "device": "gpu", "size": 96}
    with pytest.raises(common.FilterError, match="unknown architecture 'alexnet': choose one of"):
        common.engine_options(dict(values, architecture="alexnet"))
    assert common.layer_name("", "Starry Night.png") == "SWAG: Starry Night.png"
    assert common.layer_name("  Night ", "x.png") == "Night"

    from swag_core.options import Options
    Options.build(**{k: v for k, v in opts.items()})  # the engine accepts the mapped options


def test_one_argument_table_for_both_plugins(gimp):
    """The GIMP 3 procedure's arguments are the shared table's, name for name, with its labels,
    help, ranges and defaults."""
    import swag_gimp_common as common

    for spec, arg in zip(common.ARGUMENTS, gimp.procedure.arguments):
        assert (arg.name, arg.kind, arg.nick, arg.blurb) == (spec.name, spec.kind, spec.label, spec.help)
        if spec.kind in (common.INT, common.DOUBLE):
            assert (arg.minimum, arg.maximum, arg.default) == (spec.low, spec.high, spec.default)
        if spec.kind == common.CHOICE:
            assert arg.choice.list_nicks() == spec.nicks() and arg.default == spec.default


PY27 = "/root/.pyenv/versions/2.7.18/bin/python"


@pytest.mark.skipif(not os.path.exists(PY27), reason="no Python 2.7 at " + PY27)
def test_gimp_210_side_runs_on_python_27(tmp_path):
    """The 2.10 plug-in and the shared modules are valid Python 2.7, and the pixel round trip
    (PNG out, PNG back, alpha kept) gives the same bytes under 2.7."""
    files = [ROOT / "gimp_plugin" / "swag_style_transfer_210.py"] + sorted(
        p for p in PLUGIN_DIR.glob("*.py") if p != PLUGIN)
    code = ("import sys; sys.dont_write_bytecode = True; sys.path.insert(0, %r)\n"
            "for f in %r: compile(open(f).read(), f, 'exec')\n"
            "import swag_filter, swag_gimp_common, swag_pixels as c, swag_client\n"
            "layout = c.PixelLayout(4, 1)\n"
            "raw = bytes(bytearray(range(256)) * 3)[:8 * 6 * 4]\n"
            "png = c.content_png(raw, 8, 6, layout)\n"
            "w, h, ch, d, data = swag_client.decode_png(png)\n"
            "inv = bytes(bytearray(255 - b for b in bytearray(data)))\n"
            "out = c.result_pixels(swag_client.encode_png(w, h, ch, d, inv), 8, 6, layout, raw)\n"
            "deep = c.PixelLayout(2, 2)\n"
            "carried = (c.carried(raw, raw, out, layout)[:8], c.carried(b'\\xff\\xff\\x10\\x00', b'\\x00\\x01'\n"
            "           b'\\x00\\x00', b'\\x02\\x01\\x20\\x00', deep))\n"
            "sys.stdout.write(repr((ch, d, bytearray(out)[:12], [bytearray(x) for x in carried])))\n"
            ) % (str(PLUGIN_DIR), [str(f) for f in files])
    py2 = subprocess.run([PY27, "-c", code], capture_output=True, text=True)
    assert py2.returncode == 0, py2.stderr
    # carried: an unchanged frame starts halfway to the previous result (rounded); 16-bit samples
    # (machine order) are added as numbers, clamped at 65535.
    assert py2.stdout == ("(3, 8, bytearray(b'\\xff\\xfe\\xfd\\x03\\xfb\\xfa\\xf9\\x07\\xf7\\xf6\\xf5\\x0b'), "
                          "[bytearray(b'\\x80\\x80\\x80\\x03\\x80\\x80\\x80\\x07'), bytearray(b'\\xff\\xff \\x00')])")


# ------------------------------------------------------------------ with the real engine


@pytest.fixture(scope="module")
def engine(engine):
    """The session's engine (conftest.py) as the plug-in's client is given it: (url, token)."""
    return engine.url, engine.token


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


def test_real_engine_animation_frames_start_from_the_previous_result(gimp, engine, monkeypatch, photo, painting):
    """Through the real client and service: two identical frames. On its own the second would
    come out exactly as the first (the same job); starting halfway to the first's result, its
    optimisation goes on from there, further from the photo."""
    from PIL import Image as PILImage

    Gimp = gimp.Gimp
    url, token = engine
    monkeypatch.setenv("SWAG_ENGINE_URL", url)
    monkeypatch.setenv("SWAG_ENGINE_TOKEN", token)
    px = PILImage.open(photo).convert("RGB").resize((64, 48)).load()
    frame = lambda i, j: tuple(v / 255 for v in px[i, j])  # noqa: E731
    image, (top, bottom) = make_image(Gimp, 64, 48, [(name, Gimp.ImageType.RGB_IMAGE, 64, 48, 0, 0, frame)
                                                     for name in ("Frame 2", "Frame 1")])
    status, new_image = run(gimp, image, top, painting, animation=True, preset="fast", size=64, iterations=20)
    assert status == Gimp.PDBStatusType.SUCCESS
    second, first = (layer._m.pixels for layer in new_image.get_layers())

    def distance(a, b):
        return sum(abs(x - y) for p, q in zip(a, b) for x, y in zip(p, q)) / (3 * len(a))

    assert first != second
    assert distance(second, top._m.pixels) > 1.2 * distance(first, bottom._m.pixels) > 0


def test_the_dialog_says_when_the_engine_it_started_stops(gimp, monkeypatch, painting, tmp_path):
    """An engine whose Python exits at once (here /bin/false): the dialog's line says so and
    names the log, and the run fails with one message instead of waiting."""
    Gimp = gimp.Gimp
    _no_engine_environment(monkeypatch, gimp, tmp_path)
    (tmp_path / "swag_engine.json").write_text(json.dumps({
        "engine_python": "/bin/false", "engine_url": "http://127.0.0.1:%d" % free_port(),
        "token_file": "engine-token", "device": "cpu", "log_file": str(tmp_path / "engine.log")}))
    gimp.dialog_seconds = 10
    image, (src,) = _one_layer(Gimp)
    message = _fails(gimp, image, src, painting, "the engine exited while starting (status 1)",
                     mode=Gimp.RunMode.INTERACTIVE)
    assert gimp.recorder.dialogs[-1].labels["preset-info"].get_text() == (
        "Balanced: the engine tells its working size and iterations once it runs (the engine stopped while "
        "starting; its log is %s)" % (tmp_path / "engine.log"))
    assert gimp.timeouts.sources == {} and message.count("exited") == 1


@pytest.mark.slow
def test_real_dialog_starts_the_engine_and_shows_its_presets(gimp, monkeypatch, photo, painting, tmp_path):
    """No engine running: the dialog starts one from the config while the user chooses, shows
    what the engine says the preset works at once it answers, and the run uses that engine."""
    from engine_process import ONE_THREAD
    from swag_core.options import PRESETS

    Gimp = gimp.Gimp
    _no_engine_environment(monkeypatch, gimp, tmp_path)
    for name, value in ONE_THREAD.items():
        monkeypatch.setenv(name, value)  # the engine inherits the environment
    (tmp_path / "swag_engine.json").write_text(json.dumps({
        "engine_python": sys.executable, "engine_url": "http://127.0.0.1:%d" % free_port(),
        "token_file": "engine-token", "device": "cpu", "log_file": str(tmp_path / "engine.log")}))
    clients = []
    real_from_config = gimp.module.swag_client.EngineClient.from_config.__func__
    monkeypatch.setattr(gimp.module.swag_client.EngineClient, "from_config",
                        classmethod(lambda cls, folder: clients.append(real_from_config(cls, folder)) or clients[-1]))
    gimp.dialog_seconds = 120  # the dialog stays open until the engine answers (or this long)
    image, (src,) = photo_layer(Gimp, photo)
    try:
        status, message = run(gimp, image, src, painting, mode=Gimp.RunMode.INTERACTIVE, preset="fast",
                              size=64, iterations=3)
    finally:
        for client in clients:
            if client.process is not None:
                client.process.terminate()
                client.process.wait(30)
    assert (status, message) == (Gimp.PDBStatusType.SUCCESS, None)
    assert len(clients) == 1 and clients[0].process is not None  # one engine, started by the dialog
    fast = PRESETS["fast"]
    assert gimp.recorder.dialogs[-1].labels["preset-info"].get_text() == (
        "Fast (preview) works at up to %d px with %d iterations (where Working size and Iterations are 0)"
        % (fast["size"], fast["iterations"]))
    assert len(image.get_layers()) == 2
