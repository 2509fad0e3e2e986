"""One pickle format for state classes, whether they run as Python or compiled.

A slotted Python class pickles its state as ``(None, {slot: value})``; the same class
compiled by mypyc has no slots and would pickle a plain dict, or nothing at all. State
classes define ``__getstate__``/``__setstate__`` with these helpers instead, so a
checkpoint written by either build restores in the other, and so do checkpoints from
before (which hold the slot tuple).
"""

from __future__ import annotations

from typing import Any

_FIELDS: dict[type, tuple[str, ...]] = {}


def fields(cls: type) -> tuple[str, ...]:
    """The instance attributes of ``cls``: mypyc's attribute list, or every ``__slots__``."""
    names = _FIELDS.get(cls)
    if names is None:
        compiled = cls.__dict__.get("__mypyc_attrs__")
        if compiled is not None:
            names = tuple(name for name in compiled if name != "__dict__")
        else:
            names = tuple(dict.fromkeys(
                name for klass in reversed(cls.__mro__)
                for name in klass.__dict__.get("__slots__", ())))
        _FIELDS[cls] = names
    return names


def get_state(obj: object) -> dict[str, Any]:
    """The attributes that are set, by name (slots, compiled attributes and ``__dict__``)."""
    state: dict[str, Any] = dict(getattr(obj, "__dict__", {}))
    for name in fields(type(obj)):
        try:
            state[name] = getattr(obj, name)
        except AttributeError:
            continue
    return state


def as_dict(state: Any) -> dict[str, Any]:
    """Either pickled form (a dict, or the ``(dict or None, slots)`` tuple) as one dict."""
    if isinstance(state, tuple) and len(state) == 2:
        merged: dict[str, Any] = dict(state[0] or {})
        merged.update(state[1] or {})
        return merged
    if isinstance(state, dict):
        return state
    raise TypeError(f"not a pickled state: {type(state).__name__}")


def set_state(obj: object, state: dict[str, Any]) -> None:
    """Set the attributes ``state`` names that the class still has."""
    for name, value in state.items():
        try:
            setattr(obj, name, value)
        except AttributeError:  # an attribute this version no longer has
            continue
