"""Registries of swappable components: a name a user chooses → the class that implements it,
imported only when chosen, and built from its own validated pydantic config.

    PROPOSERS = Registry("proposer", {"offline": "agent.offline.OfflineProposer"}, where="--proposer")
    proposer = PROPOSERS.build("offline", {"seed": 3}, backend=backend, progress=None)

A registered class names its config (`config_class`, a pydantic model) and builds itself from it
with `from_config(config, **services)`; services are what the run hands every component of the
kind (a backend, a progress callback). An unknown name, a class missing from this installation
or settings its config refuses are each a ConfigError that says what, where and what to choose.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from core.errors import ConfigError

if TYPE_CHECKING:  # pydantic is imported when a component is built, not when names are listed
    from pydantic import BaseModel


class Buildable(Protocol):
    """What a registered class provides."""

    config_class: ClassVar[type[BaseModel]]

    @classmethod
    def from_config(cls, config: Any, **services: Any) -> Any: ...


class Registry(Mapping[str, str]):
    """The names of one kind of component, each mapped to the dotted path of its class."""

    def __init__(self, kind: str, classes: dict[str, str], where: str) -> None:
        self.kind = kind
        self.classes = dict(classes)
        self.where = where
        """Where a user names one (a flag, a config field): error messages point there."""

    def __getitem__(self, name: str) -> str:
        return self.classes[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.classes)

    def __len__(self) -> int:
        return len(self.classes)

    def load(self, name: str) -> Any:
        """The class registered under `name`, imported now."""
        if name not in self.classes:
            raise ConfigError(
                f"unknown {self.kind} {name!r} (given by {self.where}); choose one of: {', '.join(self.classes)}"
            )
        module_name, _, attribute = self.classes[name].rpartition(".")
        try:
            return getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"the {self.kind} {name!r} is not available in this installation ({exc}); "
                f"choose another with {self.where}: {', '.join(self.classes)}"
            ) from exc

    def build(self, name: str, settings: BaseModel | Mapping[str, Any], **services: Any) -> Any:
        """The component `name`, built from its config validated out of `settings`."""
        from pydantic import ValidationError

        component: Buildable = self.load(name)
        try:
            config = component.config_class.model_validate(settings)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or 'settings'}: {error['msg']}"
                for error in exc.errors()
            )
            raise ConfigError(
                f"the {self.kind} {name!r} cannot be built from its settings ({problems}); "
                f"fix them in the run configuration ({component.config_class.__name__})."
            ) from None
        return component.from_config(config, **services)
