"""The agent's typed API: models (``models``), the one route table (``routes``), errors with stable
codes (``errors``), transport-independent dispatch (``dispatch``) and the OpenAPI document
(``openapi``). Imports nothing from the agent: the client and the console depend on it safely."""

from .errors import CODES, ApiError
from .models import Caller
from .routes import ROUTES, Route

__all__ = ["CODES", "ApiError", "Caller", "ROUTES", "Route"]
