"""The HTTP shell: body reading, the error middleware, msgpack responses, routes."""

from .body import read_body, read_request
from .middleware import access_log_middleware, error_middleware, route_name
from .responses import error_response, respond
from .routes import add_routes, authenticate

__all__ = [
    "read_body", "read_request", "access_log_middleware", "error_middleware", "route_name",
    "error_response", "respond", "add_routes", "authenticate",
]
