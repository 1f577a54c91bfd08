"""Stripe-shaped API errors raised by handlers and rendered by the server."""

from __future__ import annotations

import json


class ApiError(Exception):
    """An error answered to the client in Stripe's `{"error": {...}}` shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        validation: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}
        # Validation failures happen before the endpoint runs, so Stripe saves no idempotent result.
        self.validation = validation

    def body(self, request_id: str, livemode: bool) -> bytes:
        # code, param and doc_url are not nullable in the spec: Stripe leaves them out when they do not apply.
        error: dict[str, str] = {}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        error["message"] = self.message
        if self.param:
            error["param"] = self.param
        error["request_log_url"] = f"https://dashboard.stripe.com/{'' if livemode else 'test/'}logs/{request_id}"
        error["type"] = self.type
        return json.dumps({"error": error}, separators=(",", ":")).encode()


def invalid(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    """A 400 for a bad parameter, raised before the endpoint does anything."""
    return ApiError(400, message, param=param, code=code or ("parameter_invalid" if param else None),
                    validation=True)


def unknown_param(param: str) -> ApiError:
    return ApiError(400, f"Received unknown parameter: {param}", param=param,
                    code="parameter_unknown", validation=True)


def missing_param(param: str) -> ApiError:
    return ApiError(400, f"Missing required param: {param}.", param=param,
                    code="parameter_missing", validation=True)


def not_found(kind: str, object_id: str, param: str = "id") -> ApiError:
    return ApiError(404, f"No such {kind}: '{object_id}'", param=param, code="resource_missing")
