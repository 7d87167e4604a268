"""Errors as JSON: ``{"error": {"code": "...", "message": "..."}}``.

Every refusal has a stable ``code`` (snake case, documented in docs/http.md)
and an HTTP status. mqlog errors map by class (the first match along the
class's MRO in :data:`ERROR_CODES`); a request that does not fit the API's
schema is ``invalid_request`` (400); anything else is ``internal_error``
(500, logged with its traceback, the message not shown to the client).
"""

from __future__ import annotations

import logging

import pydantic
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

import mqlog.errors as errors

_log = logging.getLogger("mqlog.server.http")

#: mqlog error class -> (HTTP status, code). Subclasses not listed take their
#: nearest listed base class's entry.
ERROR_CODES: dict[type[BaseException], tuple[int, str]] = {
    errors.UnknownTopicError: (404, "unknown_topic"),
    errors.UnknownPartitionError: (404, "unknown_partition"),
    errors.UnknownGroupError: (404, "unknown_group"),
    errors.TopicExistsError: (409, "topic_exists"),
    errors.GroupNotEmptyError: (409, "group_not_empty"),
    errors.DeliveryLostError: (409, "receipt_stale"),
    errors.OffsetOutOfRangeError: (416, "offset_out_of_range"),
    errors.CorruptRecordError: (500, "corrupt_record"),
    errors.StorageFailedError: (500, "storage_failed"),
    errors.RecordTooLargeError: (413, "record_too_large"),
    errors.InvalidTopicError: (400, "invalid_topic"),
    errors.ConfigError: (400, "invalid_argument"),
    errors.ReadOnlyError: (403, "read_only"),
    errors.DiskFullError: (507, "disk_full"),
    errors.LogClosedError: (503, "unavailable"),
    errors.MqlogError: (400, "bad_request"),
}


class ApiError(Exception):
    """A refusal no mqlog error names (a request over a limit, a malformed
    receipt handle): answered with its own status and stable code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class ErrorDetail(pydantic.BaseModel):
    code: str
    message: str


class ErrorBody(pydantic.BaseModel):
    """The body of every error response."""

    error: ErrorDetail


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def status_and_code(exc: BaseException) -> tuple[int, str]:
    """The (status, code) of an mqlog error (its nearest class in ERROR_CODES)."""
    for cls in type(exc).__mro__:
        if cls in ERROR_CODES:
            return ERROR_CODES[cls]
    return 500, "internal_error"


#: Responses every route may give, for the OpenAPI document.
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorBody} for status in (400, 401, 403, 404, 409, 413, 503)}


def install_error_handlers(app: FastAPI) -> None:
    """Answer mqlog errors, schema failures and HTTP errors as :class:`ErrorBody`."""

    async def mqlog_error(request: Request, exc: Exception) -> JSONResponse:
        status, code = status_and_code(exc)
        return error_response(status, code, str(exc))

    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, str(exc))

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        where = "; ".join(f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
                          for error in exc.errors())
        return error_response(400, "invalid_request", where or "invalid request")

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized",
                413: "request_too_large"}.get(exc.status_code, "http_error")
        response = error_response(exc.status_code, code, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        _log.exception("%s %s failed", request.method, request.url.path)
        return error_response(500, "internal_error", "internal error (logged by the server)")

    app.add_exception_handler(errors.MqlogError, mqlog_error)
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
