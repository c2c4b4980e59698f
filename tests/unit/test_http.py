"""HTTP edge helpers: strict JSON, If-Match, typed query parameters, error mapping."""

from __future__ import annotations

import json

import pytest
from chalice import Response

from chalicelib.api import contract
from chalicelib.api.http import error_response, etag, if_match, parse_json_body
from chalicelib.support import errors


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
def test_given_if_match_when_parsed_then_version_or_none(header: str | None, expected: int | None) -> None:
    headers = {} if header is None else {"if-match": header}
    assert if_match(headers) == expected


@pytest.mark.parametrize("header", ["7", 'W/"7"', '"0"', '"a"', '"1", "2"'])
def test_given_a_malformed_if_match_when_parsed_then_400_naming_the_header(header: str) -> None:
    with pytest.raises(errors.ValidationError) as caught:
        if_match({"if-match": header})
    assert caught.value.field == "If-Match"


def test_given_an_unknown_query_parameter_then_validation_error_naming_it() -> None:
    get_person = contract.operation(contract.PERSON, "GET")
    with pytest.raises(errors.ValidationError, match="unknown query parameter colour; allowed: fields"):
        contract.known_query(get_person, {"colour": "x"})
    assert contract.known_query(get_person, {"fields": "name"}) == {"fields": "name"}


def test_given_fields_param_when_parsed_then_known_names_in_order_without_duplicates() -> None:
    assert contract.FIELDS.parse("email, name,email") == ("email", "name")
    with pytest.raises(errors.ValidationError) as caught:
        contract.FIELDS.parse("email,password")
    assert caught.value.field == "fields"


@pytest.mark.parametrize("raw", ["0", "-1", "101", "abc", "1.5", "9" * 12, ""])
def test_given_a_bad_limit_when_parsed_then_validation_error(raw: str) -> None:
    with pytest.raises(errors.ValidationError, match="limit must be an integer from 1 to 100"):
        contract.LIMIT.parse(raw)


@pytest.mark.parametrize("raw, expected", [("1", 1), ("007", 7), ("999999999", 999_999_999)])
def test_given_a_version_param_when_parsed_then_an_int_up_to_nine_digits(raw: str, expected: int) -> None:
    assert contract.VERSION.parse(raw) == expected


def test_given_ids_param_when_parsed_then_distinct_ids_in_order_and_at_most_the_page_size() -> None:
    a, b = "a" * 32, "b" * 32
    assert contract.IDS.parse(f"{b}, {a},{b}") == [b, a]
    assert len(contract.IDS.parse(",".join(f"{n:032x}" for n in range(100)))) == 100
    for raw in ("", ",".join(f"{n:032x}" for n in range(101)), f"{a},{'A' * 32}", f"{a},"):
        with pytest.raises(errors.ValidationError) as caught:
            contract.IDS.parse(raw)
        assert caught.value.field == "ids"


def test_given_every_query_parameter_when_absent_from_its_route_then_the_route_refuses_it() -> None:
    """Each route accepts exactly the query parameters its contract row lists."""
    every = {param.name for op in contract.OPERATIONS.values() for param in op.query}
    for op in contract.OPERATIONS.values():
        own = {param.name for param in op.query}
        for name in every - own:
            with pytest.raises(errors.ValidationError):
                contract.known_query(op, {name: "1"})
        assert contract.known_query(op, {name: "1" for name in own}) == {name: "1" for name in own}


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
def test_given_each_error_class_when_mapped_then_status_and_json_code(error: errors.PiiVaultError, status: int) -> None:
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
