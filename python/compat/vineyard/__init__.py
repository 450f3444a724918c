"""Cellar's stand-in for Vineyard's CSI API, for code that calls
``vineyard.csi.write(obj, path)`` / ``vineyard.csi.read(path)``.

Opt-in: this directory (``python/compat``) does nothing until it is put on PYTHONPATH.
Even then it steps aside for a real Vineyard installed anywhere else on ``sys.path``,
unless told otherwise by ``CELLAR_VINEYARD_COMPAT``:

- unset or ``auto``: the real ``vineyard`` if one is installed, else this shim;
- ``1``: always this shim (a real Vineyard stays installed but is not imported);
- ``0``: never this shim (ImportError when no real Vineyard is installed).

Only ``vineyard.csi`` is provided; any other attribute raises an AttributeError that
says so, rather than a half-working client.
"""

import importlib.machinery
import importlib.util
import os
import sys

_MODES = ("", "auto", "0", "1")


def _compat_mode():
    mode = os.environ.get("CELLAR_VINEYARD_COMPAT", "")
    if mode not in _MODES:
        raise ImportError(f"CELLAR_VINEYARD_COMPAT={mode!r}: expected auto, 0 or 1")
    return mode


def _find_real_vineyard():
    """The import spec of a ``vineyard`` package found on sys.path outside this
    directory, or None."""
    own_package = os.path.dirname(os.path.realpath(__file__))
    own_entry = os.path.dirname(own_package)
    others = [entry for entry in sys.path
              if os.path.realpath(entry or os.getcwd()) != own_entry]
    spec = importlib.machinery.PathFinder.find_spec(__name__, others)
    if spec is None or spec.origin is None:
        return None
    if os.path.dirname(os.path.realpath(spec.origin)) == own_package:
        return None
    return spec


def _replace_with_real(spec):
    """Import the real package and put it in sys.modules under our name; the import
    statement that loaded this module then hands out the real one."""
    real = importlib.util.module_from_spec(spec)
    sys.modules[__name__] = real
    spec.loader.exec_module(real)


def _choose():
    """True when this module is the shim, False when it deferred to the real one."""
    mode = _compat_mode()
    if mode == "1":
        return True
    spec = _find_real_vineyard()
    if spec is not None:
        _replace_with_real(spec)
        return False
    if mode == "0":
        raise ImportError("CELLAR_VINEYARD_COMPAT=0 forbids Cellar's vineyard shim, "
                          "and no real vineyard is installed")
    return True


if _choose():
    from . import csi  # noqa: F401  (Vineyard code calls vineyard.csi.* after `import vineyard`)

    __cellar_compat__ = True
    __version__ = "0+cellar"

    def __getattr__(name):
        raise AttributeError(
            f"module 'vineyard' has no attribute {name!r}: this is Cellar's compat shim, "
            f"which provides only vineyard.csi.write/read; install the real vineyard "
            f"(and unset CELLAR_VINEYARD_COMPAT=1) for its client API")
