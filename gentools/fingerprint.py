"""What a sweep run depends on, as a hash: the key under which its result is cached.

A run function's fingerprint covers its compiled code (not its comments, docstrings, line numbers or file name),
the code of every notebook or project function it calls (followed through globals, closures and defaults), and the
values of the globals and closure variables it reads: numbers, strings and containers by value, arrays, tensors,
data sets and models by content. Library functions count by name and package version; gentools by the code of the
modules the run reaches (`store.source_hash` of the modules whose functions, classes or objects it uses, with what
they import), so that editing one topic module recomputes only the runs that use it. Anything else cannot be
fingerprinted: `Unfingerprintable` says what, and the sweep then runs without its cache rather than guess.
"""
from __future__ import annotations

import dataclasses
import dis
import functools
import hashlib
import importlib.metadata
import sys
import sysconfig
import types
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import torch

_LIBRARY_ROOTS = tuple({str(Path(sysconfig.get_paths()[key]).resolve()) for key in ("stdlib", "platstdlib", "purelib", "platlib")})
_GLOBAL_LOADS = {"LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "DELETE_GLOBAL"}


class Unfingerprintable(TypeError):
    """A value a run depends on has no stable content hash."""


def of(value: Any, what: str = "the run function") -> str:
    """The fingerprint of a value (a run function and everything it reads, its fixed arguments), as a hex string."""
    from . import store

    sha = hashlib.sha256()
    walker = _Walker(sha.update)
    walker.value(value, what)
    sha.update(store.source_hash(frozenset(walker.reached)).encode())
    return sha.hexdigest()[:20]


class _Walker:
    def __init__(self, feed: Callable[[bytes], None]):
        self.feed = feed
        self.seen: dict[int, int] = {}  # id -> order of first visit, for cycles and shared objects
        self.keep_alive: list[Any] = []  # ids stay unique while we hold the objects
        self.reached: set[str] = set()  # the gentools modules met, by file name ("train", "__init__" for the package)

    def reach(self, module: types.ModuleType) -> None:
        self.reached.add("__init__" if module.__name__ == "gentools" else module.__name__.split(".")[1])

    def attributes(self, module: types.ModuleType, names: set[str], done: set[str]) -> None:
        """What `gt.fit` or `gt.kernels.ntk` reaches: the gentools module of every attribute of a gentools module
        that a function names."""
        if module.__name__ in done:
            return
        done.add(module.__name__)
        self.reach(module)
        for name in sorted(names):
            item = getattr(module, name, None)
            if isinstance(item, types.ModuleType):
                if _is_gentools(item):
                    self.attributes(item, names, done)
            elif _is_gentools(sys.modules.get(getattr(item, "__module__", None) or "")):
                self.reach(sys.modules[item.__module__])

    def text(self, *parts: object) -> None:
        for part in parts:
            data = str(part).encode()
            self.feed(len(data).to_bytes(8, "little") + data)

    def value(self, value: Any, where: str) -> None:
        if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
            self.text(type(value).__name__, repr(value))
            return
        if isinstance(value, PurePath):  # a path counts by its name, as a string would (not by the file's content)
            self.text("path", str(value))
            return
        if id(value) in self.seen:
            self.text("seen", self.seen[id(value)])
            return
        self.seen[id(value)] = len(self.seen)
        self.keep_alive.append(value)
        if isinstance(value, types.ModuleType):
            self.text("module", value.__name__)
            if _is_gentools(value):
                self.reach(value)
        elif isinstance(value, (types.FunctionType, types.MethodType, functools.partial, type)):
            self.callable(value, where)
        elif callable(value) and _is_library(sys.modules.get(getattr(value, "__module__", None) or "")):
            module = getattr(value, "__module__")  # a built-in or compiled library function: len, np.mean, torch.relu
            self.text("library", module, getattr(value, "__qualname__", getattr(value, "__name__", "")), _version(module))
        elif isinstance(value, (list, tuple)):
            self.text(type(value).__name__, len(value))
            for i, item in enumerate(value):
                self.value(item, f"{where}[{i}]")
        elif isinstance(value, (set, frozenset)):
            self.text(type(value).__name__, len(value))
            for item in sorted(value, key=repr):
                self.value(item, f"an element of {where}")
        elif isinstance(value, dict):
            self.text("dict", len(value))
            for key, item in value.items():
                self.value(key, f"a key of {where}")
                self.value(item, f"{where}[{key!r}]")
        elif isinstance(value, torch.Tensor):
            tensor = value.detach().cpu().contiguous()
            self.text("tensor", tensor.dtype, tuple(tensor.shape))
            self.feed(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
        elif isinstance(value, np.ndarray):
            if value.dtype == object:
                raise Unfingerprintable(f"{where} is an array of Python objects")
            self.text("ndarray", value.dtype.str, value.shape)
            self.feed(np.ascontiguousarray(value).tobytes())
        elif isinstance(value, np.generic):
            self.text("numpy", value.dtype.str, repr(value.item()))
        elif isinstance(value, torch.nn.Module):
            self.text("module", type(value).__qualname__, repr(value))
            self.callable(type(value), f"the class of {where}")
            self.value(dict(value.state_dict()), f"the weights of {where}")
        elif isinstance(value, (torch.dtype, torch.device)):
            self.text(type(value).__name__, value)
        elif dataclasses.is_dataclass(value):
            self.callable(type(value), f"the class of {where}")
            for field in dataclasses.fields(value):
                self.value(getattr(value, field.name), f"{where}.{field.name}")
        elif _is_pandas(value):
            import pandas as pd

            self.text("pandas", type(value).__name__, list(getattr(value, "columns", [])))
            self.feed(pd.util.hash_pandas_object(value, index=True).to_numpy().tobytes())
        elif type(value).__module__ == "builtins" and isinstance(value, (range, slice)):
            self.text(repr(value))
        elif hasattr(value, "__dict__") and _is_own(sys.modules.get(type(value).__module__)):
            self.callable(type(value), f"the class of {where}")  # an object of gentools or of the notebook: its class
            self.value(dict(vars(value)), f"the attributes of {where}")  # and its attributes
        else:
            raise Unfingerprintable(f"{where} is a {type(value).__module__}.{type(value).__qualname__}, whose content "
                                    "gentools cannot hash")

    def callable(self, fn: Any, where: str) -> None:
        if isinstance(fn, functools.partial):
            self.text("partial")
            self.value(fn.func, f"{where} (partial)")
            self.value(fn.args, f"the arguments of {where}")
            self.value(fn.keywords, f"the keyword arguments of {where}")
            return
        if isinstance(fn, types.MethodType):
            self.text("method")
            self.value(fn.__func__, where)
            self.value(fn.__self__, f"the object of {where}")
            return
        module = sys.modules.get(getattr(fn, "__module__", None) or "")
        name = getattr(fn, "__qualname__", repr(fn))
        if _is_gentools(module):
            self.reach(module)
            self.text("gentools", module.__name__, name)
            if isinstance(fn, types.FunctionType):  # a function gentools made, such as l2_penalty(1e-4)
                self.arguments(fn, name)
            return
        if _is_library(module):
            self.text("library", module.__name__, name, _version(module.__name__))
            return
        if isinstance(fn, type):  # a class defined in a notebook or a project module: its methods and attributes
            self.text("class", name)
            for key, item in sorted(vars(fn).items()):
                if key.startswith("__") and key not in ("__init__", "__call__", "__post_init__"):
                    continue
                if isinstance(item, (staticmethod, classmethod)):
                    item = item.__func__
                if isinstance(item, property):
                    item = item.fget
                self.text(key)
                self.value(item, f"{name}.{key}")
            for base in fn.__bases__:
                self.value(base, f"a base class of {name}")
            return
        if not isinstance(fn, types.FunctionType):
            raise Unfingerprintable(f"{where} is a {type(fn).__name__}, whose code gentools cannot read")
        self.text("function")
        self.code(fn.__code__)
        self.arguments(fn, name)
        for global_name in sorted(_globals_read(fn.__code__)):
            if global_name in fn.__globals__:
                value = fn.__globals__[global_name]
                self.text("global", global_name)
                self.value(value, f"the global {global_name!r} that {name} reads")
                if isinstance(value, types.ModuleType) and _is_gentools(value):
                    self.attributes(value, _names(fn.__code__), set())

    def arguments(self, fn: types.FunctionType, name: str) -> None:
        """The values a function carries with it: its defaults and the variables it closes over."""
        self.value(fn.__defaults__, f"the defaults of {name}")
        self.value(fn.__kwdefaults__, f"the keyword defaults of {name}")
        for var, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
            self.text("closure", var)
            try:
                content = cell.cell_contents
            except ValueError:  # a cell not yet filled: a function that refers to itself before it exists
                content = None
            self.value(content, f"the variable {var!r} that {name} closes over")

    def code(self, code: types.CodeType) -> None:
        """Compiled code without what cannot change a result: line numbers, file name, docstring."""
        constants = list(code.co_consts)
        if constants and isinstance(constants[0], str) and _unused_first_constant(code):
            constants[0] = None  # a docstring: stored as the first constant and never loaded
        self.text("code", code.co_argcount, code.co_kwonlyargcount, code.co_posonlyargcount, code.co_flags,
                  code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars)
        self.feed(code.co_code)
        for constant in constants:
            if isinstance(constant, types.CodeType):
                self.code(constant)
            elif isinstance(constant, frozenset):
                self.text("frozenset", sorted(map(repr, constant)))
            else:
                self.text(type(constant).__name__, repr(constant))


def _unused_first_constant(code: types.CodeType) -> bool:
    """A function's docstring is its first constant (up to Python 3.13), which no instruction loads."""
    return not any(instruction.opname == "LOAD_CONST" and instruction.arg == 0 for instruction in dis.get_instructions(code))


def _globals_read(code: types.CodeType) -> set[str]:
    names = {instruction.argval for instruction in dis.get_instructions(code) if instruction.opname in _GLOBAL_LOADS}
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= _globals_read(constant)
    return names


def _names(code: types.CodeType) -> set[str]:
    """Every global and attribute name a function's code (with its nested functions) uses."""
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= _names(constant)
    return names


def _is_gentools(module: types.ModuleType | None) -> bool:
    return module is not None and (module.__name__ == "gentools" or module.__name__.startswith("gentools."))


def _is_own(module: types.ModuleType | None) -> bool:
    """gentools, the notebook, or the project's own modules: code whose objects we may read attribute by attribute."""
    return _is_gentools(module) or (module is not None and not _is_library(module))


def _is_library(module: types.ModuleType | None) -> bool:
    """Installed packages and the standard library count by name and version; a notebook or a project's own
    modules count by their code."""
    if module is None:
        return False
    if module.__name__ in sys.builtin_module_names:
        return True
    file = getattr(module, "__file__", None)
    if file is None:
        return module.__name__ != "__main__"
    path = str(Path(file).resolve())
    return "site-packages" in path or "dist-packages" in path or path.startswith(_LIBRARY_ROOTS)


@functools.lru_cache(maxsize=None)
def _version(module_name: str) -> str:
    top = module_name.split(".")[0]
    try:
        return importlib.metadata.version(top)
    except importlib.metadata.PackageNotFoundError:
        return getattr(sys.modules.get(top), "__version__", "")


def _is_pandas(value: Any) -> bool:
    module = type(value).__module__
    return module.startswith("pandas.") and type(value).__name__ in ("DataFrame", "Series")
