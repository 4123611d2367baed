"""A stand-in for GIMP in tests: just enough of GIMP 3's `gi.repository` (Gimp, GimpUi, Gegl,
GLib, GObject, Gio) and of GIMP 2.10's `gimpfu`/`gimp` to import and run the plug-ins under
pytest, and strict enough to fail where GIMP would (see model.py).

    session = gimpshim.install_gimp3(monkeypatch)   # fake modules in sys.modules for one test
    module, procedure = session.load_plugin(PATH)    # as GIMP loads a plug-in
    Gimp = session.Gimp                              # build images, configs, run the procedure

    session = gimpshim.install_gimp2(monkeypatch)
    runpy.run_path(PATH_210)                         # registers through the fake gimpfu
    session.run("python-fu-...", RUN_NONINTERACTIVE, image, drawable, ...)
"""

import sys

from . import gimp2, gimp3, model  # noqa: F401


def _install(monkeypatch, session):
    for name, module in session.modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return session


def install_gimp3(monkeypatch) -> "gimp3.Session":
    # The plug-in's own modules must be imported afresh for each session (they bind Gimp at import).
    for name in ("swag_gimp_common", "swag_client"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    return _install(monkeypatch, gimp3.Session())


def install_gimp2(monkeypatch) -> "gimp2.Session":
    for name in ("swag_gimp_common", "swag_client"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    return _install(monkeypatch, gimp2.Session())
