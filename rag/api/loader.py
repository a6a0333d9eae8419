"""Loading the models in the background while the API already answers (``/health`` says when ready)."""

from __future__ import annotations

import logging
import threading

from rag.api.errors import ApiError
from rag.components import Components

log = logging.getLogger(__name__)


class ModelLoader:
    """Loads the models once in the background; requests that need them get 503 until then."""

    def __init__(self, components: Components) -> None:
        self.components = components
        self.error: Exception | None = None
        self._ready = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._load, name="model-loader", daemon=True).start()

    def _load(self) -> None:
        try:
            self.components.preload()
        except Exception as exc:  # noqa: BLE001 - reported on every request
            log.exception("loading the models failed")
            self.error = exc
        finally:
            self._ready.set()

    @property
    def ready(self) -> bool:
        """Loaded without error (a missing index does not count as an error)."""
        return self._ready.is_set() and self.error is None

    def require(self) -> None:
        """Raise 503 while loading (or when loading failed)."""
        if not self._ready.is_set():
            error = ApiError(503, "the models are still loading; try again shortly", "server_error", "model_not_ready")
            error.headers["Retry-After"] = "10"
            raise error
        if self.error is not None:
            raise ApiError(503, f"the models could not be loaded: {self.error}", "server_error", "model_not_ready")
