"""End to end in a real GIMP 3.0.4 (Debian trixie chroot, tests/realgimp/chroot.py), installed
as a Flatpak GIMP is: the project's installer puts the plug-in into a Flatpak GIMP's folder of a
stand-in home, and GIMP in the chroot sees that folder at another path and does not see the
engine's Python, as a sandboxed GIMP. The engine is a real `swag serve` started outside, on this
host, with the installer's token; the plug-in finds it through its config and the token copy
beside it, with nothing in GIMP's environment. gimp-console-3.0 runs batch code that writes the
pixels it reads (raw bytes) and a JSON report under /io; the assertions run here. One test runs
GIMP with its windows (Xvfb) and acts as the user with xdotool.

Needs root and a chroot (CI builds it in .ci/run); elsewhere the tests skip and say why.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "realgimp"))
import chroot  # noqa: E402

from gimpshim.engine import free_port  # noqa: E402

pytestmark = [pytest.mark.realgimp, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
AVAILABLE, WHY = chroot.available()
FAST = "preset='fast', size=64, iterations=3"

# Shared by every batch: helpers in GIMP's python-fu-eval (Gimp, Gio, Gegl already imported).
PRELUDE = r"""
import json
proc = Gimp.get_pdb().lookup_procedure('python-fu-swag-style-transfer')
assert proc is not None, 'the plug-in is not registered'

def dump(drawable, fmt, path):
    rect = Gegl.Rectangle.new(0, 0, drawable.get_width(), drawable.get_height())
    with open(path, 'wb') as f:
        f.write(drawable.get_buffer().get(rect, 1.0, fmt, Gegl.AbyssPolicy.CLAMP))

def stylize(image, layers, mode=Gimp.RunMode.NONINTERACTIVE, **options):
    # [status, message]; a new image (animation frames) goes to NEW_IMAGES.
    cfg = proc.create_config()
    cfg.set_property('run-mode', mode)
    cfg.set_property('image', image)
    cfg.set_core_object_array('drawables', layers if isinstance(layers, list) else [layers])
    cfg.set_property('style-file', Gio.File.new_for_path('/io/style.jpg'))
    for key, value in options.items():
        cfg.set_property(key.replace('_', '-'), value)
    res = proc.run(cfg)
    value = res.index(1) if res.length() > 1 else None
    if isinstance(value, Gimp.Image):
        NEW_IMAGES.append(value)
        value = 'new image'
    return [int(res.index(0)), value]

NEW_IMAGES = []

def describe(image):
    return [dict(name=l.get_name(), size=[l.get_width(), l.get_height()],
                 offsets=list(l.get_offsets()[1:]), alpha=l.has_alpha(), gray=l.is_gray(),
                 mask=l.get_mask() is not None, opacity=l.get_opacity(), visible=l.get_visible())
            for l in image.get_layers()]

def load(path):
    return Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path))
"""

SCENARIOS = PRELUDE + r"""
report = {}
# An RGBA photo layer at an offset on a larger canvas, with a selection that sticks out of it.
img = Gimp.Image.new(96, 72, Gimp.ImageBaseType.RGB)
bg = Gimp.Layer.new(img, 'bg', 96, 72, Gimp.ImageType.RGB_IMAGE, 100, Gimp.LayerMode.NORMAL)
img.insert_layer(bg, None, 0)
photo = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, img, Gio.File.new_for_path('/io/photo.png'))
photo.set_name('photo')
img.insert_layer(photo, None, 0)
photo.set_offsets(7, 5)
img.select_rectangle(Gimp.ChannelOps.REPLACE, 10, 8, 90, 50)
dump(photo, "R'G'B'A u8", '/io/rgba_before.raw')
report['rgba'] = stylize(img, photo, FAST_OPTIONS)
report['rgba_layers'] = describe(img)
new = img.get_layers()[0]
dump(new, "R'G'B'A u8", '/io/rgba_new.raw')
dump(photo, "R'G'B'A u8", '/io/rgba_after.raw')
if new.get_mask() is not None:
    dump(new.get_mask(), "Y u8", '/io/rgba_mask.raw')

# A grayscale image.
gray = load('/io/photo.png')
gray.convert_grayscale()
layer = gray.get_layers()[0]
dump(layer, "Y'A u8", '/io/gray_before.raw')
report['gray'] = stylize(gray, layer, FAST_OPTIONS, layout_weight=0.3, layer_name='styled gray')
report['gray_layers'] = describe(gray)
dump(gray.get_layers()[0], "Y'A u8", '/io/gray_new.raw')

# A 16-bit image.
deep = load('/io/photo.png')
deep.convert_precision(Gimp.Precision.U16_NON_LINEAR)
report['u16'] = stylize(deep, deep.get_layers()[0], FAST_OPTIONS)
report['u16_layers'] = describe(deep)

# Two selected layers of an image, the style from a layer of another open image, the source
# half transparent and hidden: one new layer above each, plain (normal, opaque, visible).
two = load('/io/photo.png')
lower = two.get_layers()[0]
upper = Gimp.Layer.new_from_drawable(lower, two)
upper.set_name('upper')
two.insert_layer(upper, None, 0)
upper.set_opacity(50.0)
upper.set_visible(False)
painting = load('/io/style.jpg')
report['two'] = stylize(two, [lower, upper], FAST_OPTIONS, style_source='layer', style_layer=painting.get_layers()[0])
report['two_layers'] = describe(two)

# Animation frames: a new image with every frame stylised, the original untouched.
anim = load('/io/photo.png')
first = anim.get_layers()[0]
first.set_name('Frame 1 (100ms)')
for k in (2, 3):
    frame = Gimp.Layer.new_from_drawable(first, anim)
    frame.set_name('Frame %d (100ms)' % k)
    anim.insert_layer(frame, None, 0)
    frame.set_offsets(k, 0)
report['anim'] = stylize(anim, first, FAST_OPTIONS, animation=True)
report['anim_layers'] = describe(anim)
report['anim_new_layers'] = describe(NEW_IMAGES[0])
dump(NEW_IMAGES[0].get_layers()[2], "R'G'B'A u8", '/io/anim_first_new.raw')
dump(first, "R'G'B'A u8", '/io/anim_first_before.raw')

# An indexed image: refused with a message, unchanged.
idx = load('/io/photo.png')
idx.convert_indexed(Gimp.ConvertDitherType.NONE, Gimp.ConvertPaletteType.GENERATE, 16, False, False, '')
report['indexed'] = stylize(idx, idx.get_layers()[0], FAST_OPTIONS)
report['indexed_layers'] = describe(idx)
with open('/io/report.json', 'w') as f:
    json.dump(report, f)
""".replace("FAST_OPTIONS", FAST)

UNREACHABLE = PRELUDE + r"""
img = load('/io/photo.png')
layer = img.get_layers()[0]
dump(layer, "R'G'B'A u8", '/io/before.raw')
result = stylize(img, layer, FAST_OPTIONS)
dump(layer, "R'G'B'A u8", '/io/after.raw')
with open('/io/report.json', 'w') as f:
    json.dump({'result': result, 'layers': describe(img)}, f)
""".replace("FAST_OPTIONS", FAST)


class Setup(NamedTuple):
    root: Path  # the chroot
    io: Path  # /io inside it
    gimp_config: Path  # the Flatpak GIMP's config folder (GIMP3_DIRECTORY), /gimpcfg inside the chroot
    engine_url: str


def install_as_flatpak(home: Path, engine_url: str, engine_token: str) -> Path:
    """The plug-in, installed by the project's installer into a Flatpak GIMP 3.0's folder of a
    stand-in home whose engine token is the running engine's (as after `swag serve` was started
    by hand). Returns that GIMP's config folder."""
    gimp_config = home / ".var/app/org.gimp.GIMP/config/GIMP/3.0"
    gimp_config.mkdir(parents=True)  # GIMP makes it on its first start
    token_file = home / ".config/swag/engine-token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text(engine_token + "\n")
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_DATA_HOME": str(home / ".local" / "share"), "XDG_STATE_HOME": str(home / ".local" / "state")}
    subprocess.run([sys.executable, str(ROOT / "installer" / "install.py"), "--python", sys.executable,
                    "--engine-url", engine_url, "--gimp", "3"], check=True, capture_output=True, text=True, env=env)
    config = json.loads((gimp_config / "plug-ins/swag_style_transfer/swag_engine.json").read_text())
    assert config["token_file"] == "engine-token" and config["engine_python"] == sys.executable, config
    return gimp_config


@pytest.fixture(scope="module")
def setup(tmp_path_factory, photo, painting, engine):
    if not AVAILABLE:
        pytest.skip(f"no real GIMP 3 here: {WHY}")
    from PIL import Image, ImageDraw

    root = chroot.ensure_chroot()
    io = tmp_path_factory.mktemp("gimpio")
    io.chmod(0o755)
    image = Image.open(photo).convert("RGB").resize((80, 56))
    alpha = Image.new("L", image.size, 0)
    ImageDraw.Draw(alpha).ellipse((2, 2, 77, 53), fill=255)
    alpha.paste(128, (0, 0, 10, 56))  # a half-transparent band too
    image.putalpha(alpha)
    image.save(io / "photo.png")
    shutil.copy(painting, io / "style.jpg")
    assert not Path(sys.executable).is_relative_to(root)  # the engine's Python is outside GIMP's view
    gimp_config = install_as_flatpak(tmp_path_factory.mktemp("home"), engine.url, engine.token)
    return Setup(root, io, gimp_config, engine.url)


def batch(setup, code, env=None, gui=False):
    """Run batch code in GIMP; only `env` in its environment (no SWAG_ENGINE_* by default)."""
    res = chroot.run_gimp_batch(setup.root, code, setup.io, setup.gimp_config, env=env, timeout=300, gui=gui)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return json.loads((setup.io / "report.json").read_text()), res


def raw(io, name):
    return (io / name).read_bytes()


def test_filter_in_real_gimp(setup):
    """The sandboxed GIMP reaches the engine started outside it through the installed config
    and token copy (nothing in its environment), for each kind of layer."""
    io = setup.io
    report, _ = batch(setup, SCENARIOS)
    success = 3  # Gimp.PDBStatusType.SUCCESS

    # RGBA at an offset with a selection.
    assert report["rgba"] == [success, None]
    top, source, bg = report["rgba_layers"]
    assert top == dict(name="SWAG: style.jpg", size=[80, 56], offsets=[7, 5], alpha=True, gray=False, mask=True,
                       opacity=100.0, visible=True)
    assert source["name"] == "photo" and not source["mask"] and bg["name"] == "bg"
    before, after, new = raw(io, "rgba_before.raw"), raw(io, "rgba_after.raw"), raw(io, "rgba_new.raw")
    assert after == before  # the source is untouched
    mask = raw(io, "rgba_mask.raw")
    changed = 0
    for j in range(56):
        for i in range(80):
            k = (j * 80 + i) * 4
            assert new[k + 3] == before[k + 3]  # the source's alpha, exactly
            # Selection (10,8)-(100,58) on the layer at (7,5): layer-local x >= 3, 3 <= y < 53.
            inside = i >= 3 and 3 <= j < 53
            assert mask[j * 80 + i] == (255 if inside else 0), (i, j)
            if not inside:
                assert new[k:k + 3] == before[k:k + 3]  # under the mask: the source (GIMP's copy of it)
            elif before[k + 3] and max(abs(a - b) for a, b in zip(new[k:k + 3], before[k:k + 3])) > 2:
                changed += 1
    assert changed > 0.5 * 77 * 50

    # Grayscale in, grayscale layer out, alpha kept.
    assert report["gray"] == [success, None]
    assert report["gray_layers"][0]["name"] == "styled gray" and report["gray_layers"][0]["gray"]
    gray_before, gray_new = raw(io, "gray_before.raw"), raw(io, "gray_new.raw")
    assert gray_new[1::2] == gray_before[1::2]
    assert gray_new[0::2] != gray_before[0::2]

    # 16-bit: works; indexed: refused with a message that says what to do, nothing added.
    assert report["u16"] == [success, None] and len(report["u16_layers"]) == 2
    status, message = report["indexed"]
    assert status == 0 and "Image > Mode > RGB" in message  # EXECUTION_ERROR
    assert len(report["indexed_layers"]) == 1

    # Two selected layers, the style from a layer of another image (style.jpg's, "Background"): a
    # plain new layer above each, named after the style layer (GIMP numbers the second).
    assert report["two"] == [success, None]
    assert [(l["name"], l["opacity"], l["visible"]) for l in report["two_layers"]] == [
        ("SWAG: Background #1", 100.0, True), ("upper", 50.0, False), ("SWAG: Background", 100.0, True),
        ("Background", 100.0, True)]

    # Animation frames: a new image, frame names (and timing) kept, frames stylised; the original as it was.
    assert report["anim"] == [success, "new image"]
    names = ["Frame 3 (100ms)", "Frame 2 (100ms)", "Frame 1 (100ms)"]
    assert [l["name"] for l in report["anim_layers"]] == names
    assert [(l["name"], l["offsets"]) for l in report["anim_new_layers"]] == [
        (l["name"], l["offsets"]) for l in report["anim_layers"]]
    first_before, first_new = raw(io, "anim_first_before.raw"), raw(io, "anim_first_new.raw")
    assert first_new[3::4] == first_before[3::4] and first_new != first_before


def test_sandboxed_gimp_without_an_engine_says_to_start_it_outside(setup):
    """The configured Python does not exist inside GIMP's view, and nothing answers at the URL:
    the message says to start the engine outside GIMP, with the command."""
    port = free_port()
    report, res = batch(setup, UNREACHABLE, {"SWAG_ENGINE_URL": "http://127.0.0.1:%d" % port})
    status, message = report["result"]
    assert status == 0  # EXECUTION_ERROR
    assert f"its Python {sys.executable} is not visible from GIMP (a Flatpak or Snap GIMP runs in a sandbox); " \
           f"start the engine outside GIMP with `{sys.executable} -m swag_core serve --idle-timeout 0 --port {port}`" \
           in message
    assert len(report["layers"]) == 1 and raw(setup.io, "after.raw") == raw(setup.io, "before.raw")


BATCH = ("import sys; sys.path.insert(0, '/io/batch'); import stylize_folder\n"
         "stylize_folder.run('/io/in', '/io/style.jpg', '/io/out', %s)\n"
         "open('/io/report.json', 'w').write('{}')\n")


def _batch_folder(setup, files):
    io = setup.io
    for folder in ("in", "out", "batch"):
        shutil.rmtree(io / folder, ignore_errors=True)
    (io / "in").mkdir()
    for name, write in files.items():
        write(io / "in" / name)
    shutil.copytree(ROOT / "gimp_plugin" / "batch", io / "batch")


def test_batch_script_on_a_folder(setup, second_painting):
    from PIL import Image

    io = setup.io
    _batch_folder(setup, {"a.png": lambda p: shutil.copy(io / "photo.png", p),
                          "b.jpg": lambda p: Image.open(second_painting).convert("RGB").resize((72, 60)).save(p)})
    _, res = batch(setup, BATCH % FAST)
    assert "stylised: a.png -> /io/out/a.png" in res.stdout and "stylised: b.jpg -> /io/out/b.png" in res.stdout
    a, b = Image.open(io / "out" / "a.png"), Image.open(io / "out" / "b.png")
    assert (a.size, a.mode) == ((80, 56), "RGBA") and b.size == (72, 60)
    assert a.getchannel("A").tobytes() == Image.open(io / "photo.png").getchannel("A").tobytes()
    assert a.convert("RGB").tobytes() != Image.open(io / "photo.png").convert("RGB").tobytes()


def test_batch_script_stylises_an_animated_gif_frame_by_frame(setup, photo):
    from PIL import Image, ImageSequence

    io = setup.io
    picture = Image.open(photo).convert("RGB").resize((96, 64))
    frames = [picture.crop((k * 8, 0, k * 8 + 64, 48)) for k in range(3)]  # a slow pan

    def gif(path):
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=120, loop=0)
    _batch_folder(setup, {"pan.gif": gif})
    _, res = batch(setup, BATCH % (FAST + ", animation=True"))
    assert "stylised: pan.gif -> /io/out/pan.gif" in res.stdout
    out = Image.open(io / "out" / "pan.gif")
    stylised = [f.convert("RGB") for f in ImageSequence.Iterator(out)]
    assert len(stylised) == 3 and out.size == (64, 48) and out.info.get("duration") == 120
    for before, after in zip(frames, stylised):
        assert after.tobytes() != before.tobytes()


GUI = PRELUDE + r"""
import subprocess, time
img = load('/io/photo.png')
layer = img.get_layers()[0]
dump(layer, "R'G'B'A u8", '/io/before.raw')
Gimp.Display.new(img)
Gimp.displays_flush()
report = {'layers_before': describe(img)}
# The user: waits for the filter's dialog and presses Return, which is its OK (the default button).
user = subprocess.Popen(['xdotool', 'search', '--sync', '--name', '^SWAG Style Transfer', 'windowfocus', '--sync',
                         'key', '--delay', '200', 'Return'])
report['run'] = stylize(img, layer, Gimp.RunMode.INTERACTIVE, FAST_OPTIONS)
report['user'] = user.wait(timeout=60)
report['layers_after'] = describe(img)
# Edit > Undo, as the user does it: Ctrl+Z in the image's window.
window = subprocess.run(['xdotool', 'search', '--onlyvisible', '--name', ' GIMP$'], capture_output=True,
                        text=True).stdout.split()
subprocess.run(['xdotool', 'windowfocus', '--sync', window[0], 'key', 'ctrl+z'])
for _ in range(100):
    if len(img.get_layers()) == 1:
        break
    time.sleep(0.1)
report['layers_undone'] = describe(img)
dump(img.get_layers()[0], "R'G'B'A u8", '/io/after.raw')
with open('/io/report.json', 'w') as f:
    json.dump(report, f)
""".replace("FAST_OPTIONS", FAST)


def test_dialog_in_gimps_windows_adds_a_layer_that_one_undo_removes(setup):
    """GIMP 3 with its windows on an Xvfb display: the procedure's dialog opens without any
    warning from GIMP (mnemonics that clash with its buttons, or calls it refuses), OK runs the
    filter, and one Edit > Undo takes the new layer away again."""
    chroot.ensure_gui(setup.root)
    report, res = batch(setup, GUI, gui=True)
    assert report["user"] == 0  # the dialog appeared and took the key
    assert report["run"] == [3, None]
    assert [l["name"] for l in report["layers_after"]] == ["SWAG: style.jpg", "Background"]
    assert report["layers_undone"] == report["layers_before"]
    assert raw(setup.io, "after.raw") == raw(setup.io, "before.raw")
    plugin_lines = [line for line in res.stderr.splitlines() if "swag" in line.lower() or "mnemonic" in line]
    assert not [line for line in plugin_lines if "mnemonic" in line or "CRITICAL" in line or "Traceback" in line
                or "WARNING" in line and "/proc/mounts" not in line], plugin_lines
