"""The image decoder, fuzzed through the real service: the formats PIL reads, in the shapes users
and broken programs make. Every file gets either a result or one clear error (a 400 or 413 at
once, or a failed job whose reason says what to do, never an internal error), and the service
survives all of them."""

from __future__ import annotations

import io
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine_process import b64, png

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "gimp_plugin" / "swag_style_transfer"))
from swag_client import encode_png  # noqa: E402

# The smallest job that still runs the whole engine: one iteration at 48 px.
TINY = {"arch": "resnet50", "size": 48, "iterations": 1, "device": "cpu"}


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _tiff_rgb16(pixels: np.ndarray) -> bytes:
    """An uncompressed 16-bit-per-sample RGB TIFF (what GIMP exports at 16-bit precision), written
    here from the TIFF 6.0 specification: PIL has no 16-bit RGB mode to write one with."""
    height, width, _ = pixels.shape
    data = pixels.astype("<u2").tobytes()
    entries = [(256, 3, 1, width), (257, 3, 1, height), (258, 3, 3, 8 + 2 + 12 * 10 + 4),
               (259, 3, 1, 1), (262, 3, 1, 2), (273, 4, 1, 8 + 2 + 12 * 10 + 4 + 6),
               (277, 3, 1, 3), (278, 3, 1, height), (279, 4, 1, len(data)), (284, 3, 1, 1)]
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHI", tag, kind, count) + (struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value))
        for tag, kind, count, value in entries) + struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<HHH", 16, 16, 16) + data


def _bomb() -> bytes:
    """A 30000x30000 PNG of one bit a pixel, all zero: 120 KiB that decode to 900 megapixels."""
    import zlib

    row = b"\x00" * (1 + 30000 // 8)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(30000)) + compressor.flush()

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))
    header = struct.pack(">IIBBBBB", 30000, 30000, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def _corpus(photo) -> dict[str, tuple[bytes, str, tuple[int, int] | None]]:
    """name: (file, what it must get, the result's size when it must give one). "result": a
    done job; "clear": a 400/413 or a failed job with a clear reason."""
    rgb = Image.open(photo).convert("RGB").resize((64, 48))
    rgba = rgb.copy()
    rgba.putalpha(Image.linear_gradient("L").resize(rgb.size))
    gray16 = Image.fromarray(np.asarray(rgb.convert("L"), np.uint16) * 257)
    frames = [rgb, rgb.rotate(90), rgb.rotate(180)]
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees to display
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.info["transparency"] = 0
    size, turned = (64, 48), (48, 64)
    good = {
        "PNG RGB": (png(rgb), size),
        "PNG RGBA": (png(rgba), size),
        "PNG 16-bit gray": (png(gray16), size),
        "PNG 16-bit RGB, as the plug-in sends it": (encode_png(64, 48, 3, 16, (np.asarray(rgb, np.uint16) * 257)
                                                              .astype(">u2").tobytes()), size),
        "PNG palette with transparency": (_save(palette, "PNG"), size),
        "PNG 1-bit": (png(rgb.convert("1")), size),
        "PNG gray+alpha": (png(rgba.convert("LA")), size),
        "JPEG": (_save(rgb, "JPEG"), size),
        "JPEG CMYK": (_save(rgb.convert("CMYK"), "JPEG"), size),
        "JPEG EXIF orientation 6": (_save(rgb, "JPEG", exif=exif), turned),
        "JPEG progressive": (_save(rgb, "JPEG", progressive=True), size),
        "TIFF 16-bit gray": (_save(gray16, "TIFF"), size),
        "TIFF 16-bit RGB": (_tiff_rgb16(np.asarray(rgb, np.uint16) * 257), size),
        "TIFF CMYK": (_save(rgb.convert("CMYK"), "TIFF"), size),
        "TIFF LAB": (_save(rgb.convert("LAB"), "TIFF"), size),
        "TIFF 32-bit float gray": (_save(Image.fromarray(np.asarray(rgb.convert("L"), np.float32) / 255), "TIFF"), size),
        "TIFF LZW": (_save(rgb, "TIFF", compression="tiff_lzw"), size),
        "GIF animated": (_save(frames[0], "GIF", save_all=True, append_images=frames[1:]), size),
        "GIF palette with transparency": (_save(palette, "GIF"), size),
        "WebP": (_save(rgb, "WEBP"), size),
        "WebP animated": (_save(frames[0], "WEBP", save_all=True, append_images=frames[1:]), size),
        "WebP lossless RGBA": (_save(rgba, "WEBP", lossless=True), size),
        "BMP": (_save(rgb, "BMP"), size),
        "ICO, two sizes": (_save(rgb.crop((0, 0, 48, 48)), "ICO", sizes=[(48, 48), (32, 32)]), (48, 48)),
    }
    corpus = {name: (data, "result", result) for name, (data, result) in good.items()}
    for name in ("PNG RGB", "JPEG", "TIFF 16-bit RGB", "WebP", "GIF animated"):
        data = good[name][0]
        corpus[f"{name}, truncated to half"] = (data[:len(data) // 2], "clear", None)
        corpus[f"{name}, first 40 bytes"] = (data[:40], "clear", None)
    # Half of a 3-frame GIF still holds its whole first frame, the one the engine stylises.
    corpus["GIF animated, truncated to half"] = (corpus["GIF animated, truncated to half"][0], "result", size)
    flipped = bytearray(good["PNG RGB"][0])
    flipped[len(flipped) // 2] ^= 0xFF
    corpus.update({
        "PNG with a damaged byte": (bytes(flipped), "clear", None),
        "decompression bomb": (_bomb(), "clear", None),
        "1x100000": (png(Image.new("RGB", (1, 100_000), "red")), "clear", None),
        "100000x1": (png(Image.new("L", (100_000, 1), 128)), "clear", None),
        "empty file": (b"", "clear", None),
        "text": (b"just some text, not an image\n", "clear", None),
        "random bytes": (np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes(), "clear", None),
        "PNG signature only": (b"\x89PNG\r\n\x1a\n", "clear", None),
        "a PDF": (_save(rgb, "PDF"), "clear", None),
    })
    return corpus


@pytest.mark.slow
@pytest.mark.parametrize("role", ["content", "style"])
def test_every_file_gets_a_result_or_one_clear_error(engine, photo, second_painting, role):
    valid = {"content": png(Image.open(photo).convert("RGB").resize((64, 48))), "style": second_painting.read_bytes()}
    corpus = _corpus(photo)
    outcomes, jobs = {}, {}
    for name, (data, _, _) in corpus.items():
        body = {**{k: b64(v) for k, v in valid.items()}, role: b64(data), "options": TINY}
        status, reply = engine.request("POST", "/jobs", body)
        if status == 202:
            jobs[name] = reply["id"]
        else:
            outcomes[name] = (status, reply["error"])
    for name, job in jobs.items():
        reply = engine.wait(job)
        outcomes[name] = (reply["state"], reply["error"])
        if reply["state"] == "done":
            status, data = engine.request("GET", f"/jobs/{job}/result")
            result = Image.open(io.BytesIO(data))
            if role == "content":
                assert result.size == corpus[name][2], (name, result.size)

    assert engine.healthy()
    results = [n for n, (state, _) in outcomes.items() if state == "done"]
    clear = [n for n, (state, error) in outcomes.items()
             if state in (400, 413, "failed") and "\n" not in error and "internal error" not in error]
    bad = [n for n, (_, expected, _) in corpus.items() if expected == "clear"]
    print(f"\n{len(corpus)} files as {role}: {len(results)} results, {len(clear)} clear errors "
          f"({len([n for n in bad if n in clear])} of {len(bad)} bad files)")
    wrong = {n: outcomes[n] for n, (_, expected, _) in corpus.items()
             if n not in (results if expected == "result" else clear)}
    assert wrong == {}, wrong


@pytest.mark.parametrize("saved_as, fmt, readable", [("photo.jpg", "PNG", True), ("photo.png", "JPEG", True),
                                                     ("photo.tif", "WEBP", True), ("notes.png", None, False)])
def test_a_file_with_the_wrong_extension_is_read_by_its_content(tmp_path, photo, saved_as, fmt, readable):
    """The command line opens paths: PIL reads a file by what it holds, not by its name."""
    from swag_core.errors import SwagError
    from swag_core.imaging.images import open_image

    path = tmp_path / saved_as
    path.write_bytes(_save(Image.open(photo).convert("RGB"), fmt) if fmt else b"not an image at all")
    if readable:
        assert open_image(path).size == Image.open(photo).size
    else:
        with pytest.raises(SwagError, match="is not an image file"):
            open_image(path)
