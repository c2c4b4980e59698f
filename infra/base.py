"""The base stack of one environment: KMS keys, tables, the indexer's failure queue, function
roles, logs, alarms, dashboard.

Everything a stage needs is exported as ``pii-vault-<Environment>-<name>``; the stage stacks
(``infra.merge``) import it. Account and region come from pseudo-parameters, per-environment
values from parameters (``infra.params``): nothing here holds an account id.
"""

from __future__ import annotations

from infra.cfn import APP, Template, ref
from infra.dashboard import add_dashboard
from infra.keys import add_keys
from infra.observability import add_observability
from infra.params import base_parameters
from infra.queues import add_queues
from infra.roles import add_roles
from infra.tables import add_tables


def base_template() -> Template:
    template = Template(f"{APP} base stack: KMS keys, tables, failure queue, function roles, logs, alarms, dashboard")
    for name, declaration in base_parameters().items():
        template.parameter(name, declaration)
    template.condition("ManageApiGatewayAccount", {"Fn::Equals": [ref("ManageApiGatewayAccount"), "true"]})
    template.condition("HasAlarmTopic", {"Fn::Not": [{"Fn::Equals": [ref("AlarmTopicArn"), ""]}]})
    add_keys(template)
    add_tables(template)
    add_queues(template)
    add_roles(template)
    add_observability(template)
    add_dashboard(template)
    return template
