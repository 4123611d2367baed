"""The engine's Python environment: a venv with a torch build that fits the machine and this
project installed in it, or an existing environment given with --python."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

from .fileops import FileOps, InstallError
from .locations import LINUX, MACOS, WINDOWS

MIN_PYTHON = (3, 10)  # pyproject.toml's requires-python
PYPI = "https://pypi.org/simple"
PYTORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# PyPI's torch for Windows is CPU-only; PyTorch's own index has the CUDA builds.
PYTORCH_CUDA_INDEX_WINDOWS = "https://download.pytorch.org/whl/cu128"
# Only venvs holding this file were created by the installer, and only those --purge deletes.
MARKER = "swag-style-transfer-installer.txt"
DEFAULT_WEIGHTS = ("vgg19", "resnet50")


def venv_python(venv: Path, system: str) -> Path:
    return venv / ("Scripts/python.exe" if system == WINDOWS else "bin/python")


def has_nvidia_gpu() -> bool:
    """An NVIDIA driver that answers: the machine can use a CUDA build of torch."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return False
    try:
        result = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and "GPU" in result.stdout


class TorchSource(NamedTuple):
    pip_args: list  # where pip finds torch
    why: str  # one line for the user


def torch_source(system: str, machine: str, nvidia: bool, index_url: str | None = None,
                 wheelhouse: Path | None = None) -> TorchSource:
    if wheelhouse:
        return TorchSource(["--no-index", "--find-links", str(wheelhouse)], f"the wheelhouse {wheelhouse} (offline)")
    if index_url:
        return TorchSource(["--index-url", index_url], f"{index_url} (--torch-index-url)")
    if system == MACOS:
        gpu = "uses the Apple GPU through MPS" if machine == "arm64" else "CPU only on Intel Macs"
        return TorchSource([], f"PyPI's build for macOS ({gpu})")
    if nvidia:
        if system == WINDOWS:
            return TorchSource(["--index-url", PYTORCH_CUDA_INDEX_WINDOWS],
                               f"PyTorch's CUDA build from {PYTORCH_CUDA_INDEX_WINDOWS} (an NVIDIA GPU is present)")
        return TorchSource([], "PyPI's build, which includes CUDA (an NVIDIA GPU is present)")
    if system == LINUX:
        return TorchSource(["--index-url", PYTORCH_CPU_INDEX],
                           f"the CPU build from {PYTORCH_CPU_INDEX} (no NVIDIA GPU found; a much smaller download)")
    return TorchSource([], "PyPI's build (CPU; no NVIDIA GPU found)")


def python_tag(version=sys.version_info) -> str:
    return f"cp{version[0]}{version[1]}"


def wheelhouse_problem(wheelhouse: Path, tag: str) -> str | None:
    """Why pip cannot install torch from this folder, found before anything is created."""
    if not wheelhouse.is_dir():
        return f"the wheelhouse {wheelhouse} is not a folder"
    for name in ("torch", "torchvision"):
        wheels = sorted(p.name for p in wheelhouse.glob(f"{name}-*.whl"))
        if not wheels:
            return f"the wheelhouse {wheelhouse} has no {name} wheel"
        if not any(f"-{tag}-" in wheel for wheel in wheels):
            return f"the wheelhouse {wheelhouse} has no {name} wheel for this Python ({tag}): only {', '.join(wheels)}"
    return None


def fill_wheelhouse_hint(wheelhouse: Path, repo: Path) -> str:
    return (f"fill it on a machine with internet, the same system and the same Python version: "
            f"`python3 -m pip download --dest {wheelhouse} torch torchvision setuptools {repo}` "
            f"(add --extra-index-url {PYTORCH_CPU_INDEX} for the small CPU build)")


def run(cmd: list, what: str, dry_run: bool, hint: str) -> None:
    """Run a long step with its own output on the terminal (pip shows its progress bars)."""
    print(f"  {'would run' if dry_run else 'running'}: {' '.join(str(c) for c in cmd)}", flush=True)
    if dry_run:
        return
    start = time.monotonic()
    try:
        code = subprocess.call([str(c) for c in cmd])
    except OSError as exc:
        raise InstallError(f"{what} failed: cannot run {cmd[0]}: {exc.strerror}; {hint}") from None
    if code != 0:
        raise InstallError(f"{what} failed (exit status {code}; pip's reason is in the lines above); {hint}")
    print(f"  {what}: done in {time.monotonic() - start:.0f} s", flush=True)


def probe(python: Path, code: str, timeout: float = 300) -> tuple[bool, str]:
    """Run a snippet in the engine's Python: (it worked, its output or the last error line)."""
    return run_python(python, ["-c", code], timeout)


def run_python(python: Path, args: list, timeout: float = 300) -> tuple[bool, str]:
    """Run the engine's Python with `args`: (it worked, its output or the last error line)."""
    try:
        result = subprocess.run([str(python), *args], capture_output=True, text=True, timeout=timeout,
                                cwd=neutral_cwd(python))
    except OSError as exc:
        return False, f"cannot run {python}: {exc.strerror}"
    except subprocess.TimeoutExpired:
        return False, f"`{python} {' '.join(args)}` did not finish within {timeout:.0f} s"
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        return False, lines[-1] if lines else f"exit status {result.returncode}"
    return True, result.stdout.strip()


def neutral_cwd(python: Path) -> str:
    """A working folder for the engine's Python: `-c` and `-m` put the working folder first on
    sys.path, and run from the project's folder they would find its swag_core instead of the
    installed one."""
    return str(Path(python).parent)


IMPORT_ENGINE = "import torch, swag_core; print('swag', swag_core.__version__, 'torch', torch.__version__)"
# Without importing torch (seconds): whether the packages are there at all.
FIND_ENGINE = ("import importlib.util as u; "
               "print(', '.join(m for m in ('swag_core', 'torch', 'torchvision') if u.find_spec(m) is None))")


def existing_engine(python: str, repo: Path) -> Path:
    """--python: an environment that already has the engine; nothing is created or installed.
    (--check imports it for real; here a quick look is enough.)"""
    path = Path(os.path.abspath(os.path.expanduser(python)))  # not resolve(): a venv's python is a symlink
    if not path.is_file():
        raise InstallError(f"--python {python}: no such file; give the python of an environment that has "
                           f"the engine (for example VENV/bin/python), or leave --python out")
    ok, out = probe(path, FIND_ENGINE)
    if not ok or out:
        reason = f"it has no {out}" if ok else out
        raise InstallError(f"--python {path} cannot import the engine ({reason}); install it "
                           f"there with `{path} -m pip install {repo}`, or leave --python out to let the "
                           f"installer create an environment")
    print(f"  using {path} (it has swag_core, torch and torchvision)")
    return path


def prepare_venv(venv: Path, system: str, repo: Path, source: TorchSource, replace_torch: bool,
                 ops: FileOps) -> Path:
    """Create the venv when absent, install torch and this project into it; a re-run upgrades
    the project in place and keeps a working torch unless a new torch source was asked for."""
    python = venv_python(venv, system)
    if sys.version_info[:2] < MIN_PYTHON:
        raise InstallError(f"the engine needs Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer and this is "
                           f"{sys.version.split()[0]}; run the installer with a newer python3, or give --python")
    if venv.exists() and not (venv / "pyvenv.cfg").is_file():
        raise InstallError(f"{venv} exists and is not a Python venv; remove it or choose another folder with --venv")
    if not python.is_file():
        print(f"  creating the engine's environment in {venv}", flush=True)
        run([sys.executable, "-m", "venv", venv], "creating the venv", ops.dry_run,
            "on Debian and Ubuntu install the venv module with `sudo apt install python3-venv`, "
            "then run the installer again")
        ops.put(venv / MARKER, b"Created by SWAG Style Transfer's installer; "
                               b"`install.py --uninstall --purge` removes this environment.\n", 0o644)
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check"]
    has_torch = python.is_file() and probe(python, "import torch")[0]
    if has_torch and not replace_torch:
        print("  torch is already installed there; keeping it (give --torch-index-url to replace it)")
    else:
        size = "" if "--no-index" in source.pip_args else "; a large download (about 200 MB for CPU, 2-3 GB with CUDA)"
        print(f"  torch from {source.why}{size}", flush=True)
        reinstall = ["--force-reinstall"] if has_torch else []  # a +cpu build would otherwise "satisfy" a CUDA one
        run(pip + reinstall + source.pip_args + ["torch", "torchvision"], "installing torch", ops.dry_run,
            "check the internet connection, or give --torch-index-url URL (see pytorch.org) or --wheelhouse DIR")
    offline = source.pip_args if "--no-index" in source.pip_args else []
    run(pip + offline + ["--upgrade", repo], "installing the engine", ops.dry_run,
        "check the internet connection (pip needs setuptools, pillow and numpy), or use --wheelhouse DIR")
    return python


def download_weights(python: Path, names: list, dry_run: bool) -> None:
    print(f"  fetching ImageNet weights of {', '.join(names)} into the torch cache", flush=True)
    run([python, "-m", "swag_core", "download-weights", *names], "downloading weights", dry_run,
        "check the internet connection and run the installer again with --download-weights; "
        "the engine works without them (random weights)")
