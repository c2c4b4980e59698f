"""The ``python -m infra`` commands that talk to AWS: ``chalice-project``, ``post-deploy``, ``guard``.

Credentials, region and endpoint come from the environment, as for the AWS CLI and Chalice
(``AWS_PROFILE``, ``AWS_REGION``, ``AWS_ENDPOINT_URL`` for a local moto). boto3 is imported here
only, when one of these runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from chalicelib.stages import STAGE_NAMES
from infra import postdeploy
from infra.cfn import TemplateError
from infra.chalice_config import chalice_stage
from infra.chalice_project import base_outputs, deployments, write_project
from infra.guards import GuardError, refuse_chalice_deploy, refuse_package_deploy


def _client(service: str) -> Any:
    import boto3

    return boto3.session.Session().client(service)


def run(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if args.command == "guard":
            if args.path == "chalice":
                refuse_chalice_deploy(_client("cloudformation"), _client("lambda"), args.env)
            else:
                refuse_package_deploy(_client("lambda"), args.env)
            print(f"{args.env}: nothing deployed by the other path; {args.path} may deploy it")
        elif args.command == "chalice-project":
            refuse_chalice_deploy(_client("cloudformation"), _client("lambda"), args.env)
            outputs = base_outputs(_client("cloudformation"), args.env)
            project = write_project(args.env, outputs, out=args.out, params_dir=args.params_dir)
            print(f"wrote {project} (stages {', '.join(f'{args.env}-{s}' for s in STAGE_NAMES)})")
        else:
            refuse_chalice_deploy(_client("cloudformation"), _client("lambda"), args.env)
            outputs = base_outputs(_client("cloudformation"), args.env)
            stages = STAGE_NAMES if args.stage == "all" else (args.stage,)
            clients = postdeploy.Clients(_client("lambda"), _client("apigateway"))
            for deployment in deployments(args.env, outputs, stages, args.params_dir):
                print(f"post-deploy {chalice_stage(deployment)}")
                postdeploy.apply(deployment, clients, args.out / args.env)
    except (GuardError, TemplateError, postdeploy.PostDeployError, OSError, ValueError) as exc:
        print(f"infra: error: {exc}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as exc:
        print(f"infra: AWS error: {exc}", file=sys.stderr)
        return 1
    return 0
