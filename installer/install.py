#!/usr/bin/env python3
"""Install, check or remove SWAG Style Transfer for GIMP: one command each (docs/install.md).

    python3 installer/install.py              # engine + plug-in for every GIMP 3.x / 2.10 found
    python3 installer/install.py --check      # each part PASS/FAIL, with a fix for each FAIL
    python3 installer/install.py --uninstall  # plug-in files and config (--purge: the engine too)
    python3 installer/install.py --autostart  # Linux: the engine starts at login (for Flatpak/Snap GIMP)

Standard library only; Linux, macOS and Windows."""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path
from urllib.parse import urlsplit

if __package__ in (None, ""):  # run as a script: make the `installer` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from installer import autostart, check, engine_env, engine_token, plugin_files  # noqa: E402
from installer.fileops import FileOps, InstallError  # noqa: E402
from installer.locations import (LINUX, WINDOWS, GimpFolder, engine_token_file, find_gimp_folders,  # noqa: E402
                                 gimp_config_roots, this_system, user_folders)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_ENGINE_URL = "http://127.0.0.1:8765"
DEVICES = ("auto", "cpu", "cuda", "mps", "gpu")  # what `swag serve --device` accepts
INSTALL_ONLY = ("python", "venv", "torch_index_url", "wheelhouse", "engine_url", "device", "download_weights",
                "autostart")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="install.py", description="Install SWAG Style Transfer for GIMP: the engine in its own "
                "Python environment and the plug-in in every GIMP 3.x and 2.10 found. Re-running upgrades in place.")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="check every part, PASS/FAIL with a fix for each FAIL")
    mode.add_argument("--uninstall", action="store_true", help="remove the plug-in files and config")
    p.add_argument("--purge", action="store_true", help="with --uninstall: also remove the engine's environment")
    p.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")

    where = p.add_argument_group("where the plug-in goes")
    where.add_argument("--gimp", choices=("3", "2.10"), help="only this GIMP series (default: every one found)")
    where.add_argument("--plugin-dir", metavar="DIR", help="this plug-ins folder only, instead of those found "
                       "(GIMP 3 layout unless --gimp 2.10)")

    engine = p.add_argument_group("the engine")
    engine.add_argument("--venv", metavar="DIR", help="the engine's environment (default: in your data folder)")
    engine.add_argument("--python", metavar="PATH", help="use the Python of an existing environment that has the "
                        "engine; creates and installs nothing")
    engine.add_argument("--torch-index-url", metavar="URL", help="where pip gets torch (default: chosen for this "
                        "machine: CUDA with an NVIDIA GPU, MPS on Apple silicon, else CPU)")
    engine.add_argument("--wheelhouse", metavar="DIR", help="install offline from the wheels in DIR "
                        "(pip --no-index --find-links DIR)")
    engine.add_argument("--engine-url", default=DEFAULT_ENGINE_URL, metavar="URL",
                        help=f"where the plug-in finds the engine (default {DEFAULT_ENGINE_URL})")
    engine.add_argument("--device", choices=DEVICES, default="auto", help="the engine's device (default auto)")
    engine.add_argument("--autostart", action="store_true", help="Linux: run the engine as a systemd user service "
                        "that starts at login and keeps running; a Flatpak or Snap GIMP cannot start it itself")
    engine.add_argument("--download-weights", nargs="*", metavar="ARCH",
                        help=f"fetch torchvision's ImageNet weights (default {' '.join(engine_env.DEFAULT_WEIGHTS)}) "
                             f"into the torch cache; needs the internet")
    return p


def _validate(p: argparse.ArgumentParser, args) -> None:
    given = [name for name in INSTALL_ONLY if getattr(args, name) not in (None, p.get_default(name))]
    if args.check and given:
        p.error(f"--{given[0].replace('_', '-')} applies to installing; --check uses what the installed config names")
    not_for_uninstall = [name for name in given if name != "venv"]
    if args.uninstall and not_for_uninstall:
        p.error(f"--{not_for_uninstall[0].replace('_', '-')} does not apply to --uninstall")
    if args.purge and not args.uninstall:
        p.error("--purge goes with --uninstall")
    if args.python and (args.venv or args.torch_index_url or args.wheelhouse):
        p.error("--python uses an existing environment; --venv, --torch-index-url and --wheelhouse do not apply")
    if args.wheelhouse and args.torch_index_url:
        p.error("--wheelhouse installs offline; leave out --torch-index-url")
    url = urlsplit(args.engine_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        p.error(f"--engine-url {args.engine_url} is not an http:// address like {DEFAULT_ENGINE_URL}")
    if args.autostart and url.hostname not in LOOPBACK:
        p.error(f"--autostart runs the engine on this computer, and --engine-url {args.engine_url} names another")


def _targets(args, system: str) -> list[GimpFolder]:
    if args.plugin_dir:
        return [GimpFolder(args.gimp or "3", "", "--plugin-dir", Path(args.plugin_dir).expanduser().absolute())]
    return find_gimp_folders(system, os.environ, Path.home(), args.gimp)


def _rerun(args, system: str) -> str:
    """The command that installs again into the same place (for the fixes --check suggests)."""
    command = f"{'py -3' if system == WINDOWS else 'python3'} {Path(__file__).resolve()}"
    if args.plugin_dir:
        command += f" --plugin-dir {args.plugin_dir}"
    if args.gimp:
        command += f" --gimp {args.gimp}"
    return command


def _absolute(path: str | None) -> Path | None:
    return Path(path).expanduser().absolute() if path else None


def install(args, system: str) -> int:
    if args.autostart and system != LINUX:
        raise InstallError("--autostart sets up a systemd user service, on Linux; elsewhere have the engine start at "
                           "login as docs/install.md ('An engine that keeps running') says")
    ops = FileOps(args.dry_run)
    folders = user_folders(system, os.environ, Path.home())
    print("[1/4] GIMP plug-in folders", flush=True)
    targets = _targets(args, system)
    if not targets:
        looked = ", ".join(str(root) for _, root in gimp_config_roots(system, os.environ, Path.home()))
        wanted = f"GIMP {args.gimp}" if args.gimp else "GIMP 3.x or 2.10"
        raise InstallError(f"no {wanted} user folder found (looked in {looked}); start GIMP once so that it "
                           f"creates its folder and run the installer again, or give --plugin-dir DIR")
    for target in targets:
        print(f"  {target.label}: {target.plugins}")
    plugin_files.sources(REPO)  # incomplete sources: stop before installing anything

    print("[2/4] the engine's Python environment", flush=True)
    if args.python:
        python = engine_env.existing_engine(args.python, REPO)
    else:
        wheelhouse = _absolute(args.wheelhouse)
        if wheelhouse:
            problem = engine_env.wheelhouse_problem(wheelhouse, engine_env.python_tag())
            if problem:
                raise InstallError(f"{problem}; {engine_env.fill_wheelhouse_hint(wheelhouse, REPO)}")
        source = engine_env.torch_source(system, platform.machine().lower(), engine_env.has_nvidia_gpu(),
                                         args.torch_index_url, wheelhouse)
        venv = _absolute(args.venv) or folders.data / "venv"
        python = engine_env.prepare_venv(venv, system, REPO, source, bool(args.torch_index_url), ops)
        if not args.dry_run:
            ok, out = engine_env.probe(python, engine_env.IMPORT_ENGINE)
            if not ok:
                raise InstallError(f"the environment {venv} cannot import the engine ({out}); when the reason "
                                   f"names torch or torchvision, the two builds do not match each other or this "
                                   f"machine: remove {venv} and run the installer again, with --torch-index-url URL "
                                   f"(pytorch.org lists them) or a --wheelhouse filled by one `pip download`")
            print(f"  {python}: {out}")

    print("[3/4] pre-trained weights", flush=True)
    if args.download_weights is None:
        print("  skipped: the engine's default (random weights) needs none; --download-weights fetches "
              "ImageNet weights")
    else:
        engine_env.download_weights(python, args.download_weights or list(engine_env.DEFAULT_WEIGHTS), args.dry_run)

    print("[4/4] plug-in files and config", flush=True)
    ops.mkdir(folders.logs)
    token_file = engine_token_file(system, os.environ, Path.home())
    config = {"engine_python": str(python), "engine_url": args.engine_url.rstrip("/"), "token_file": str(token_file),
              "device": args.device, "log_file": str(folders.logs / "engine.log")}
    sandboxed = [t for t in targets if t.sandboxed]
    token = engine_token.ensure(ops, token_file) if sandboxed else None
    for target in targets:
        print(f"  {target.label}", flush=True)
        if target.sandboxed:  # it cannot read the engine's token file: a copy beside the plug-in
            plugin_files.install(ops, REPO, target, dict(config, token_file=engine_token.COPY), token)
        else:
            plugin_files.install(ops, REPO, target, config, None)
    if args.autostart:
        autostart.enable(ops, python, config["engine_url"], args.device, os.environ, Path.home())

    if args.dry_run:
        print(f"Dry run: {len(ops.changes)} change(s) would be made.")
        return 0
    print("Done: nothing needed changing." if not ops.changes else f"Done: {len(ops.changes)} change(s).")
    if sandboxed and not args.autostart:
        print(f"Note: a Flatpak or Snap GIMP cannot start the engine itself. Start it outside GIMP and keep it "
              f"running: {python} -m swag_core serve --idle-timeout 0"
              + (f"; or have it start at login: {_rerun(args, system)} --autostart" if system == LINUX else ""))
    print(f"Restart GIMP: the filter is Filters > Artistic > SWAG Style Transfer...\n"
          f"Check every part with: {_rerun(args, system)} --check")
    return 0


def uninstall(args, system: str) -> int:
    ops = FileOps(args.dry_run)
    folders = user_folders(system, os.environ, Path.home())
    venvs = [_absolute(args.venv) or folders.data / "venv"]
    for target in _targets(args, system):
        try:
            venvs.append(Path(plugin_files.read_config(target)["engine_python"]).parent.parent)
        except InstallError:
            pass  # no config there: nothing to learn about the engine
        for path in plugin_files.owned_paths(target):
            ops.remove(path)
    autostart.disable(ops, os.environ, Path.home())
    token = engine_token_file(system, os.environ, Path.home())
    ops.remove(token)
    ops.remove_if_empty(token.parent)
    for log in sorted(folders.logs.glob("engine.log*")):
        ops.remove(log)
    ops.remove_if_empty(folders.logs)
    ours = [venv for venv in dict.fromkeys(venvs) if (venv / engine_env.MARKER).is_file()]
    if args.purge:
        for venv in ours:
            ops.remove(venv)
        if args.venv and _absolute(args.venv) not in ours:
            print(f"  kept {args.venv}: the installer did not create it")
        ops.remove_if_empty(folders.data)
    elif ours:
        print(f"  the engine's environment stays in {', '.join(map(str, ours))}; --uninstall --purge removes it")
    print("  pre-trained weights in torch's cache are shared with other programs and were left in place")
    done = "would make" if args.dry_run else "made"
    print(f"Uninstalled: {done} {len(ops.changes)} change(s)." if ops.changes else "Nothing to remove.")
    return 0


def main(argv: list | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _validate(parser, args)
    system = this_system()
    try:
        if args.check:
            return check.run_check(_targets(args, system), REPO, system, engine_env.has_nvidia_gpu(),
                                   _rerun(args, system))
        if args.uninstall:
            return uninstall(args, system)
        return install(args, system)
    except InstallError as exc:
        sys.stdout.flush()  # the progress so far first, then the error
        print(f"install.py: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        sys.stdout.flush()
        print("install.py: interrupted; run it again to finish (a re-run picks up where it stopped)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
