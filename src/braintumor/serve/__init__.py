"""Web service and page: ``create_app(settings)`` builds the FastAPI app (``braintumor serve``)."""

from braintumor.serve.app import create_app
from braintumor.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]
