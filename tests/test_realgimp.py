"""End to end in a real GIMP 3.0.4 (Debian trixie chroot, tests/realgimp/chroot.py): the plug-in
installed by the project's installer into a GIMP3_DIRECTORY, a real `swag serve` on this host,
and gimp-console-3.0 in batch mode. The batch code writes the pixels it reads (raw bytes) and a
JSON report under /io; the assertions run here.

Needs root and a chroot (CI builds it in .ci/run); elsewhere the tests skip and say why.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "realgimp"))
import chroot  # noqa: E402

from gimpshim.engine import free_port, running_engine  # noqa: E402

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

def stylize(image, layer, **options):
    cfg = proc.create_config()
    cfg.set_property('run-mode', Gimp.RunMode.NONINTERACTIVE)
    cfg.set_property('image', image)
    cfg.set_core_object_array('drawables', [layer])
    cfg.set_property('style-file', Gio.File.new_for_path('/io/style.jpg'))
    for key, value in options.items():
        cfg.set_property(key.replace('_', '-'), value)
    res = proc.run(cfg)
    return [int(res.index(0)), res.index(1) if res.length() > 1 else None]

def describe(image):
    return [dict(name=l.get_name(), size=[l.get_width(), l.get_height()],
                 offsets=list(l.get_offsets()[1:]), alpha=l.has_alpha(), gray=l.is_gray(),
                 mask=l.get_mask() is not None) for l in image.get_layers()]

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
report['gray'] = stylize(gray, layer, FAST_OPTIONS, layer_name='styled gray')
report['gray_layers'] = describe(gray)
dump(gray.get_layers()[0], "Y'A u8", '/io/gray_new.raw')

# A 16-bit image.
deep = load('/io/photo.png')
deep.convert_precision(Gimp.Precision.U16_NON_LINEAR)
report['u16'] = stylize(deep, deep.get_layers()[0], FAST_OPTIONS)
report['u16_layers'] = describe(deep)

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


def install_plugin(gimp_config: Path, engine_url: str, home: Path) -> str:
    """The plug-in in gimp_config/plug-ins, as users get it: through the installer. `home` stands
    in for the user's home and XDG folders, where the installer makes the log folder and names
    the token file (installer/locations.py), so that the test leaves nothing outside its temp folders."""
    plugins = gimp_config / "plug-ins"
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_DATA_HOME": str(home / ".local" / "share"), "XDG_STATE_HOME": str(home / ".local" / "state")}
    subprocess.run([sys.executable, str(ROOT / "installer" / "install.py"), "--plugin-dir", str(plugins),
                    "--python", sys.executable, "--engine-url", engine_url, "--gimp", "3"],
                   check=True, capture_output=True, text=True, env=env)
    config = json.loads((plugins / "swag_style_transfer" / "swag_engine.json").read_text())
    assert all(Path(config[key]).is_relative_to(home) for key in ("token_file", "log_file")), config
    return "installer/install.py"


@pytest.fixture(scope="module")
def setup(tmp_path_factory, photo, painting):
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
    with running_engine(tmp_path_factory.mktemp("engine")) as (url, token):
        install_plugin(io / "gimpcfg", url, tmp_path_factory.mktemp("home"))
        yield root, io, {"SWAG_ENGINE_URL": url, "SWAG_ENGINE_TOKEN": token}


def batch(setup, code, env=None):
    root, io, engine_env = setup
    res = chroot.run_gimp_batch(root, code, io, io / "gimpcfg", env=env or engine_env, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return json.loads((io / "report.json").read_text()), res


def raw(io, name):
    return (io / name).read_bytes()


def test_filter_in_real_gimp(setup):
    root, io, _ = setup
    report, _ = batch(setup, SCENARIOS)
    success = 3  # Gimp.PDBStatusType.SUCCESS

    # RGBA at an offset with a selection.
    assert report["rgba"] == [success, None]
    top, source, bg = report["rgba_layers"]
    assert top == dict(name="SWAG: style.jpg", size=[80, 56], offsets=[7, 5], alpha=True, gray=False, mask=True)
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
                assert new[k:k + 3] == before[k:k + 3]  # under the mask: the source
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


def test_unreachable_engine_in_real_gimp(setup):
    root, io, _ = setup
    env = {"SWAG_ENGINE_URL": "http://127.0.0.1:%d" % free_port(), "SWAG_ENGINE_TOKEN": "x"}
    report, res = batch(setup, UNREACHABLE, env)
    status, message = report["result"]
    assert status == 0  # EXECUTION_ERROR
    # The installed config names this host's Python, which the chroot does not have: the
    # client cannot start an engine and says so.
    assert "engine not installed" in message and "install.py" in message
    assert len(report["layers"]) == 1 and raw(io, "after.raw") == raw(io, "before.raw")


def test_batch_script_on_a_folder(setup, second_painting):
    from PIL import Image

    root, io, _ = setup
    (io / "in").mkdir(exist_ok=True)
    shutil.copy(io / "photo.png", io / "in" / "a.png")
    Image.open(second_painting).convert("RGB").resize((72, 60)).save(io / "in" / "b.jpg")
    shutil.rmtree(io / "out", ignore_errors=True)
    shutil.copytree(ROOT / "gimp_plugin" / "batch", io / "batch")
    code = ("import sys; sys.path.insert(0, '/io/batch'); import stylize_folder\n"
            "stylize_folder.run('/io/in', '/io/style.jpg', '/io/out', %s)\n"
            "open('/io/report.json', 'w').write('{}')\n" % FAST)
    _, res = batch(setup, code)
    assert "stylised: a.png -> /io/out/a.png" in res.stdout and "stylised: b.jpg -> /io/out/b.png" in res.stdout
    a, b = Image.open(io / "out" / "a.png"), Image.open(io / "out" / "b.png")
    assert (a.size, a.mode) == ((80, 56), "RGBA") and b.size == (72, 60)
    assert a.getchannel("A").tobytes() == Image.open(io / "photo.png").getchannel("A").tobytes()
    assert a.convert("RGB").tobytes() != Image.open(io / "photo.png").convert("RGB").tobytes()
