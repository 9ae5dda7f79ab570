"""Numbers, numpy arrays and torch tensors in compared values: equal or not, and where the first difference is.

Equality of numbers: with ``rtol == atol == 0`` exact (``NaN`` equals ``NaN``: a NaN that comes back is
reproduced); otherwise ``math.isclose(a, b, rel_tol=rtol, abs_tol=atol)``. Arrays and tensors follow the same
rule element by element (NaN equal to NaN at the same place, infinities equal only to themselves); their shape
and dtype must match first. Booleans, strings and dates in arrays compare exactly.

Neither numpy nor torch is imported here: a value is recognised against the module that is already loaded (a
tensor cannot exist unless torch was imported), so comparing JSON values costs nothing and a project without
torch never loads it.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, final


@final
@dataclass(frozen=True)
class Mismatch:
    """The first place two values differ: ``path`` into them (``['w'][3, 17]``) and the differing parts.

    For arrays and tensors ``aspect`` is ``'shape'`` or ``'dtype'`` when those differ (``old`` and ``new`` are
    then the shapes or dtypes, as text); for differing elements ``index`` is the first one's position (C order)
    and ``differing`` counts the elements that differ out of ``size``.
    """

    path: str
    old: Any
    new: Any
    aspect: str = ""
    index: tuple[int, ...] | None = None
    differing: int = 0
    size: int = 0


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def numbers_equal(old: float, new: float, rtol: float, atol: float) -> bool:
    if isinstance(old, float) and isinstance(new, float) and math.isnan(old) and math.isnan(new):
        return True
    if rtol == 0.0 and atol == 0.0:
        return old == new
    return math.isclose(old, new, rel_tol=rtol, abs_tol=atol)


def is_numpy_or_torch(value: Any) -> bool:
    """A numpy array or scalar (``numpy.float32(0.5)``), or a torch tensor."""
    numpy = sys.modules.get("numpy")
    return (numpy is not None and isinstance(value, numpy.ndarray | numpy.generic)) or _is_tensor(value)


def _is_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _shape(value: Any) -> tuple[int, ...]:
    return tuple(int(n) for n in value.shape)


def show(value: Any) -> str:
    """An array as ``ndarray(float32, shape (3, 4))`` (never its elements: a print would be truncated), a
    numpy scalar as its shortest text (``0.123456``), anything else as its repr."""
    if not is_numpy_or_torch(value):
        return repr(value)
    if not _is_tensor(value) and value.ndim == 0:
        return str(value)
    return f"{type(value).__name__}({value.dtype}, shape {_shape(value)})"


def to_numpy(value: Any) -> Any:
    """A numpy array of a tensor's values (detached, dense, on the CPU); numpy values as they are."""
    if not _is_tensor(value):
        return value
    torch = sys.modules["torch"]
    tensor = value.detach()
    if tensor.layout != torch.strided:
        tensor = tensor.to_dense()
    if tensor.is_quantized:
        tensor = tensor.dequantize()
    tensor = tensor.cpu()
    try:
        return tensor.numpy()
    except TypeError:  # bfloat16, float8, complex32: no numpy dtype; float32 / complex64 hold them exactly
        return tensor.to(torch.complex64 if tensor.is_complex() else torch.float32).numpy()


def compare_arrays(
    old: Any,
    new: Any,
    rtol: float,
    atol: float,
    path: str,
    elements: Callable[[Any, Any, str], Mismatch | None],
) -> Mismatch | None:
    """The first difference between two arrays or tensors: their type, shape, dtype, then their elements.
    ``elements(a, b, path)`` compares two elements of an object array (any Python values)."""
    if type(old) is not type(new):
        return Mismatch(path, old, new)
    if _shape(old) != _shape(new):
        return Mismatch(path, str(_shape(old)), str(_shape(new)), aspect="shape")
    if old.dtype != new.dtype:
        return Mismatch(path, str(old.dtype), str(new.dtype), aspect="dtype")
    a, b = to_numpy(old), to_numpy(new)
    if a.dtype.kind == "O":
        return _object_elements(a, b, path, elements)
    unequal = _unequal(a, b, rtol, atol)
    if not unequal.any():
        return None
    numpy = sys.modules["numpy"]
    index = tuple(int(i) for i in numpy.unravel_index(int(numpy.argmax(unequal)), unequal.shape))
    where = f"{path}[{', '.join(map(str, index))}]" if index else path
    return Mismatch(where, a[index], b[index], index=index, differing=int(unequal.sum()), size=int(a.size))


def _unequal(a: Any, b: Any, rtol: float, atol: float) -> Any:
    """Where two numpy arrays of one shape and dtype differ (a boolean array)."""
    numpy = sys.modules["numpy"]
    kind = a.dtype.kind
    with numpy.errstate(all="ignore"):
        same = numpy.asarray(a == b)
        if kind in "fc":
            same |= numpy.isnan(a) & numpy.isnan(b)
        elif kind in "mM":
            same |= numpy.isnat(a) & numpy.isnat(b)
        if kind in "iufc" and (rtol or atol):
            # Computed in float64 (complex128): differences of unsigned or small types would wrap or round.
            wide = numpy.result_type(a.dtype, numpy.float64)
            x, y = a.astype(wide), b.astype(wide)
            bound = numpy.maximum(rtol * numpy.maximum(abs(x), abs(y)), atol)
            same |= numpy.isfinite(x) & numpy.isfinite(y) & (abs(x - y) <= bound)
    return ~same


def _object_elements(
    a: Any, b: Any, path: str, elements: Callable[[Any, Any, str], Mismatch | None]
) -> Mismatch | None:
    numpy = sys.modules["numpy"]
    for index in numpy.ndindex(a.shape):
        found = elements(a[index], b[index], f"{path}[{', '.join(map(str, index))}]" if index else path)
        if found is not None:
            return found
    return None
