"""Stylise every image of a folder with one style, from GIMP 3's command line (docs/batch.md):

    gimp-console-3.0 -i -n --batch-interpreter python-fu-eval --quit -b '
    import sys; sys.path.insert(0, "/path/to/gimp_plugin/batch"); import stylize_folder
    stylize_folder.run("/photos", "/styles/starry_night.jpg", "/photos/stylised", preset="fast")'

Each image goes through the installed "SWAG Style Transfer" procedure (so the engine must be
installed, or reachable through SWAG_ENGINE_URL / SWAG_ENGINE_TOKEN) and is saved as
OUTPUT/NAME.png (PNG keeps alpha and 16-bit precision); the original files are not touched.
Keyword arguments are the procedure's arguments with "_" for "-" (preset, architecture,
smoothing, size, iterations, strength, preserve_colors, layout_weight, full_resolution, seed,
device, animation). With
animation=True every layer of a file is a frame (an animated GIF, or a layered XCF): the frames
are stylised one after the other, each starting from the previous one's result, and saved as
the animation OUTPUT/NAME.gif. A file that fails is reported and skipped; at the end an
exception lists the failures, so gimp-console exits with status 64 when any image failed.
"""

import os

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, Gio  # noqa: E402

PROCEDURE = "python-fu-swag-style-transfer"
EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".xcf", ".bmp", ".gif")


def _config(proc, image, layer, style, options):
    config = proc.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", [layer])
    config.set_property("style-file", Gio.File.new_for_path(style))
    for key, value in options.items():
        name = key.replace("_", "-")
        if proc.find_argument(name) is None:
            raise ValueError("unknown option %r" % key)
        config.set_property(name, value)
        # GIMP ignores an invalid value with a warning only: check that it was taken.
        if config.get_property(name) != value:
            raise ValueError("invalid value %r for %s" % (value, key))
    return config


def _run(proc, config):
    """The procedure's return values; its message as an exception when it failed."""
    result = proc.run(config)
    if result.index(0) != Gimp.PDBStatusType.SUCCESS:
        raise RuntimeError(result.index(1) if result.length() > 1 else str(result.index(0)))
    return result


def _stylize_one(proc, path, style, out_path, options):
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path))
    try:
        if image.get_base_type() == Gimp.ImageBaseType.INDEXED:  # a GIF: the filter needs RGB
            image.convert_rgb()
        selected = image.get_selected_layers()
        source = selected[0] if selected else image.get_layers()[0]
        result = _run(proc, _config(proc, image, source, style, options))
        if options.get("animation"):
            frames = result.index(1)
            try:
                _save_animation(frames, out_path)
            finally:
                frames.delete()
            return
        image.remove_layer(source)  # the result has the source's alpha: keep it, not both
        if len(image.get_layers()) > 1:
            image.merge_visible_layers(Gimp.MergeType.CLIP_TO_IMAGE)
        if not Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(out_path), None):
            raise RuntimeError("cannot save %s" % out_path)
    finally:
        image.delete()


def _save_animation(image, out_path):
    """An animated GIF that loops, each frame's delay as its layer name says ("(100ms)")."""
    gif = Gimp.get_pdb().lookup_procedure("file-gif-export")
    config = gif.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_property("file", Gio.File.new_for_path(out_path))
    config.set_property("as-animation", True)
    config.set_property("loop", True)
    _run(gif, config)


def run(input_dir, style, output_dir, **options):
    """Stylise the images of input_dir into output_dir; returns the list of written files."""
    proc = Gimp.get_pdb().lookup_procedure(PROCEDURE)
    if proc is None:
        raise RuntimeError("%s is not installed in this GIMP: run python3 installer/install.py" % PROCEDURE)
    if not os.path.isfile(style):
        raise RuntimeError("style image %s does not exist" % style)
    names = sorted(n for n in os.listdir(input_dir) if n.lower().endswith(EXTENSIONS)
                   and os.path.isfile(os.path.join(input_dir, n)))
    if not names:
        raise RuntimeError("no images (%s) in %s" % (" ".join(EXTENSIONS), input_dir))
    if not os.path.isdir(output_dir):
        os.makedirs(output_dir)
    written, failed = [], []
    extension = ".gif" if options.get("animation") else ".png"
    for name in names:
        out_path = os.path.join(output_dir, os.path.splitext(name)[0] + extension)
        try:
            if out_path in written:
                raise RuntimeError("another file already became %s; rename one of them" % out_path)
            _stylize_one(proc, os.path.join(input_dir, name), style, out_path, options)
        except Exception as exc:
            failed.append(name)
            print("failed: %s: %s" % (name, exc), flush=True)
            continue
        written.append(out_path)
        print("stylised: %s -> %s" % (name, out_path), flush=True)
    if failed:
        raise RuntimeError("%d of %d images failed: %s" % (len(failed), len(names), ", ".join(failed)))
    return written
