"""`swag` as a user runs it: real files, and for each command one run in a real process; the
many bad-input cases run the same `main` in this process, which spares a torch import each."""

import subprocess
import sys

import pytest
from PIL import Image

from swag_core.cli import main
from swag_core.engine import device


def swag(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "swag_core", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def swag_in_process(capsys, *args):
    """What `swag` would answer, as `swag` gives it: exit status, stdout, stderr."""
    try:
        status = main([str(a) for a in args])
    except SystemExit as exit:  # argparse's usage errors and --help
        status = exit.code
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, status, out, err)


def _one_line_error(proc):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.mark.slow
def test_stylize_photo_with_alpha_is_deterministic(tmp_path, photo_rgba, painting, capsys):
    """The issue's acceptance run: real photo with alpha + real painting, 128 px, 30 iterations;
    once in a new process, once in this one: the same bytes."""
    outputs = []
    for name, run in (("a.png", swag), ("b.png", lambda *args: swag_in_process(capsys, *args))):
        out = tmp_path / name
        proc = run("stylize", photo_rgba, painting, "-o", out, "--size", 128, "--iterations", 30,
                   "--device", "cpu", "--seed", 11)
        assert proc.returncode == 0, proc.stderr
        assert f"wrote {out}" in proc.stdout
        outputs.append(out)
    source, result = Image.open(photo_rgba), Image.open(outputs[0])
    assert result.size == source.size and result.mode == "RGBA"
    assert result.getchannel("A").tobytes() == source.getchannel("A").tobytes()
    assert result.convert("RGB").tobytes() != source.convert("RGB").tobytes()
    assert outputs[0].read_bytes() == outputs[1].read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]  # no temp files left


@pytest.mark.parametrize("case, message", [
    ("missing_content", "content file .* does not exist"),
    ("text_as_style", "is not an image file"),
    ("truncated_style", "damaged or truncated"),
    ("too_small", "too small for vgg19"),
    ("bad_strength", "strength must be between"),
    ("bad_arch", "invalid choice: 'alexnet'"),
    ("bad_size_type", "invalid int value"),
    ("unknown_extension", "cannot tell the image format"),
    ("jpeg_with_alpha", "JPEG cannot hold a RGBA image"),
    ("missing_output_folder", "output folder .* does not exist"),
    ("missing_weights", "weights file .* does not exist"),
])
def test_bad_input_is_one_line_exit_2_and_no_output(tmp_path, photo, photo_rgba, painting, case, message, capsys):
    out = tmp_path / "out.png"
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(painting.read_bytes()[:5000])
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (20, 12), "red").save(tiny)
    args = {
        "missing_content": (tmp_path / "nope.jpg", painting, "-o", out),
        "text_as_style": (photo, text, "-o", out),
        "truncated_style": (photo, cut, "-o", out),
        "too_small": (tiny, painting, "-o", out),
        "bad_strength": (photo, painting, "-o", out, "--strength", "1.5"),
        "bad_arch": (photo, painting, "-o", out, "--arch", "alexnet"),
        "bad_size_type": (photo, painting, "-o", out, "--size", "big"),
        "unknown_extension": (photo, painting, "-o", tmp_path / "out.xyz"),
        "jpeg_with_alpha": (photo_rgba, painting, "-o", tmp_path / "out.jpg", "--size", 64, "--iterations", 2),
        "missing_output_folder": (photo, painting, "-o", tmp_path / "no" / "out.png"),
        "missing_weights": (photo, painting, "-o", out, "--weights", tmp_path / "w.pth"),
    }[case]
    line = _one_line_error(swag_in_process(capsys, "stylize", *args))
    assert __import__("re").search(message, line), line
    assert not any(p.suffix in (".png", ".jpg", ".xyz") and p.name.startswith(("out", ".swag"))
                   for p in tmp_path.rglob("*"))


def test_info_reports_versions_device_and_weights():
    proc = swag("info")
    assert proc.returncode == 0, proc.stderr
    assert "torch " in proc.stdout and "device (auto): cpu" in proc.stdout
    expected = "bf16" if device.cpu_has_bf16() else "fp32"
    assert f"precision (auto): {expected} for the network" in proc.stdout
    assert "pre-trained (imagenet) weights present:" in proc.stdout


@pytest.mark.slow
def test_demo_runs_on_the_bundled_images(tmp_path):
    out = tmp_path / "demo.png"
    proc = swag("demo", "-o", out, "--size", 64, "--iterations", 3, "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert Image.open(out).size == (451, 300)


def test_python_m_and_console_script_are_the_same_program():
    import shutil

    exe = shutil.which("swag") or str(__import__("pathlib").Path(sys.executable).with_name("swag"))
    a = subprocess.run([exe, "--version"], capture_output=True, text=True)
    b = swag("--version")
    assert a.returncode == b.returncode == 0 and a.stdout == b.stdout and a.stdout.startswith("swag ")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_output_file_mode_follows_the_umask(tmp_path, umask, mode):
    """`swag stylize -o` writes through a temporary file and a rename; the file it leaves must
    have the mode the user's umask gives any new file, not a temporary file's 0600."""
    import os

    from swag_core.imaging.saving import save_image

    previous = os.umask(umask)
    try:
        save_image(Image.new("RGB", (4, 4)), tmp_path / "out.png")
    finally:
        os.umask(previous)
    assert (tmp_path / "out.png").stat().st_mode & 0o777 == mode
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_stylize_offers_every_option(capsys):
    from swag_core.options import Options

    help_text = swag_in_process(capsys, "stylize", "--help").stdout
    missing = [n for n in Options.names() if f"--{n.replace('_', '-')}" not in help_text]
    assert not missing
