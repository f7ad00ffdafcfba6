"""The models a history can be checked against, by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from checker.models.base import INVALID, OTHER, Model
from checker.models.etcd import etcd, kv
from checker.models.kv_append import kv_append
from checker.models.multi_register import multi_register
from checker.models.mutex import mutex
from checker.models.register import cas_register, register

MODELS: dict[str, Callable[..., Model]] = {
    "register": register,
    "cas-register": cas_register,
    "etcd": etcd,
    "kv": kv,
    "kv-append": kv_append,
    "mutex": mutex,
    "multi-register": multi_register,
}

UNSET: Any = object()
"""No initial value given: the model uses its own default."""


def make_model(name: str, initial: Any = UNSET) -> Model:
    """The model called `name`, starting from `initial` (its own default if unset)."""
    try:
        factory = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}") from None
    return factory() if initial is UNSET else factory(initial)


__all__ = ["INVALID", "MODELS", "OTHER", "UNSET", "Model", "make_model"]
