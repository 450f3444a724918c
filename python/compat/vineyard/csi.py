"""``vineyard.csi.write`` / ``vineyard.csi.read`` on top of ``cellar.dump`` / ``cellar.load``.

Vineyard's CSI API names an object by a path under the volume's mount; here that path is
an ordinary file on the Cellar volume, in cellar's format, so any step can also open it
with ``cellar.load`` directly.
"""

import os

try:
    import cellar
except ImportError:
    # A checkout or an image that copied python/ whole: cellar.py sits two levels up.
    import importlib.util
    import sys

    _path = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "cellar.py")
    if not os.path.exists(_path):
        raise
    _spec = importlib.util.spec_from_file_location("cellar", _path)
    cellar = importlib.util.module_from_spec(_spec)
    sys.modules["cellar"] = cellar
    _spec.loader.exec_module(cellar)


def write(value, path):
    """Store ``value`` at ``path`` (like Vineyard: any picklable value; arrays and frames
    are laid out for zero-copy reads). Parent directories are created, since a Vineyard
    object name needed none. Replaces an existing object atomically."""
    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    cellar.dump(value, path)


def read(path):
    """The value stored at ``path``, its arrays mapped from the volume copy-on-write:
    no copy at load, and code that changes them in place (or a pandas routine that
    refuses read-only arrays) works as on ordinary objects, without touching the stored
    object. Raises FileNotFoundError for a missing object and cellar.FormatError for a
    file that is not one."""
    return cellar.load(path, writable=True)
