"""What the API's routes share, injected with ``Depends``: the components, the library, the model loader."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from rag.api.loader import ModelLoader
from rag.components import Components
from rag.library import Library


@dataclass(frozen=True)
class Services:
    """One server's :class:`Components` (one model, one queue), its :class:`Library` and its :class:`ModelLoader`."""

    components: Components
    library: Library
    loader: ModelLoader

    def attach(self, app: FastAPI) -> None:
        """Make these the services of ``app``'s routes."""
        app.state.services = self


def services(request: Request) -> Services:
    """The services of the app serving ``request`` (see :meth:`Services.attach`)."""
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(services)]
