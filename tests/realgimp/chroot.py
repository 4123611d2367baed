#!/usr/bin/env python3
"""Run a real GIMP 3.0.4 headless inside a Debian trixie chroot.

Debian 12 (the CI/dev host) only ships GIMP 2.10 without Python-Fu, but Debian
trixie ships GIMP 3.0.4 with Python plug-in support.  This module builds a
minimal trixie chroot with ``gimp`` installed and runs ``gimp-console-3.0`` in
batch mode inside it, so tests can drive the real plug-in.

Standard library only (Python 3.10+).  Needs Linux, root (chroot and bind
mounts), ``debootstrap`` for the first build and network access to
deb.debian.org for that build (about 1-2 minutes, ~770 MB on disk).

API
---
``available() -> (bool, reason)``
    Cheap check whether the real-GIMP tests can run here (for ``pytest.skip``).
``ensure_chroot(root=None) -> Path``
    Build the chroot, or reuse a complete one.  Default location: env
    ``SWAG_GIMP_CHROOT`` or ``/var/cache/swag-gimp/trixie``.
``run_gimp_batch(root, python_code, io_dir, gimp_config_dir, env=None, timeout=300, gui=False)``
    Bind-mount ``io_dir`` at ``ROOT/io`` and run *python_code* with the
    ``python-fu-eval`` batch interpreter.  Returns ``subprocess.CompletedProcess``
    (text stdout/stderr).  Inside GIMP, host ``io_dir`` is ``/io``.  With *gui*,
    GIMP runs with its windows on an Xvfb display (``xdotool`` is there to act
    as the user).

CLI
---
``python tests/realgimp/chroot.py --ensure [--root PATH]``  builds, prints the path.
``python tests/realgimp/chroot.py --smoke [--root PATH]``   builds, then checks that a
batch run can write a PNG that the host can read back.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, Mapping

DEFAULT_ROOT = "/var/cache/swag-gimp/trixie"
SUITE = "trixie"
MIRROR = "http://deb.debian.org/debian"
GIMP_CONSOLE = "gimp-console-3.0"
GIMP_GUI = "gimp-3.0"
# Installed with GIMP: an X server without a screen, and a way to press keys in it.
GUI_PACKAGES = ("xvfb", "xauth", "xdotool")

# Written into ROOT after a successful build; a folder without it is never used.
READY_MARKER = ".swag-gimp-chroot-ready"
# Mount point (inside the chroot) of the host's io_dir.
IO_MOUNT = "/io"
# Where the GIMP config folder is mounted when it does not live under io_dir.
CFG_MOUNT = "/gimpcfg"

# Clean environment for commands run inside the chroot while building.
_BUILD_ENV = {
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    "DEBIAN_FRONTEND": "noninteractive",
    "LANG": "C.UTF-8",
    "HOME": "/root",
}


class ChrootError(RuntimeError):
    """The chroot cannot be built or used here."""


# --------------------------------------------------------------------------- helpers


def default_root() -> Path:
    return Path(os.environ.get("SWAG_GIMP_CHROOT") or DEFAULT_ROOT)


def _is_ready(root: Path) -> bool:
    return (root / READY_MARKER).is_file() and (root / "usr/bin" / GIMP_CONSOLE).exists()


def _which(prog: str) -> str | None:
    # sbin folders are often missing from PATH for non-login shells.
    extra = os.pathsep.join(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
    return shutil.which(prog, path=os.environ.get("PATH", "") + os.pathsep + extra)


def _has_capability(bit: int) -> bool:
    """True when the effective capability set has *bit* (Linux only)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> bit & 1)
    except OSError:
        pass
    return os.geteuid() == 0  # no /proc: assume root has everything


_CAP_SYS_CHROOT = 18
_CAP_SYS_ADMIN = 21  # needed for mount --bind


def _check_privileges() -> None:
    if not sys.platform.startswith("linux"):
        raise ChrootError(f"the GIMP chroot needs Linux (this is {sys.platform})")
    if os.geteuid() != 0:
        raise ChrootError("the GIMP chroot needs root (chroot and mount --bind); run as root")
    if not _has_capability(_CAP_SYS_CHROOT):
        raise ChrootError("missing CAP_SYS_CHROOT: chroot is not allowed in this container")
    if not _has_capability(_CAP_SYS_ADMIN):
        raise ChrootError("missing CAP_SYS_ADMIN: mount --bind is not allowed in this container")
    for prog in ("chroot", "mount", "umount"):
        if _which(prog) is None:
            raise ChrootError(f"'{prog}' not found on PATH")


def _mounts_under(path: Path) -> list[str]:
    """Mount points at or below *path* (from /proc/self/mounts)."""
    prefix = str(path.resolve())
    found = []
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        if len(fields) < 2:
            continue
        # /proc/mounts escapes spaces etc. as octal (\040).
        mnt = fields[1].encode().decode("unicode_escape")
        if mnt == prefix or mnt.startswith(prefix + "/"):
            found.append(mnt)
    return found


def _safe_rmtree(path: Path) -> None:
    """Delete a (partial) chroot, but never through a live mount.

    rmtree through a bind mount would delete the *host's* files, so refuse.
    """
    if not path.exists() and not path.is_symlink():
        return
    for mnt in sorted(_mounts_under(path), key=len, reverse=True):
        subprocess.run(["umount", "-l", mnt], check=False, capture_output=True)
    left = _mounts_under(path)
    if left:
        raise ChrootError(f"refusing to delete {path}: still mounted: {', '.join(left)}")
    shutil.rmtree(path)


@contextlib.contextmanager
def _flock(lock_path: Path) -> Iterator[None]:
    """Exclusive advisory lock (serialises builds and runs across processes)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write_policy_rc_d(root: Path) -> None:
    policy = root / "usr/sbin/policy-rc.d"
    policy.parent.mkdir(parents=True, exist_ok=True)
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)


def _run_logged(cmd: list[str], what: str, env: Mapping[str, str] | None = None) -> None:
    proc = subprocess.run(cmd, env=dict(env) if env is not None else None,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-40:])
        raise ChrootError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")


# --------------------------------------------------------------------------- public API


def available() -> tuple[bool, str]:
    """Whether the real-GIMP tests can run on this machine.

    Returns ``(True, "")`` or ``(False, reason)``; meant for ``pytest.skip(reason)``.
    Set ``SWAG_REAL_GIMP=0`` to switch the tests off explicitly.  Does not check
    network access (only needed for the first build).
    """
    if os.environ.get("SWAG_REAL_GIMP", "").strip() == "0":
        return False, "real-GIMP tests disabled by SWAG_REAL_GIMP=0"
    try:
        _check_privileges()
    except ChrootError as exc:
        return False, str(exc)
    if _is_ready(default_root()):
        return True, ""
    if _which("debootstrap") is None:
        return False, ("no GIMP chroot at %s and debootstrap is missing "
                       "(apt-get install debootstrap)" % default_root())
    return True, ""


def ensure_chroot(root: str | os.PathLike[str] | None = None) -> Path:
    """Return the path of a complete trixie chroot with GIMP 3, building it if needed.

    The build goes into a temporary sibling folder that is renamed to *root* only
    after everything succeeded (marker file written), so a half-built chroot is
    never reused.  Concurrent callers are serialised with a lock file.
    """
    root = Path(root) if root is not None else default_root()
    root = root.absolute()
    if _is_ready(root):
        return root

    _check_privileges()
    debootstrap = _which("debootstrap")
    if debootstrap is None:
        raise ChrootError("debootstrap not found: apt-get install debootstrap")

    root.parent.mkdir(parents=True, exist_ok=True)
    with _flock(root.parent / f".{root.name}.lock"):
        if _is_ready(root):  # another process finished it while we waited
            return root

        # Leftovers of an interrupted build (ours are named ROOT.building-*).
        for stale in root.parent.glob(f"{root.name}.building-*"):
            _safe_rmtree(stale)
        build = Path(tempfile.mkdtemp(prefix=f"{root.name}.building-", dir=root.parent))
        os.chmod(build, 0o755)
        try:
            # 1. Keep maintainer scripts from starting services.  Written before
            #    debootstrap and again after it (debootstrap deletes policy-rc.d
            #    when it finishes), so it is in place for the gimp install.
            _write_policy_rc_d(build)

            # 2. Base system.
            _run_logged([debootstrap, "--variant=minbase", SUITE, str(build), MIRROR],
                        "debootstrap")
            _write_policy_rc_d(build)

            # 3. GIMP (a second step: --include=gimp fails on virtual packages).
            _run_logged(
                ["chroot", str(build), "env", "-i",
                 *(f"{k}={v}" for k, v in _BUILD_ENV.items()),
                 "sh", "-c",
                 "apt-get update && apt-get install -y --no-install-recommends gimp "
                 + " ".join(GUI_PACKAGES) + " && apt-get clean"],
                "apt-get install gimp (inside the chroot)",
                env=_BUILD_ENV,
            )
            if not (build / "usr/bin" / GIMP_CONSOLE).exists():
                raise ChrootError(f"{GIMP_CONSOLE} missing after installing gimp")

            (build / IO_MOUNT.lstrip("/")).mkdir(exist_ok=True)
            (build / CFG_MOUNT.lstrip("/")).mkdir(exist_ok=True)
            (build / READY_MARKER).write_text(f"built {time.strftime('%Y-%m-%d %H:%M:%S')}\n")

            # 4. Publish atomically.  An incomplete folder at *root* is discarded.
            if root.exists():
                _safe_rmtree(root)
            build.rename(root)
        except BaseException:
            with contextlib.suppress(Exception):
                _safe_rmtree(build)
            raise
    return root


def ensure_gui(root: str | os.PathLike[str]) -> None:
    """Add the GUI packages to a chroot built before they were part of it (needs the network)."""
    root = Path(root).absolute()
    if (root / "usr/bin/Xvfb").exists() and (root / "usr/bin/xdotool").exists():
        return
    _check_privileges()
    with _flock(root.parent / f".{root.name}.lock"):
        _run_logged(["chroot", str(root), "env", "-i", *(f"{k}={v}" for k, v in _BUILD_ENV.items()), "sh", "-c",
                     "apt-get update && apt-get install -y --no-install-recommends " + " ".join(GUI_PACKAGES)
                     + " && apt-get clean"], "apt-get install " + " ".join(GUI_PACKAGES), env=_BUILD_ENV)


def _is_mounted(path: Path) -> bool:
    # Not os.path.ismount: it misses bind mounts from the same filesystem.
    return str(path.resolve()) in _mounts_under(path)


def _umount(path: Path) -> None:
    """Unmount *path* (every stacked mount); retry, then fall back to a lazy unmount."""
    for _ in range(10):
        if not _is_mounted(path):
            return
        if subprocess.run(["umount", str(path)], capture_output=True).returncode == 0:
            return
        time.sleep(0.2)
    while _is_mounted(path):
        if subprocess.run(["umount", "-l", str(path)], capture_output=True).returncode != 0:
            break
    if _is_mounted(path):
        raise ChrootError(f"could not unmount {path}")


@contextlib.contextmanager
def _bind(src: Path, dst: Path) -> Iterator[None]:
    dst.mkdir(parents=True, exist_ok=True)
    _umount(dst)  # stale mount from a killed earlier run
    proc = subprocess.run(["mount", "--bind", str(src), str(dst)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise ChrootError(f"mount --bind {src} {dst} failed: {proc.stderr.strip()}")
    try:
        yield
    finally:
        _umount(dst)


def run_gimp_batch(
    root: str | os.PathLike[str],
    python_code: str,
    io_dir: str | os.PathLike[str],
    gimp_config_dir: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
    gui: bool = False,
) -> subprocess.CompletedProcess:
    """Run *python_code* in ``gimp-console-3.0 --batch-interpreter python-fu-eval``.

    * *io_dir* (host folder) is bind-mounted at ``/io`` in the chroot for the
      duration of the call; use ``/io/...`` paths in *python_code*.
    * *gimp_config_dir* (host folder, created if missing; default
      ``io_dir/gimpcfg``) becomes ``GIMP3_DIRECTORY``.  Plug-ins go in
      ``gimp_config_dir/plug-ins/NAME/NAME.py`` (mode 755).  If it is under
      *io_dir* the path is translated; otherwise it is bind-mounted at ``/gimpcfg``.
    * *env*: extra variables for GIMP and its plug-ins (e.g. ``SWAG_ENGINE_URL``);
      everything else is a clean environment.
    * Calls on the same chroot are serialised with a lock, so sequential or
      parallel calls never share /io.  Mounts are removed also on failure.

    Returns a CompletedProcess (text mode).  ``returncode`` is 0 on success and
    64 when the batch code raised.  Raises ``subprocess.TimeoutExpired`` after
    killing GIMP (and its plug-ins) when *timeout* is exceeded.
    """
    root = Path(root).absolute()
    if not _is_ready(root):
        raise ChrootError(f"{root} is not a complete GIMP chroot (call ensure_chroot first)")
    _check_privileges()
    io_host = Path(io_dir).resolve()
    io_host.mkdir(parents=True, exist_ok=True)
    cfg_host = Path(gimp_config_dir).resolve() if gimp_config_dir else io_host / "gimpcfg"
    cfg_host.mkdir(parents=True, exist_ok=True)

    extra = dict(env or {})
    for key in extra:
        if not key or "=" in key or "\0" in key:
            raise ValueError(f"bad environment variable name: {key!r}")

    with contextlib.ExitStack() as stack:
        stack.enter_context(_flock(root.parent / f".{root.name}.run.lock"))
        stack.enter_context(_bind(io_host, root / IO_MOUNT.lstrip("/")))
        if cfg_host == io_host or io_host in cfg_host.parents:
            rel = cfg_host.relative_to(io_host).as_posix()
            cfg_inside = IO_MOUNT if rel == "." else f"{IO_MOUNT}/{rel}"
        else:
            stack.enter_context(_bind(cfg_host, root / CFG_MOUNT.lstrip("/")))
            cfg_inside = CFG_MOUNT

        run_env = {
            "PATH": "/usr/bin:/bin",
            "HOME": "/nonexistent",
            "GIMP3_DIRECTORY": cfg_inside,
            "LANG": "C.UTF-8",
            **{k: str(v) for k, v in extra.items()},
        }
        if gui:  # GIMP's windows on a display of their own (xvfb-run -a picks a free one)
            gimp = ["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24 -nolisten tcp", GIMP_GUI, "-n"]
        else:
            gimp = [GIMP_CONSOLE, "-i", "-n"]
        cmd = ["chroot", str(root), "env", "-i",
               *(f"{k}={v}" for k, v in run_env.items()),
               *gimp, "--batch-interpreter", "python-fu-eval",
               "-b", python_code, "--quit"]
        # Own process group, so a timeout also kills GIMP's plug-in children
        # (they would otherwise keep /io busy).
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, errors="replace", start_new_session=True,
                                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            out, err = proc.communicate()
            raise subprocess.TimeoutExpired(cmd, timeout, output=out, stderr=err) from None
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            proc.wait()
            raise
        # Plug-ins that outlived gimp-console would keep the mount busy.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


# --------------------------------------------------------------------------- CLI

_SMOKE_CODE = r"""
img = Gimp.Image.new(8, 4, Gimp.ImageBaseType.RGB)
layer = Gimp.Layer.new(img, "bg", 8, 4, Gimp.ImageType.RGB_IMAGE, 100, Gimp.LayerMode.NORMAL)
img.insert_layer(layer, None, 0)
Gimp.context_set_foreground(Gegl.Color.new("red"))
layer.fill(Gimp.FillType.FOREGROUND)
Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, img, Gio.File.new_for_path("/io/smoke.png"), None)
img.delete()
"""


def _smoke(root: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="swag-gimp-smoke-") as tmp:
        t0 = time.monotonic()
        res = run_gimp_batch(root, _SMOKE_CODE, tmp, Path(tmp) / "gimpcfg", timeout=120)
        png = Path(tmp) / "smoke.png"
        if res.returncode != 0 or not png.exists():
            sys.stderr.write(res.stdout + res.stderr)
            raise ChrootError(f"smoke batch failed (exit {res.returncode})")
        data = png.read_bytes()
        if not data.startswith(b"\x89PNG\r\n\x1a\n"):
            raise ChrootError("smoke.png is not a PNG")
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        if (width, height) != (8, 4):
            raise ChrootError(f"smoke.png has size {width}x{height}, expected 8x4")
        print(f"smoke ok: 8x4 PNG written by GIMP in {time.monotonic() - t0:.1f} s",
              file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ensure", action="store_true", help="build/reuse the chroot, print its path")
    ap.add_argument("--smoke", action="store_true", help="--ensure, then a trivial batch run")
    ap.add_argument("--check", action="store_true", help="print available() and exit 0/1")
    ap.add_argument("--root", help=f"chroot folder (default: $SWAG_GIMP_CHROOT or {DEFAULT_ROOT})")
    args = ap.parse_args(argv)
    if not (args.ensure or args.smoke or args.check):
        ap.error("nothing to do: give --ensure, --smoke or --check")
    if args.check:
        ok, reason = available()
        print("available" if ok else f"not available: {reason}")
        return 0 if ok else 1
    try:
        t0 = time.monotonic()
        root = ensure_chroot(args.root)
        print(f"chroot ready in {time.monotonic() - t0:.1f} s", file=sys.stderr)
        if args.smoke:
            _smoke(root)
    except ChrootError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
