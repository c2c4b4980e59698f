"""Settings: the role decides the stage; a missing or unknown one is a startup error."""

from __future__ import annotations

import pytest
from chalice import Chalice

from chalicelib.stages import settings_for
from chalicelib.stages.app import create_app
from chalicelib.support.config import Settings
from chalicelib.support.errors import ConfigurationError


@pytest.mark.parametrize("env", [{}, {"PII_VAULT_ROLE": ""}, {"PII_VAULT_ROLE": "admin"}, {"PII_VAULT_ROLE": "both"}])
def test_given_no_valid_role_when_settings_are_read_then_a_clear_startup_error(env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="PII_VAULT_ROLE must be one of writer, reader"):
        settings_for(env)


def test_given_the_environment_when_read_then_defaults_apply() -> None:
    settings = settings_for({"PII_VAULT_ROLE": "reader", "AWS_DEFAULT_REGION": "eu-west-1"})
    assert (settings.table_name, settings.kms_key_id, settings.region) == ("pii-vault", "alias/pii-vault", "eu-west-1")


def _routes(app: Chalice) -> set[tuple[str, str]]:
    return {(path, method) for path, methods in app.routes.items() for method in methods}


def test_given_each_role_when_the_app_is_built_then_only_that_roles_routes_exist() -> None:
    writer = _routes(create_app(settings=Settings("writer")))
    reader = _routes(create_app(settings=Settings("reader")))
    assert {method for _, method in writer} == {"POST", "PUT", "PATCH", "DELETE"}
    assert {method for _, method in reader} == {"GET", "POST"}
    assert {path for path, method in reader if method == "POST"} == {"/customers/{customer_id}/people/search"}
    assert not writer & reader


def test_given_the_job_roles_then_their_apps_have_no_routes_and_an_unknown_role_fails() -> None:
    stream = "arn:aws:dynamodb:us-east-1:123456789012:table/pii-vault/stream/2026-01-01T00:00:00.000"
    assert _routes(create_app(settings=Settings("indexer", stream_arn=stream))) == set()
    assert _routes(create_app(settings=Settings("offboard"))) == set()
    with pytest.raises(ConfigurationError):
        create_app(settings=Settings("indexer"))  # the stream handler needs the stream
    with pytest.raises(ConfigurationError, match="PII_VAULT_ROLE must be one of"):
        create_app(settings=Settings("janitor"))


def test_given_building_an_app_then_no_aws_client_is_created() -> None:
    # Clients are built on the first request: importing app.py must not need AWS.
    create_app(settings=Settings("writer", region=None))


@pytest.mark.parametrize("service", ["kms", "dynamodb"])
def test_given_the_aws_clients_then_timeouts_are_below_the_lambda_timeout_with_standard_retries(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    from pathlib import Path

    from chalicelib.stages.app import _client

    # Static credentials: otherwise botocore would look for them on the network (IMDS).
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    lambda_timeout = json.loads((Path(__file__).parents[2] / ".chalice" / "config.json").read_text())["lambda_timeout"]
    config = _client(service, Settings("writer", region="us-east-1")).meta.config
    assert config.retries["mode"] == "standard" and config.retries["total_max_attempts"] == 3
    worst_case = config.retries["total_max_attempts"] * (config.connect_timeout + config.read_timeout)
    assert worst_case < lambda_timeout


@pytest.mark.parametrize("value", ["abc", "-1"])
def test_given_a_bad_integer_setting_then_a_clear_startup_error(value: str) -> None:
    with pytest.raises(ConfigurationError, match="PII_VAULT_IDEMPOTENCY_TTL_SECONDS"):
        settings_for({"PII_VAULT_ROLE": "writer", "PII_VAULT_IDEMPOTENCY_TTL_SECONDS": value})


def test_given_no_cache_variables_then_the_safe_default_bounds_apply() -> None:
    writer, reader = settings_for({"PII_VAULT_ROLE": "writer"}), settings_for({"PII_VAULT_ROLE": "reader"})
    assert (writer.writer_key_cache_seconds, writer.writer_key_cache_max_records) == (3600, 100_000)
    assert (reader.reader_key_cache_seconds, reader.reader_key_cache_max_entries) == (300, 1000)


def test_given_cache_variables_then_they_are_read_and_zero_is_allowed() -> None:
    env = {
        "PII_VAULT_WRITER_KEY_CACHE_SECONDS": "0",
        "PII_VAULT_WRITER_KEY_CACHE_MAX_RECORDS": "50",
        "PII_VAULT_READER_KEY_CACHE_SECONDS": " 60 ",
        "PII_VAULT_READER_KEY_CACHE_MAX_ENTRIES": "0",
    }
    writer, reader = settings_for(env, role="writer"), settings_for(env, role="reader")
    assert (writer.writer_key_cache_seconds, writer.writer_key_cache_max_records) == (0, 50)
    assert (reader.reader_key_cache_seconds, reader.reader_key_cache_max_entries) == (60, 0)


def test_given_a_stage_then_it_reads_only_the_variables_it_declares() -> None:
    """A stage that read a setting it does not declare would depend on a variable its template never sets."""
    env = {"PII_VAULT_READER_KEY_CACHE_SECONDS": "five", "PII_VAULT_FLEET_TABLE": "other"}
    writer = settings_for(env, role="writer")  # not the writer's variables: not read, so no error
    with pytest.raises(ConfigurationError, match="the writer stage does not declare PII_VAULT_FLEET_TABLE"):
        _ = writer.fleet_table_name
    with pytest.raises(ConfigurationError, match="PII_VAULT_READER_KEY_CACHE_SECONDS"):
        settings_for(env, role="reader")
    assert Settings("writer").fleet_table_name == "pii-vault-fleet"  # built in code: every field readable


@pytest.mark.parametrize(
    "variable, value",
    [
        ("PII_VAULT_WRITER_KEY_CACHE_SECONDS", "-1"),
        ("PII_VAULT_WRITER_KEY_CACHE_SECONDS", "3601"),
        ("PII_VAULT_WRITER_KEY_CACHE_MAX_RECORDS", str(2**24 + 1)),
        ("PII_VAULT_WRITER_KEY_CACHE_MAX_RECORDS", "1e3"),
        ("PII_VAULT_READER_KEY_CACHE_SECONDS", "five"),
        ("PII_VAULT_READER_KEY_CACHE_MAX_ENTRIES", "²"),
    ],
)
def test_given_an_out_of_range_cache_bound_then_a_startup_error_names_the_variable(variable: str, value: str) -> None:
    role = "writer" if "WRITER" in variable else "reader"
    with pytest.raises(ConfigurationError, match=variable):
        settings_for({"PII_VAULT_ROLE": role, variable: value})


def test_given_the_committed_stage_config_then_each_stage_sets_its_own_cache_bounds() -> None:
    import json
    from pathlib import Path

    stages = json.loads((Path(__file__).resolve().parents[2] / ".chalice" / "config.json").read_text())["stages"]
    writer = settings_for(stages["writer"]["environment_variables"])
    reader = settings_for(stages["reader"]["environment_variables"])
    assert writer.writer_key_cache_seconds > 0 and writer.writer_key_cache_max_records > 0
    assert reader.reader_key_cache_seconds > 0 and reader.reader_key_cache_max_entries > 0
    assert not any("READER" in name for name in stages["writer"]["environment_variables"])
    assert not any("WRITER" in name for name in stages["reader"]["environment_variables"])


KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/0f6c2a1e-8b3d-4c7a-9e52-7d1b4a6f3c80"


@pytest.mark.parametrize(
    "key_id",
    ["alias/pii-vault", "arn:aws:kms:us-east-1:111122223333:alias/pii-vault", "0f6c2a1e-8b3d-4c7a-9e52-7d1b4a6f3c80"],
)
def test_given_a_deployed_function_when_the_key_is_not_an_arn_then_it_refuses_to_start(key_id: str) -> None:
    env = {"PII_VAULT_ROLE": "reader", "AWS_LAMBDA_FUNCTION_NAME": "pii-vault-reader", "PII_VAULT_KMS_KEY_ID": key_id}
    with pytest.raises(ConfigurationError, match="PII_VAULT_KMS_KEY_ID must be the key ARN"):
        settings_for(env)


def test_given_a_deployed_function_with_a_key_arn_then_it_starts_and_local_runs_may_use_the_alias() -> None:
    deployed = {
        "PII_VAULT_ROLE": "writer",
        "AWS_LAMBDA_FUNCTION_NAME": "pii-vault-writer",
        "PII_VAULT_KMS_KEY_ID": KEY_ARN,
    }
    assert settings_for(deployed).kms_key_id == KEY_ARN
    assert settings_for({"PII_VAULT_ROLE": "writer"}).kms_key_id == "alias/pii-vault"
