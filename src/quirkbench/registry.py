"""One registry mechanism for tasks, data sets, models and plots.

A registry maps names to specs (frozen dataclasses with a ``name``: ``Task``, ``DataSpec``,
``ModelSpec``, ``PlotSpec``). Every kind has the same shape:

* ``register(spec) -> spec``: built-in specs register when their module is imported;
  registering a name again with a different spec is an error (the same spec again, e.g. a
  module imported twice, is not);
* an entry-point group (``quirkbench.tasks``, ``quirkbench.datasets``, ``quirkbench.models``,
  ``quirkbench.plots``): each entry point names a module of another package, and importing
  it registers its specs, exactly as a built-in module does;
* lookups (``registry[name]``, ``in``, iteration, ``lookup``) first import the built-ins and
  the entry points, once; ``lookup`` turns an unknown name into a one-line ``UserError``
  that lists the valid names.

The registry is a read-only ``Mapping`` of name → spec, so ``registry.values()`` lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from .errors import UserError, choices, did_you_mean

T = TypeVar("T")

GROUP_PREFIX = "quirkbench."


class Registry(Mapping[str, T], Generic[T]):
    """Named specs of one kind (``kind`` names it in messages, e.g. ``"data set"``).

    ``group``: the entry-point group of other packages' specs. ``builtins``: imports this
    package's own specs on first lookup (``None``: they registered at import already).
    ``identity``: what makes two specs of one name the same (default: the spec itself).
    """

    def __init__(self, kind: str, group: str, *, builtins: Callable[[], None] | None = None,
                 identity: Callable[[T], object] = lambda spec: spec):
        self.kind, self.group = kind, group
        self._builtins, self._identity = builtins, identity
        self._specs: dict[str, T] = {}
        self._loaded = self._loading = False

    # ------------------------------------------------------------------ registering
    def register(self, spec: T) -> T:
        """Add ``spec`` under ``spec.name`` and return it.

        A name already registered with a different spec is a ``ValueError``; the same
        spec again (its module imported twice) is not.
        """
        name = spec.name  # type: ignore[attr-defined]
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} needs a non-empty name, got {name!r}")
        old = self._specs.get(name)
        if old is not None and self._identity(old) != self._identity(spec):
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self._specs[name] = spec
        return spec

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests that register a temporary spec clean up with this)."""
        self._specs.pop(name, None)

    # ------------------------------------------------------------------ loading
    def load(self) -> Registry[T]:
        """Import the built-ins and every entry point of ``group``, once."""
        if self._loaded or self._loading:
            return self
        self._loading = True  # a module that looks names up while it registers sees what is in
        try:
            if self._builtins is not None:
                self._builtins()
            from importlib.metadata import entry_points

            for ep in entry_points(group=self.group):
                try:
                    ep.load()
                except Exception as e:
                    raise UserError(f"the {self.group} entry point {ep.name!r} ({ep.value}) "
                                    f"failed to load: {type(e).__name__}: {e}") from e
            self._loaded = True
        finally:
            self._loading = False
        return self

    # ------------------------------------------------------------------ looking up
    def lookup(self, name: str) -> T:
        """The spec ``name``; an unknown name is a ``UserError`` listing the valid ones."""
        self.load()
        if name not in self._specs:
            raise UserError(f"unknown {self.kind} {name!r}{did_you_mean(name, self._specs)}; "
                            f"valid: {choices(self._specs)}")
        return self._specs[name]

    def __getitem__(self, name: str) -> T:
        return self.load()._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.load()._specs)

    def __len__(self) -> int:
        return len(self.load()._specs)

    def __contains__(self, name: object) -> bool:
        return name in self.load()._specs

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.group!r}, {sorted(self._specs)})"
