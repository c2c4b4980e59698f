"""HTTP edge helpers: strict JSON, If-Match, query parameters, error mapping."""

from __future__ import annotations

import json

import pytest
from chalice import Response

from chalicelib import errors
from chalicelib.api.http import error_response, etag, if_match, parse_json_body, query


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b'{"a": NaN}', b'{"a": 1, "a": 2}', b"\xff\xfe{}", b"[" * 100_000 + b"]" * 100_000],
    ids=["empty", "truncated", "nan", "duplicate-key", "not-utf8", "deep"],
)
def test_given_bad_json_when_parsed_then_malformed_json(raw: bytes) -> None:
    with pytest.raises(errors.MalformedJsonError):
        parse_json_body(raw, 10**7)


def test_given_a_body_over_the_limit_when_parsed_then_payload_too_large() -> None:
    with pytest.raises(errors.PayloadTooLargeError):
        parse_json_body(b'{"a":"' + b"x" * 100 + b'"}', 50)


@pytest.mark.parametrize("header, expected", [(None, None), ("*", None), ('"7"', 7), (' "12" ', 12)])
def test_given_if_match_when_parsed_then_version_or_none(header, expected) -> None:
    headers = {} if header is None else {"if-match": header}
    assert if_match(headers) == expected


@pytest.mark.parametrize("header", ["7", 'W/"7"', '"0"', '"a"', '"1", "2"'])
def test_given_a_malformed_if_match_when_parsed_then_400_naming_the_header(header: str) -> None:
    with pytest.raises(errors.ValidationError) as caught:
        if_match({"if-match": header})
    assert caught.value.field == "If-Match"


def test_given_an_unknown_query_parameter_then_validation_error_naming_it() -> None:
    with pytest.raises(errors.ValidationError, match="unknown query parameter colour"):
        query({"colour": "x"}, ("fields",))
    assert query({"fields": "name"}, ("fields",)) == {"fields": "name"}


@pytest.mark.parametrize(
    "error, status",
    [
        (errors.ValidationError("x"), 400),
        (errors.MalformedJsonError("x"), 400),
        (errors.PayloadTooLargeError("x"), 413),
        (errors.NotFoundError("x"), 404),
        (errors.PreconditionFailedError("x"), 412),
        (errors.ConflictError("x"), 409),
        (errors.RequestInProgressError("x"), 409),
        (errors.IdempotencyKeyReusedError("x"), 422),
        (errors.ServiceUnavailableError("x"), 503),
        (errors.ThrottledError("x"), 429),
        (errors.IntegrityError("x"), 502),
        (errors.KeyServiceError("x"), 502),
        (errors.StorageError("x"), 502),
        (errors.ConfigurationError("x"), 500),
    ],
)
def test_given_each_error_class_when_mapped_then_status_and_json_code(error, status) -> None:
    response = error_response(error)
    assert response.status_code == status
    assert json.loads(response.body) == {"code": error.code, "message": "x"}
    assert ("Retry-After" in response.headers) == (status in (409, 429, 503))


def test_given_a_version_then_etag_is_a_strong_quoted_tag() -> None:
    assert etag(3) == '"3"'


@pytest.mark.parametrize(
    "inner",
    [
        Response(body={"Code": "MethodNotAllowedError", "Message": "Unsupported method: DELETE"}, status_code=405),
        Response(body="", status_code=204, headers={}),
        Response(body='{"code":"x","message":"x"}', status_code=502, headers={"Content-Type": "application/json"}),
    ],
    ids=["chalice-405", "204", "502"],
)
def test_given_any_answer_when_finished_then_cache_control_no_store(inner: Response) -> None:
    from chalicelib.api.http import finish_response

    response = finish_response({}, lambda _event: inner)
    assert response.headers["Cache-Control"] == "no-store" and response.status_code == inner.status_code
