"""The rehearsal's moto server (``make rehearse`` only): moto with the shims its API stages need.

    python -m tools.rehearsal_moto -H 127.0.0.1 -p PORT

Never used by the local stack, the tests' other fixtures or any deployed path; the deployed
documents are not changed, moto's reading of them is:

1. moto's ImportRestApi and PutRestApi accept OpenAPI 3 only, and Chalice (``chalice deploy``)
   and ``chalice package`` write Swagger 2.0: a Swagger 2.0 document is read as OpenAPI 3.0.1
   (the parts moto reads, paths, methods and ``x-amazon-apigateway-integration``, are the same);
2. moto's ImportRestApi wants ``info.description``, which API Gateway does not: absent, it is empty;
3. moto's CloudFormation creates an ``AWS::ApiGateway::RestApi`` without its ``Body``: the body is
   imported into the created API (through 1 and 2), as API Gateway does;
4. moto's CloudFormation leaves a deleted stack's ``AWS::ApiGateway::RestApi`` behind: it is deleted.

What moto then checks of an API is the order and the parameters of the calls: it keeps neither
the resource policy (``x-amazon-apigateway-policy``) nor the endpoint type nor the gateway
responses of a document, enforces no IAM or resource policy, records no tracing, and its
CloudFormation has no ``AWS::ApiGateway::Stage`` (``tools.rehearse`` lists all of it).
"""

from __future__ import annotations

import sys
from typing import Any

from moto.apigateway.models import APIGatewayBackend, RestAPI, apigateway_backends

_installed: list[bool] = []


def as_openapi3(document: dict[str, Any]) -> dict[str, Any]:
    """Shims 1 and 2: the document as moto reads it."""
    document = dict(document)
    if "swagger" in document:
        del document["swagger"]
        document["openapi"] = "3.0.1"
    document["info"] = {"description": "", **document.get("info", {})}
    return document


def install() -> None:
    """Idempotent; patches moto's API Gateway backend class and its CloudFormation model."""
    if _installed:
        return
    _installed.append(True)
    import_rest_api, put_rest_api = APIGatewayBackend.import_rest_api, APIGatewayBackend.put_rest_api
    from_cloudformation = RestAPI.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def importing(self: APIGatewayBackend, api_doc: dict[str, Any], fail_on_warnings: bool) -> RestAPI:
        return import_rest_api(self, as_openapi3(api_doc), fail_on_warnings)

    def putting(self: APIGatewayBackend, function_id: str, api_doc: dict[str, Any], *args: Any, **kw: Any) -> RestAPI:
        return put_rest_api(self, function_id, as_openapi3(api_doc), *args, **kw)

    def with_body(
        cls: type[RestAPI],
        /,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> RestAPI:
        api: RestAPI = from_cloudformation(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        body = cloudformation_json["Properties"].get("Body")
        if body:  # shim 3
            backend = apigateway_backends[account_id][region_name]
            backend.put_rest_api(api.id, body, fail_on_warnings=False, mode="overwrite")
        return api

    def delete(self: RestAPI, account_id: str, region_name: str) -> None:  # shim 4
        apigateway_backends[account_id][region_name].delete_rest_api(self.id)

    RestAPI.delete = delete  # type: ignore[attr-defined]
    APIGatewayBackend.import_rest_api = importing  # type: ignore[method-assign]
    APIGatewayBackend.put_rest_api = putting  # type: ignore[method-assign]
    RestAPI.create_from_cloudformation_json = classmethod(with_body)  # type: ignore[method-assign, assignment]


def main(argv: list[str] | None = None) -> None:
    from tools.motoserver import serve

    install()
    serve(sys.argv[1:] if argv is None else argv, prog="python -m tools.rehearsal_moto")


if __name__ == "__main__":
    main()
