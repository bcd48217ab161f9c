"""The OpenAPI 3.1 document, generated from the route table (``talgate api schema``)."""

from __future__ import annotations

from pydantic.json_schema import models_json_schema

from .errors import CODES
from .models import ErrorResponse
from .routes import PREFIX, ROUTES

REF = "#/components/schemas/{model}"


def document(version: str = "1") -> dict:
    requests = {r.request for r in ROUTES if r.request is not None}
    responses = {r.response for r in ROUTES} | {ErrorResponse}
    modes = [(m, "validation") for m in sorted(requests, key=lambda m: m.__name__)]
    modes += [(m, "serialization") for m in sorted(responses, key=lambda m: m.__name__)]
    keys, defs = models_json_schema(modes, ref_template=REF)
    schemas = dict(sorted(defs.get("$defs", {}).items()))
    paths: dict[str, dict] = {}
    for r in ROUTES:
        op: dict = {"operationId": r.handler, "summary": r.summary,
                    "tags": ["write" if r.write else "read"],
                    "x-talgate-write": r.write}
        if r.request is not None and r.method == "GET":
            props = schemas[r.request.__name__].get("properties", {})
            op["parameters"] = [{"name": k, "in": "query", "required": False, "schema": v}
                                for k, v in props.items()]
        elif r.request is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"$ref": REF.format(model=r.request.__name__)}}}}
        err = {"content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorResponse")}}}}
        op["responses"] = {"200": {"description": "OK", "content": {"application/json": {
            "schema": {"$ref": REF.format(model=r.response.__name__)}}}},
            "default": {"description": "an error with a stable code", **err}}
        paths.setdefault(PREFIX + r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "talgate agent API", "version": version,
                 "description": "HTTP+JSON over the agent's Unix sockets (read-write and read-only) or TCP with "
                                "a bearer token. Write operations (x-talgate-write) are refused on the read-only "
                                "socket with code read_only. Clients act on error codes, never on messages."},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": schemas},
        "x-talgate-error-codes": {c: {"status": s, "meaning": d} for c, (s, d) in CODES.items()},
    }
