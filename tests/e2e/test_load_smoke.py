"""A tiny run of the load script against the local stack: the numbers are printed, not judged."""

from tools.load import OPS, run


def test_given_concurrent_clients_when_the_load_run_is_verified_then_nothing_is_lost_and_no_5xx(local_stack):
    report = run(
        local_stack.writer_url,
        local_stack.reader_url,
        local_stack.dynamodb,
        local_stack.table_name,
        clients=4,
        operations=30,
        max_seconds=120,
        seed=7,
    )

    print(report.render())
    assert report.operations == 4 * 30
    assert report.lost == 0, report.verification.lost
    assert report.server_errors == 0, report.statuses
    assert report.errors() == {}, report.errors()
    assert report.read_mismatches == 0
    assert all(report.by_op[op] > 0 for op in OPS), report.by_op
    assert report.verification.present > 0 and report.verification.gone > 0
