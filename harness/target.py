"""TARGET: where user code lives (a plug-in, a case), as ``package.module:attr`` or
``path/to/file.py:attr``.

Parsing is strict and happens in the parent (bad syntax is a usage error, exit 2), and
so is finding the file or module (``locate``: a typo is a usage error too), without
running any of the user's code; loading happens in the worker process, so that an import
that fails, hangs or crashes is a fault of the plug-in, reported like any other.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import re
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FILE_MODULE = "gradparity_plugin_"  # the prefix of a module ``load`` made from a file
_MODULE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_ATTR = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


class BadTarget(ValueError):
    """TARGET is not ``package.module:attr`` or ``path/to/file.py:attr``."""


class LoadFault(Exception):
    """The target could not be loaded: ``fault_name`` is "import error" or "missing
    attribute" (``FAULT_NAMES``)."""

    FAULT_NAMES = ("import error", "missing attribute")

    def __init__(self, fault_name: str, message: str, traceback: str = ""):
        super().__init__(message)
        self.fault_name, self.message, self.traceback = fault_name, message, traceback


@dataclass(frozen=True)
class Target:
    """A parsed TARGET. ``path`` is set for a file target, ``module`` for a module one;
    ``sys_path`` is prepended in the worker (the caller's import path)."""

    text: str
    attr: str
    module: str | None = None
    path: str | None = None
    sys_path: tuple[str, ...] = field(default=(), compare=False)

    @property
    def name(self) -> str:
        """A short name for tables: the attribute's last part."""
        return self.attr.rsplit(".", 1)[-1]

    def data(self) -> dict[str, Any]:
        """The target as plain data, to send to a worker (``from_data`` reads it back)."""
        return {
            "text": self.text,
            "attr": self.attr,
            "module": self.module,
            "path": self.path,
            "sys_path": list(self.sys_path),
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Target:
        return cls(
            data["text"],
            data["attr"],
            data.get("module"),
            data.get("path"),
            tuple(data.get("sys_path") or ()),
        )


def _its_own(name: str, value: Any, module: Any) -> bool:
    """Is ``name`` one of the module's own public names: not an imported module, nor a
    function or class defined elsewhere (``np``, an imported ``Case``)."""
    if name.startswith("_") or isinstance(value, types.ModuleType):
        return False
    if isinstance(value, (type, types.FunctionType)):
        return getattr(value, "__module__", None) == module.__name__
    return True


def parse_target(text: str) -> Target:
    """``pkg.mod:attr`` or ``dir/file.py:attr`` (the attribute may be dotted)."""
    where, sep, attr = str(text).rpartition(":")
    if not sep and (text.endswith(".py") or _MODULE.match(text)):
        raise BadTarget(
            f"TARGET {text!r} names no function or class in it: add :NAME "
            f"(for example {text}:grads)"
        )
    if not sep or not where or not _ATTR.match(attr):
        raise BadTarget(f"TARGET must be package.module:attr or path/to/file.py:attr, not {text!r}")
    if where.endswith(".py") or "/" in where or "\\" in where:
        return Target(text, attr, path=str(Path(where).resolve()), sys_path=tuple(sys.path))
    if not _MODULE.match(where):
        raise BadTarget(f"{where!r} in TARGET {text!r} is not a module name or a .py path")
    return Target(text, attr, module=where, sys_path=tuple(_import_path()))


def locate(target: Target) -> None:
    """BadTarget unless ``target``'s file exists or its module can be found on its import
    path. Found, not imported: no package's ``__init__`` runs here (user code runs only in
    workers), so a submodule is looked for in its package's folders as they are on disk."""
    if target.path is not None:
        if not Path(target.path).is_file():
            raise BadTarget(f"TARGET {target.text!r}: no file {target.path}")
        return
    _module_spec(target)


def _module_spec(target: Target) -> Any:
    """The import spec of ``target``'s module, found as ``locate`` says; BadTarget if none."""
    assert target.module is not None
    parts = target.module.split(".")
    spec = importlib.machinery.PathFinder.find_spec(parts[0], list(target.sys_path))
    if spec is None:  # a builtin, or a package installed through a finder of its own
        spec = importlib.util.find_spec(parts[0])
    for i in range(1, len(parts) + 1):
        name = ".".join(parts[:i])
        if spec is None:
            raise BadTarget(f"TARGET {target.text!r}: no module {name!r} on the import path")
        if i < len(parts):
            folders = spec.submodule_search_locations
            sub = ".".join(parts[: i + 1])
            spec = importlib.machinery.PathFinder.find_spec(sub, list(folders)) if folders else None
    return spec


def source_file(target: Target) -> str | None:
    """The resolved path of the file ``target`` is loaded from: its .py file, or the file
    its module would be imported from (found, not imported); None for a builtin module,
    one with no file, or one that cannot be found."""
    if target.path is not None:
        return str(Path(target.path).resolve())
    if target.module is None:  # an object handed over, not named
        return None
    try:
        origin = getattr(_module_spec(target), "origin", None)
    except BadTarget:
        return None
    return str(Path(origin).resolve()) if origin and Path(origin).is_file() else None


def _import_path() -> list[str]:
    """sys.path, with the working directory first (as ``python -m`` would have it)."""
    cwd = str(Path.cwd())
    return [cwd] + [p for p in sys.path if p not in ("", cwd)]


def target_of(obj: Any) -> Target | None:
    """A Target that names ``obj`` (a function, class or instance at module level), or
    None when a fresh process cannot find it by name (a lambda, a closure, a local)."""
    module = getattr(obj, "__module__", None) or getattr(type(obj), "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        return None
    mod = sys.modules.get(module)
    if mod is None:
        return None
    try:
        found = _getattr_path(mod, qualname)
    except AttributeError:
        return None
    if found is not obj:
        return None
    if module == "__main__" or module.startswith(FILE_MODULE):  # a file: found by its path
        path = getattr(mod, "__file__", None)
        if not path:
            return None
        return Target(
            f"{path}:{qualname}", qualname, path=str(Path(path).resolve()), sys_path=tuple(sys.path)
        )
    return Target(f"{module}:{qualname}", qualname, module=module, sys_path=tuple(_import_path()))


def _getattr_path(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def load(target: Target) -> Any:
    """Import the module (or run the file) and fetch the attribute; LoadFault otherwise."""
    import traceback

    for p in reversed(target.sys_path):
        if p not in sys.path:
            sys.path.insert(0, p)
    try:
        if target.path is not None:
            path = Path(target.path)
            if not path.is_file():
                raise LoadFault("import error", f"no file {target.path}")
            name = f"{FILE_MODULE}{path.stem}_{abs(hash(str(path))) % 10**8}"
            module = sys.modules.get(name)
            if module is None:
                sys.path.insert(0, str(path.parent))
                spec = importlib.util.spec_from_file_location(name, path)
                if spec is None or spec.loader is None:
                    raise LoadFault("import error", f"cannot import {target.path}")
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                try:
                    spec.loader.exec_module(module)
                except BaseException:
                    del sys.modules[name]
                    raise
            where = target.path
        else:
            module = importlib.import_module(str(target.module))
            where = f"module {target.module!r}"
    except LoadFault:
        raise
    except Exception as e:  # noqa: BLE001 - any failure to import is the plug-in's fault
        raise LoadFault(
            "import error",
            f"importing {target.text}: {type(e).__name__}: {e}",
            traceback.format_exc(),
        ) from None
    try:
        return _getattr_path(module, target.attr)
    except AttributeError:
        public = sorted(k for k, v in vars(module).items() if _its_own(k, v, module))[:20]
        raise LoadFault(
            "missing attribute",
            f"{where} has no attribute {target.attr!r}; it has: {', '.join(public) or 'nothing'}",
        ) from None
