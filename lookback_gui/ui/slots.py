"""Slots that do not keep their object alive.

PySide holds a lambda (or a ``functools.partial``) connected to a signal for as long as the
sender lives, and a lambda that calls ``self.something`` keeps ``self`` alive with it: a
window whose child's signal is connected to such a lambda is never freed when Python drops it,
and nor is anything it owns (its session, with the store and the scheduler's threads). A bound
method connected as is does not keep its object alive; :func:`weakly` gives the same to a
method called with arguments of its own.

The same holds for a callback that a plot item keeps (a marker's tooltip): an item of the
widget's own plot that holds a method of the widget makes a reference cycle, and a cycle is
freed by the cycle collector, which takes a Qt widget and its items apart in an order that
Qt does not survive. :func:`weak_callback` holds the widget weakly.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any


def weakly(method: Callable[..., Any], *args: Any, signal_args: bool = False) -> Callable[..., None]:
    """A slot that calls the bound ``method`` with ``args`` (then the signal's arguments, with
    ``signal_args``) while its object lives, and holds it only weakly."""
    ref = weakref.WeakMethod(method)

    def call(*given: Any) -> None:
        bound = ref()
        if bound is not None:
            bound(*args, *given) if signal_args else bound(*args)

    return call


def weak_callback(method: Callable[..., Any], default: Any = None) -> Callable[..., Any]:
    """A callable that returns what the bound ``method`` returns while its object lives
    (``default`` once it is gone), and holds the object only weakly."""
    ref = weakref.WeakMethod(method)

    def call(*given: Any) -> Any:
        bound = ref()
        return default if bound is None else bound(*given)

    return call
