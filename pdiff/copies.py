"""What a torch callable computes with, copied in float64 on the CPU without touching the original.

A function's own references are followed: its closure, defaults and the globals it names, a functools.partial's
arguments, a bound method's owner, tuples, lists and dicts; one level of helper functions below that. Every tensor
found becomes a float64 CPU copy and every nn.Module a deep copy whose parameters and buffers are those copies
(mapped through deepcopy's memo, so the originals are never copied, moved or changed). Library functions come
back as themselves: nothing in them changes.
"""

from __future__ import annotations

import copy
import functools
import itertools
import types

import torch

from pdiff.errors import InputError


def _referenced(obj, leaf, seen: dict, depth: int = 0):
    """obj with leaf applied to every tensor and module it holds, directly or through the closure, defaults and
    globals of a plain function, a functools.partial, a bound method or a tuple/list/dict; the same object when
    nothing in it changed. Library functions are left alone (nothing in them changes)."""
    if id(obj) in seen:
        return seen[id(obj)]
    seen[id(obj)] = obj  # a cycle ends here
    if isinstance(obj, (torch.Tensor, torch.nn.Module)):
        out = leaf(obj)
    elif depth > 3:
        out = obj
    elif isinstance(obj, (tuple, list)):
        items = [_referenced(item, leaf, seen, depth + 1) for item in obj]
        changed = any(a is not b for a, b in zip(items, obj))
        out = (tuple(items) if isinstance(obj, tuple) else items) if changed else obj
    elif isinstance(obj, dict):
        items = {k: _referenced(v, leaf, seen, depth + 1) for k, v in obj.items()}
        out = items if any(items[k] is not obj[k] for k in obj) else obj
    elif isinstance(obj, functools.partial):
        func, args = _referenced(obj.func, leaf, seen, depth + 1), _referenced(obj.args, leaf, seen, depth + 1)
        keywords = _referenced(obj.keywords, leaf, seen, depth + 1)
        changed = func is not obj.func or args is not obj.args or keywords is not obj.keywords
        out = functools.partial(func, *args, **keywords) if changed else obj
    elif isinstance(obj, types.MethodType):
        owner = _referenced(obj.__self__, leaf, seen, depth + 1)
        out = types.MethodType(obj.__func__, owner) if owner is not obj.__self__ else obj
    elif isinstance(obj, types.FunctionType):
        out = _function(obj, leaf, seen, depth)
    else:
        out = obj
    seen[id(obj)] = out
    return out


def _names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _function(fn: types.FunctionType, leaf, seen: dict, depth: int):
    cells = fn.__closure__ or ()
    contents = []
    for cell in cells:
        try:
            contents.append(cell.cell_contents)
        except ValueError:  # an empty cell
            contents.append(cell)
    new = [_referenced(c, leaf, seen, depth + 1) if not isinstance(c, types.CellType) else c for c in contents]
    globals_ = {name: fn.__globals__[name] for name in _names(fn.__code__) if name in fn.__globals__}
    new_globals = {name: _referenced(value, leaf, seen, depth + 1) for name, value in globals_.items()}
    defaults = _referenced(fn.__defaults__, leaf, seen, depth + 1)
    kwdefaults = _referenced(fn.__kwdefaults__, leaf, seen, depth + 1)
    if (all(a is b for a, b in zip(new, contents)) and all(new_globals[k] is globals_[k] for k in globals_)
            and defaults is fn.__defaults__ and kwdefaults is fn.__kwdefaults__):
        return fn
    closure = tuple(c if isinstance(c, types.CellType) and c is old else types.CellType(c)
                    for c, old in zip(new, contents)) or None
    scope = dict(fn.__globals__)
    scope.update(new_globals)
    out = types.FunctionType(fn.__code__, scope, fn.__name__, defaults, closure)
    out.__kwdefaults__ = kwdefaults
    out.__dict__.update(fn.__dict__)
    return out


def refuse_training(obj) -> None:
    """Dropout in training mode makes fn random; batch norm in training mode would update running statistics."""
    from torch.nn.modules.batchnorm import _NormBase
    from torch.nn.modules.dropout import _DropoutNd

    def leaf(thing):
        if isinstance(thing, torch.nn.Module):
            for name, module in thing.named_modules():
                moving = isinstance(module, _NormBase) and module.track_running_stats
                if module.training and (isinstance(module, _DropoutNd) or moving):
                    what = "dropout makes fn random" if isinstance(module, _DropoutNd) else \
                        "batch norm would update its running statistics"
                    raise InputError(f"{type(module).__name__} {name or '(the module)'} is in training mode: "
                                     f"{what}; call .eval() on the module first (pdiff never changes its mode)")
        return thing

    _referenced(obj, leaf, {})


def float64_copy(obj, memo: dict):
    """A float64 CPU copy of obj and of the tensors and modules it refers to (modules deep-copied with their
    parameters and buffers replaced, so the originals are neither copied nor touched)."""
    def leaf(thing):
        if isinstance(thing, torch.Tensor):
            data = thing.detach()
            return data.to("cpu", torch.float64) if data.is_floating_point() else data.to("cpu")
        inner = {}
        for tensor in itertools.chain(thing.parameters(), thing.buffers()):
            data = leaf(tensor)
            inner[id(tensor)] = torch.nn.Parameter(data, requires_grad=False) \
                if isinstance(tensor, torch.nn.Parameter) else data
        return copy.deepcopy(thing, inner)

    return _referenced(obj, leaf, memo)
