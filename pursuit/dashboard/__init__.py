"""``pursuit serve``: a live dashboard of a store, and its JSON API.

``create_app(store_url, token=...)`` makes the FastAPI app (tests and ASGI servers use
it); ``serve`` runs it with uvicorn. Pages follow a run as it goes (they poll a goal's
``version``), a goal's numbers are computed once per change of its trials
(``_views``), and the server is closed to strangers (``_security``).
"""

from pursuit.dashboard._app import create_app
from pursuit.dashboard._serve import serve

__all__ = ["create_app", "serve"]
