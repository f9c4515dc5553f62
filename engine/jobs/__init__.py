"""HANDLERS: job kind -> function(ctx). Handlers are registered by their modules on import."""
from __future__ import annotations

from collections.abc import Callable

from engine.jobs.context import JobContext

Handler = Callable[[JobContext], str | None]
HANDLERS: dict[str, Handler] = {}


def register_handler(kind: str) -> Callable[[Handler], Handler]:
    def decorate(func: Handler) -> Handler:
        if kind in HANDLERS:
            raise ValueError(f"job kind {kind!r} already has a handler")
        HANDLERS[kind] = func
        return func
    return decorate


def load_handlers() -> dict[str, Handler]:
    """Import the handler modules (torch-heavy) only when a worker actually runs jobs."""
    import importlib

    for module in ("engine.jobs.train_job", "engine.jobs.analyze_job", "engine.jobs.export_job"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name != module:
                raise
    return HANDLERS
