"""The installer (installer/install.py) in a temporary HOME: which GIMP folders it finds, the
files, folder names and modes it writes, the config, re-runs, --uninstall and --check.

Installs use --python with the test environment's own Python (it has the engine), so no venv
with torch is ever built here."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from installer import engine_env, install, locations  # noqa: E402

ENGINE_PYTHON = sys.executable  # the Python running the tests has the engine installed
POSIX_ONLY = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
SOURCES = ROOT / "gimp_plugin"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty home folder with the usual XDG folders; every variable the installer reads points into it."""
    home = tmp_path / "home"
    for sub in (".config", ".local/share", ".local/state"):
        (home / sub).mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local/share"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local/state"))
    monkeypatch.setenv("APPDATA", str(home / "AppData" / "Roaming"))
    monkeypatch.setenv("LOCALAPPDATA", str(home / "AppData" / "Local"))
    for name in ("GIMP3_DIRECTORY", "GIMP2_DIRECTORY", "SWAG_ENGINE_URL", "SWAG_ENGINE_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return home


def gimp_folder(home: Path, version: str, where: str = "native", plugins: bool = True) -> Path:
    """A GIMP config folder as GIMP creates it on its first start; returns its plug-ins folder."""
    roots = {"native": home / ".config/GIMP", "Flatpak": home / ".var/app/org.gimp.GIMP/config/GIMP",
             "Snap": home / "snap/gimp/current/.config/GIMP"}
    folder = roots[where] / version
    folder.mkdir(parents=True)
    if plugins:
        (folder / "plug-ins").mkdir()
    return folder / "plug-ins"


def snapshot(root: Path) -> dict:
    """Every path under root with its mode, modification time and content."""
    state = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        content = path.read_bytes() if path.is_file() else None
        state[str(path.relative_to(root))] = (stat.S_IMODE(st.st_mode), st.st_mtime_ns if content is not None else 0,
                                              content)
    return state


def run_installer(capsys, *argv) -> tuple:
    code = install.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


# Folder detection ---------------------------------------------------------------------------

def test_finds_gimp_3_0_3_2_2_10_flatpak_and_snap_folders(home):
    gimp_folder(home, "3.0")
    gimp_folder(home, "3.2", plugins=False)  # not started since the plug-ins folder went away
    gimp_folder(home, "2.10")
    gimp_folder(home, "3.0", "Flatpak")
    gimp_folder(home, "2.10", "Snap")
    for other in ("2.8", "2.99", "3.x", "4.0"):  # neither GIMP 3.x nor 2.10
        (home / ".config/GIMP" / other).mkdir()
    (home / ".config/GIMP/3.4").write_text("a file, not a GIMP folder")

    found = locations.find_gimp_folders(locations.LINUX, os.environ, home)
    assert [(f.series, f.version, f.where, f.plugins) for f in found] == [
        ("3", "3.0", "native", home / ".config/GIMP/3.0/plug-ins"),
        ("3", "3.2", "native", home / ".config/GIMP/3.2/plug-ins"),
        ("2.10", "2.10", "native", home / ".config/GIMP/2.10/plug-ins"),
        ("3", "3.0", "Flatpak", home / ".var/app/org.gimp.GIMP/config/GIMP/3.0/plug-ins"),
        ("2.10", "2.10", "Snap", home / "snap/gimp/current/.config/GIMP/2.10/plug-ins"),
    ]
    only_210 = locations.find_gimp_folders(locations.LINUX, os.environ, home, "2.10")
    assert [f.where for f in only_210] == ["native", "Snap"]


def test_minor_versions_sort_numerically(home):
    for version in ("3.10", "3.2", "3.0"):
        gimp_folder(home, version)
    found = locations.find_gimp_folders(locations.LINUX, os.environ, home)
    assert [f.version for f in found] == ["3.0", "3.2", "3.10"]


def test_gimp3_directory_replaces_the_native_gimp3_folders(home, tmp_path, monkeypatch):
    gimp_folder(home, "3.0")
    gimp_folder(home, "2.10")
    gimp_folder(home, "3.0", "Flatpak")  # a sandboxed GIMP does not see the variable
    monkeypatch.setenv("GIMP3_DIRECTORY", str(tmp_path / "gimpcfg"))
    found = locations.find_gimp_folders(locations.LINUX, os.environ, home)
    assert [(f.label, f.plugins) for f in found] == [
        ("GIMP 2.10 (native)", home / ".config/GIMP/2.10/plug-ins"),
        ("GIMP 3.0 (Flatpak)", home / ".var/app/org.gimp.GIMP/config/GIMP/3.0/plug-ins"),
        ("GIMP 3 (GIMP3_DIRECTORY)", tmp_path / "gimpcfg/plug-ins"),
    ]


def test_macos_and_windows_folders(tmp_path):
    home = tmp_path / "h"
    (home / "Library/Application Support/GIMP/3.0").mkdir(parents=True)
    found = locations.find_gimp_folders(locations.MACOS, {}, home)
    assert [f.plugins for f in found] == [home / "Library/Application Support/GIMP/3.0/plug-ins"]
    assert locations.user_folders(locations.MACOS, {}, home) == (
        home / "Library/Application Support/swag-style-transfer", home / "Library/Logs/swag-style-transfer")

    appdata = tmp_path / "Roaming"
    (appdata / "GIMP/3.2").mkdir(parents=True)
    (appdata / "GIMP/2.10").mkdir(parents=True)
    env = {"APPDATA": str(appdata), "LOCALAPPDATA": str(tmp_path / "Local")}
    found = locations.find_gimp_folders(locations.WINDOWS, env, home)
    assert [f.plugins for f in found] == [appdata / "GIMP/3.2/plug-ins", appdata / "GIMP/2.10/plug-ins"]
    assert locations.user_folders(locations.WINDOWS, env, home).data == tmp_path / "Local/swag-style-transfer"
    assert locations.engine_token_file(locations.WINDOWS, env, home) == appdata / "swag/engine-token"


def test_linux_folders_without_xdg_variables(tmp_path):
    home = tmp_path / "h"
    assert locations.user_folders(locations.LINUX, {}, home) == (
        home / ".local/share/swag-style-transfer", home / ".local/state/swag-style-transfer")
    assert locations.engine_token_file(locations.LINUX, {}, home) == home / ".config/swag/engine-token"


def test_token_file_is_the_one_swag_serve_uses_by_default(home):
    service = pytest.importorskip("swag_core.service.server")
    assert locations.engine_token_file(locations.this_system(), os.environ, Path.home()) == \
        service.default_token_file()


# Installing ---------------------------------------------------------------------------------

@POSIX_ONLY
def test_install_writes_the_layout_modes_and_config_gimp_requires(home, capsys):
    p30 = gimp_folder(home, "3.0")
    p32 = home / ".config/GIMP/3.2/plug-ins"
    gimp_folder(home, "3.2", plugins=False)
    p210 = gimp_folder(home, "2.10")
    flatpak = gimp_folder(home, "3.0", "Flatpak")

    code, out, err = run_installer(capsys, "--python", ENGINE_PYTHON)
    assert code == 0, err
    # The sandbox note: how to run an engine that a Flatpak GIMP cannot start itself.
    assert f"Start it outside GIMP and keep it running: {ENGINE_PYTHON} -m swag_core serve --idle-timeout 0" in out
    assert "--autostart" in out

    modules = sorted(p.name for p in (SOURCES / "swag_style_transfer").glob("*.py")
                     if p.name != "swag_style_transfer.py")
    assert "swag_client.py" in modules
    for plugins in (p30, p32, flatpak):
        folder = plugins / "swag_style_transfer"
        assert sorted(p.name for p in plugins.iterdir()) == ["swag_style_transfer"]
        token_copy = ["engine-token"] if plugins == flatpak else []
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            ["swag_style_transfer.py", "swag_engine.json", *modules, *token_copy])
        assert stat.S_IMODE(folder.stat().st_mode) & 0o755 == 0o755
        assert stat.S_IMODE((folder / "swag_style_transfer.py").stat().st_mode) == 0o755
        for name in ["swag_style_transfer.py", *modules]:
            assert (folder / name).read_bytes() == (SOURCES / "swag_style_transfer" / name).read_bytes()
        for name in modules:
            assert stat.S_IMODE((folder / name).stat().st_mode) == 0o644

    assert sorted(p.name for p in p210.iterdir()) == ["swag_style_transfer_210.py", "swag_style_transfer_210_lib"]
    assert stat.S_IMODE((p210 / "swag_style_transfer_210.py").stat().st_mode) == 0o755
    assert (p210 / "swag_style_transfer_210.py").read_bytes() == (SOURCES / "swag_style_transfer_210.py").read_bytes()
    lib = p210 / "swag_style_transfer_210_lib"
    assert sorted(p.name for p in lib.iterdir()) == sorted(["swag_engine.json", *modules])

    expected = {
        "engine_python": ENGINE_PYTHON,
        "engine_url": "http://127.0.0.1:8765",
        "token_file": str(home / ".config/swag/engine-token"),
        "device": "auto",
        "log_file": str(home / ".local/state/swag-style-transfer/engine.log"),
    }
    for config in (p30 / "swag_style_transfer/swag_engine.json", lib / "swag_engine.json"):
        assert json.loads(config.read_text()) == expected
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
    # The Flatpak GIMP cannot read ~/.config/swag/engine-token: its config names a copy beside it.
    sandboxed = flatpak / "swag_style_transfer"
    assert json.loads((sandboxed / "swag_engine.json").read_text()) == dict(expected, token_file="engine-token")
    engine_token = (home / ".config/swag/engine-token").read_text()
    assert (sandboxed / "engine-token").read_text() == engine_token and len(engine_token.strip()) >= 32
    for path in (sandboxed / "engine-token", home / ".config/swag/engine-token"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (home / ".local/state/swag-style-transfer").is_dir()  # where the client writes the engine's log


@POSIX_ONLY
def test_plugin_dir_with_gimp_210_layout_and_options(home, tmp_path, capsys):
    target = tmp_path / "somewhere" / "plug-ins"
    code, out, err = run_installer(capsys, "--python", ENGINE_PYTHON, "--plugin-dir", str(target), "--gimp", "2.10",
                                   "--engine-url", "http://127.0.0.1:9000/", "--device", "cpu")
    assert code == 0, err
    assert sorted(p.name for p in target.iterdir()) == ["swag_style_transfer_210.py", "swag_style_transfer_210_lib"]
    config = json.loads((target / "swag_style_transfer_210_lib/swag_engine.json").read_text())
    assert config["engine_url"] == "http://127.0.0.1:9000"
    assert config["device"] == "cpu"
    assert not (home / ".config/GIMP").exists()  # only the given folder


@POSIX_ONLY
def test_second_run_changes_nothing(home, capsys):
    gimp_folder(home, "3.0")
    gimp_folder(home, "2.10")
    assert run_installer(capsys, "--python", ENGINE_PYTHON)[0] == 0
    before = snapshot(home)
    code, out, _ = run_installer(capsys, "--python", ENGINE_PYTHON)
    assert code == 0
    assert "nothing needed changing" in out
    assert snapshot(home) == before


@POSIX_ONLY
def test_rerun_repairs_modes_replaces_changed_files_and_drops_stale_modules(home, capsys):
    plugins = gimp_folder(home, "3.0")
    assert run_installer(capsys, "--python", ENGINE_PYTHON)[0] == 0
    folder = plugins / "swag_style_transfer"
    (folder / "swag_style_transfer.py").chmod(0o644)
    (folder / "swag_client.py").write_text("# an older client\n")
    (folder / "swag_engine.json").chmod(0o644)
    (folder / "old_module.py").write_text("# shipped by an older version\n")

    code, out, _ = run_installer(capsys, "--python", ENGINE_PYTHON)
    assert code == 0
    assert stat.S_IMODE((folder / "swag_style_transfer.py").stat().st_mode) == 0o755
    assert (folder / "swag_client.py").read_bytes() == (SOURCES / "swag_style_transfer/swag_client.py").read_bytes()
    assert stat.S_IMODE((folder / "swag_engine.json").stat().st_mode) == 0o600
    assert not (folder / "old_module.py").exists()
    assert "4 change(s)" in out


def test_dry_run_changes_nothing(home, capsys):
    gimp_folder(home, "3.0")
    before = snapshot(home)
    code, out, _ = run_installer(capsys, "--python", ENGINE_PYTHON, "--dry-run")
    assert code == 0
    assert "would write" in out and "swag_style_transfer.py" in out
    assert snapshot(home) == before


def test_no_gimp_folder_says_what_to_do(home, capsys):
    code, _, err = run_installer(capsys, "--python", ENGINE_PYTHON)
    assert code == 1
    assert "no GIMP 3.x or 2.10 user folder found" in err
    assert "start GIMP once" in err and "--plugin-dir" in err
    assert str(home / ".config/GIMP") in err  # where it looked


def test_python_without_the_engine_is_refused_clearly(home, tmp_path, capsys):
    gimp_folder(home, "3.0")
    code, _, err = run_installer(capsys, "--python", str(tmp_path / "no" / "python"))
    assert code == 1 and "no such file" in err
    base = getattr(sys, "_base_executable", None)
    if base and base != sys.executable and subprocess.run([base, "-c", "import swag_core"],
                                                          capture_output=True).returncode != 0:
        code, _, err = run_installer(capsys, "--python", base)
        assert code == 1
        assert "cannot import the engine" in err and "pip install" in err
    assert not (home / ".config/GIMP/3.0/plug-ins/swag_style_transfer").exists()


def test_empty_wheelhouse_stops_before_creating_anything(home, tmp_path, capsys):
    gimp_folder(home, "3.0")
    wheelhouse = tmp_path / "wheels"
    wheelhouse.mkdir()
    venv = tmp_path / "venv"
    code, _, err = run_installer(capsys, "--wheelhouse", str(wheelhouse), "--venv", str(venv))
    assert code == 1
    assert f"the wheelhouse {wheelhouse} has no torch wheel" in err
    assert "pip download" in err  # how to fill it
    assert not venv.exists()
    assert not (home / ".config/GIMP/3.0/plug-ins/swag_style_transfer").exists()


def test_wheelhouse_for_another_python_is_named(tmp_path):
    (tmp_path / "torch-2.5.1-cp39-cp39-linux_x86_64.whl").write_bytes(b"")
    (tmp_path / "torchvision-0.20.1-cp39-cp39-linux_x86_64.whl").write_bytes(b"")
    problem = engine_env.wheelhouse_problem(tmp_path, "cp311")
    assert "no torch wheel for this Python (cp311)" in problem and "cp39" in problem
    assert engine_env.wheelhouse_problem(tmp_path, "cp39") is None


def test_torch_build_fits_the_machine(tmp_path):
    source = engine_env.torch_source
    assert source("linux", "x86_64", nvidia=False).pip_args == ["--index-url", engine_env.PYTORCH_CPU_INDEX]
    assert source("linux", "x86_64", nvidia=True).pip_args == []  # PyPI's Linux torch has CUDA
    assert source("macos", "arm64", nvidia=False).pip_args == []  # PyPI's macOS torch has MPS
    assert "MPS" in source("macos", "arm64", nvidia=False).why
    assert source("windows", "amd64", nvidia=True).pip_args == ["--index-url", engine_env.PYTORCH_CUDA_INDEX_WINDOWS]
    assert source("linux", "x86_64", nvidia=True, index_url="https://example.org/simple").pip_args == [
        "--index-url", "https://example.org/simple"]
    assert source("linux", "x86_64", nvidia=False, wheelhouse=tmp_path).pip_args == [
        "--no-index", "--find-links", str(tmp_path)]


@pytest.mark.parametrize("argv, message", [
    (["--check", "--python", "x"], "--python applies to installing"),
    (["--purge"], "--purge goes with --uninstall"),
    (["--python", "x", "--venv", "y"], "--python uses an existing environment"),
    (["--engine-url", "localhost:8765"], "is not an http:// address"),
])
def test_conflicting_options_are_one_line_errors(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        install.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


# Uninstalling -------------------------------------------------------------------------------

@POSIX_ONLY
def test_uninstall_leaves_nothing_behind(home, capsys):
    gimp_folder(home, "3.0")
    gimp_folder(home, "3.2")
    gimp_folder(home, "2.10")
    gimp_folder(home, "3.0", "Flatpak")
    before = snapshot(home)
    assert run_installer(capsys, "--python", ENGINE_PYTHON)[0] == 0
    # What using the filter adds: the engine's token, its log, and GIMP's own byte-code cache.
    config = json.loads((home / ".config/GIMP/3.0/plug-ins/swag_style_transfer/swag_engine.json").read_text())
    assert Path(config["token_file"]).is_file()  # made for the Flatpak GIMP's copy
    Path(config["log_file"]).write_text("ready on http://127.0.0.1:8765\n")
    cache = home / ".config/GIMP/2.10/plug-ins/swag_style_transfer_210_lib/swag_client.pyc"
    cache.write_bytes(b"\0")

    code, out, _ = run_installer(capsys, "--uninstall")
    assert code == 0
    assert snapshot(home) == before
    code, out, _ = run_installer(capsys, "--uninstall")
    assert code == 0 and "Nothing to remove" in out


def test_purge_removes_only_an_environment_the_installer_created(home, tmp_path, capsys):
    ours = home / ".local/share/swag-style-transfer/venv"
    ours.mkdir(parents=True)
    (ours / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (ours / engine_env.MARKER).write_text("created by the installer\n")
    theirs = tmp_path / "their-venv"
    theirs.mkdir()
    (theirs / "pyvenv.cfg").write_text("home = /usr/bin\n")

    code, out, _ = run_installer(capsys, "--uninstall", "--purge", "--venv", str(theirs))
    assert code == 0
    assert (theirs / "pyvenv.cfg").is_file()
    assert "kept" in out and "did not create" in out
    assert (ours / "pyvenv.cfg").is_file()  # --venv named another one

    code, out, _ = run_installer(capsys, "--uninstall")
    assert ours.is_dir() and "--purge removes it" in out
    code, out, _ = run_installer(capsys, "--uninstall", "--purge")
    assert not (home / ".local/share/swag-style-transfer").exists()


# Checking -----------------------------------------------------------------------------------

SERVICE_AND_CLIENT = (ROOT / "swag_core/service/server.py").is_file() and \
    (SOURCES / "swag_style_transfer/swag_client.py").is_file()


@POSIX_ONLY
@pytest.mark.slow
@pytest.mark.skipif(not SERVICE_AND_CLIENT, reason="needs swag_core/service/server.py and the plug-in's swag_client.py")
def test_check_passes_on_a_working_install(home, capsys):
    gimp_folder(home, "3.0")
    gimp_folder(home, "2.10")
    assert run_installer(capsys, "--python", ENGINE_PYTHON, "--device", "cpu")[0] == 0
    code, out, err = run_installer(capsys, "--check")
    assert code == 0, out + err
    passed = [line.split(":")[0] for line in out.splitlines() if line.startswith("PASS")]
    assert passed == ["PASS  GIMP plug-in folders",
                      "PASS  plug-in for GIMP 3.0 (native)", "PASS  config for GIMP 3.0 (native)",
                      "PASS  plug-in for GIMP 2.10 (native)", "PASS  config for GIMP 2.10 (native)",
                      "PASS  engine Python", "PASS  device", "PASS  engine starts",
                      "PASS  stylisation through the service"]
    assert "FAIL" not in out and "SKIP" not in out


@POSIX_ONLY
@pytest.mark.slow
def test_check_fails_with_a_fix_when_the_plugin_is_not_executable(home, capsys):
    plugins = gimp_folder(home, "3.0")
    assert run_installer(capsys, "--python", ENGINE_PYTHON)[0] == 0
    entry = plugins / "swag_style_transfer/swag_style_transfer.py"
    entry.chmod(0o644)
    code, out, _ = run_installer(capsys, "--check")
    assert code == 1
    assert f"FAIL  plug-in for GIMP 3.0 (native): {entry} is not executable" in out
    assert f"fix: `chmod 755 {entry}`" in out


def test_check_without_any_gimp_folder_fails_and_skips_the_engine(home, capsys):
    code, out, _ = run_installer(capsys, "--check")
    assert code == 1
    assert "FAIL  GIMP plug-in folders: no GIMP 3.x or 2.10 user folder found" in out
    assert "fix: start GIMP once" in out
    assert "SKIP  engine starts" in out


def test_check_reports_a_config_that_names_a_missing_python(home, capsys):
    plugins = gimp_folder(home, "3.0")
    assert run_installer(capsys, "--python", ENGINE_PYTHON)[0] == 0
    config = plugins / "swag_style_transfer/swag_engine.json"
    data = json.loads(config.read_text())
    data["engine_python"] = "/home/someone-else/venv/bin/python"
    config.write_text(json.dumps(data))
    config.chmod(0o600)
    code, out, _ = run_installer(capsys, "--check")
    assert code == 1
    assert "its engine Python /home/someone-else/venv/bin/python does not exist" in out


# A GIMP in a sandbox (Flatpak, Snap) --------------------------------------------------------

@POSIX_ONLY
def test_sandboxed_gimps_get_a_copy_of_the_engines_existing_token(home, capsys):
    token_file = home / ".config/swag/engine-token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text("the-engine-already-made-this\n")
    token_file.chmod(0o600)
    flatpak = gimp_folder(home, "3.0", "Flatpak")
    snap = gimp_folder(home, "2.10", "Snap")
    assert run_installer(capsys, "--python", ENGINE_PYTHON)[0] == 0
    assert token_file.read_text() == "the-engine-already-made-this\n"  # kept: running engines use it
    for folder in (flatpak / "swag_style_transfer", snap / "swag_style_transfer_210_lib"):
        assert (folder / "engine-token").read_text() == "the-engine-already-made-this\n"
        assert json.loads((folder / "swag_engine.json").read_text())["token_file"] == "engine-token"


def _check_parts(capsys, target, *argv_install):
    """Install, then run only --check's per-GIMP parts (not the engine start and stylisation)."""
    from installer import check

    assert run_installer(capsys, "--python", ENGINE_PYTHON, *argv_install)[0] == 0
    report = check.Report("install.py")
    config = check._check_config(report, target, locations.LINUX)
    if config and target.sandboxed:
        check._check_sandbox_engine(report, target, config, locations.LINUX)
    return report.failures, capsys.readouterr().out


@POSIX_ONLY
def test_check_finds_a_sandboxed_gimp_that_cannot_read_the_token(home, capsys):
    plugins = gimp_folder(home, "3.0", "Flatpak")
    target = locations.GimpFolder("3", "3.0", "Flatpak", plugins)
    config_path = plugins / "swag_style_transfer/swag_engine.json"
    assert run_installer(capsys, "--python", ENGINE_PYTHON)[0] == 0
    # An install from before the copy: the config names the engine's own file.
    config = json.loads(config_path.read_text())
    config["token_file"] = str(home / ".config/swag/engine-token")
    config_path.write_text(json.dumps(config))
    from installer import check

    report = check.Report("install.py")
    assert check._check_config(report, target, locations.LINUX) is None
    out = capsys.readouterr().out
    assert (f"FAIL  config for GIMP 3.0 (Flatpak): its config names the token file {home}/.config/swag/engine-token, "
            f"which GIMP in a sandbox cannot read") in out
    assert "fix: run `install.py`, which puts a copy of the engine's token beside the plug-in" in out
    # The engine made a new token since: the copy is stale.
    assert run_installer(capsys, "--python", ENGINE_PYTHON)[0] == 0
    (home / ".config/swag/engine-token").write_text("a-new-token\n")
    report = check.Report("install.py")
    assert check._check_config(report, target, locations.LINUX) is None
    assert "differs from the engine's token" in capsys.readouterr().out


@POSIX_ONLY
def test_check_says_a_sandboxed_gimp_needs_an_engine_that_runs_on_its_own(home, capsys):
    import hashlib
    import hmac
    import http.server
    import threading
    from urllib.parse import parse_qs, urlsplit

    plugins = gimp_folder(home, "3.0", "Flatpak")
    target = locations.GimpFolder("3", "3.0", "Flatpak", plugins)
    token_file = plugins / "swag_style_transfer/engine-token"

    class Health(http.server.BaseHTTPRequestHandler):
        proves = True  # whether it knows the token, as the user's own engine does

        def do_GET(self):
            challenge = parse_qs(urlsplit(self.path).query)["challenge"][0]
            key = token_file.read_text().strip().encode() if self.proves else b"another user's token"
            proof = hmac.new(key, f"swag-engine-proof:{challenge}".encode(), hashlib.sha256).hexdigest()
            self.send_response(200)
            self.end_headers()
            self.wfile.write(json.dumps({"status": "ok", "proof": proof}).encode())

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    port = server.server_address[1]
    url = f"http://127.0.0.1:{port}"
    server.server_close()  # nothing listens there yet
    failures, out = _check_parts(capsys, target, "--engine-url", url)
    assert failures == 1
    assert f"FAIL  engine for GIMP 3.0 (Flatpak): a Flatpak GIMP cannot start the engine itself, and none answers " \
           f"at {url}" in out
    assert f"fix: start it outside GIMP and keep it running: `{ENGINE_PYTHON} -m swag_core serve --idle-timeout 0`, " \
           f"or have it start at login: `install.py --autostart`" in out
    server = http.server.HTTPServer(("127.0.0.1", port), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        failures, out = _check_parts(capsys, target, "--engine-url", url)
        assert failures == 0 and f"PASS  engine for GIMP 3.0 (Flatpak): an engine answers at {url}" in out
        # Something that answers like the engine but does not know this user's token.
        Health.proves = False
        failures, out = _check_parts(capsys, target, "--engine-url", url)
        assert failures == 1 and "does not know your engine token" in out
    finally:
        server.shutdown()
        server.server_close()


# --autostart ---------------------------------------------------------------------------------

@pytest.fixture
def systemctl(tmp_path, monkeypatch) -> Path:
    """A systemctl on PATH that records its arguments (one call a line) and succeeds."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "systemctl-calls"
    script = bin_dir / "systemctl"
    script.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return calls


@POSIX_ONLY
def test_autostart_sets_up_a_systemd_user_service_that_keeps_the_engine_running(home, capsys, systemctl):
    gimp_folder(home, "3.0", "Flatpak")
    code, out, err = run_installer(capsys, "--python", ENGINE_PYTHON, "--engine-url", "http://127.0.0.1:9001",
                                   "--device", "cpu", "--autostart")
    assert code == 0, err
    unit = home / ".config/systemd/user/swag-engine.service"
    text = unit.read_text()
    assert f"ExecStart={ENGINE_PYTHON} -m swag_core serve --host 127.0.0.1 --port 9001 --device cpu " \
           f"--idle-timeout 0\n" in text
    assert f"WorkingDirectory={Path(ENGINE_PYTHON).parent}\n" in text and "WantedBy=default.target" in text
    assert systemctl.read_text().splitlines() == [
        "--user daemon-reload", "--user enable swag-engine.service", "--user restart swag-engine.service"]
    assert "Start it outside GIMP" not in out  # the service does
    # A second run changes nothing and only makes sure it runs.
    code, out, _ = run_installer(capsys, "--python", ENGINE_PYTHON, "--engine-url", "http://127.0.0.1:9001",
                                 "--device", "cpu", "--autostart")
    assert code == 0 and "nothing needed changing" in out
    assert systemctl.read_text().splitlines()[-1] == "--user enable --now swag-engine.service"
    # --uninstall stops and removes it.
    assert run_installer(capsys, "--uninstall")[0] == 0
    assert not unit.exists()
    assert systemctl.read_text().splitlines()[-2:] == ["--user disable --now swag-engine.service",
                                                       "--user daemon-reload"]


def test_autostart_quotes_paths_as_systemd_reads_them():
    from installer import autostart

    text = autostart.unit_text(Path("/home/a b/100%/venv/bin/python"), "http://localhost:8765", "auto")
    assert 'ExecStart="/home/a b/100%%/venv/bin/python" -m swag_core serve --host localhost --port 8765' in text


@POSIX_ONLY
def test_autostart_without_systemd_says_what_to_do_and_writes_no_unit(home, capsys, tmp_path, monkeypatch):
    gimp_folder(home, "3.0", "Flatpak")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no systemctl
    code, _, err = run_installer(capsys, "--python", ENGINE_PYTHON, "--autostart")
    assert code == 1
    assert f"--autostart needs systemd (no systemctl here); start the engine another way: `{ENGINE_PYTHON} -m " \
           f"swag_core serve --idle-timeout 0` at login" in err
    assert not (home / ".config/systemd").exists()


def test_autostart_is_for_an_engine_on_this_computer(capsys):
    with pytest.raises(SystemExit):
        install.main(["--autostart", "--engine-url", "http://192.0.2.1:8765"])
    assert "--autostart runs the engine on this computer" in capsys.readouterr().err
