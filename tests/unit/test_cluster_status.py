"""The pure side of `dmp-xds cluster`: the warnings of a cluster's status, the shard transfer
mode chosen for tables without a replica identity, a rebalance job's progress."""

from __future__ import annotations

import pytest

from dmp_xds.storage import cluster as c

REFERENCE = c.CitusTable("code", "reference", "<none>", 2, 1, 100)
DISTRIBUTED = c.CitusTable("entry", "distributed", "patient_id", 1, 8, 1000)


def worker(port: int, shards: int = 5, active: bool = True, has_shards: bool = True) -> c.Node:
    return c.Node("10.0.0.1", port, "worker", active, has_shards, shards, shards * 100)


def test_balanced_active_workers_give_no_warning() -> None:
    assert c.balance_warnings([worker(1), worker(2)], [DISTRIBUTED, REFERENCE], []) == []


def test_planned_moves_inactive_and_drained_workers_are_warned() -> None:
    moves = [c.RebalanceMove("entry", 7, 4096, "10.0.0.1:1", "10.0.0.1:3")]
    warnings = c.balance_warnings(
        [worker(1), worker(2, active=False), worker(4, shards=3, has_shards=False)], [DISTRIBUTED, REFERENCE], moves
    )
    assert warnings == [
        "worker 10.0.0.1:2 is inactive",
        "worker 10.0.0.1:4 holds 3 shard placement(s) but takes no new shards (drained?)",
        "shards are unbalanced: the rebalancer would move 1 shard(s) (4096 bytes) to 10.0.0.1:3; "
        "run `dmp-xds cluster rebalance`",
    ]


def test_a_drained_worker_keeping_only_reference_tables_is_fine() -> None:
    assert c.balance_warnings([worker(1), worker(4, shards=1, has_shards=False)], [DISTRIBUTED, REFERENCE], []) == []


def test_no_worker_taking_shards_is_warned() -> None:
    assert c.balance_warnings([worker(1, has_shards=False, shards=0)], [], []) == ["no active worker takes shards"]


def test_transfer_mode_falls_back_to_block_writes_only_when_needed() -> None:
    assert c.transfer_mode_for("auto", []) == "auto"
    assert c.transfer_mode_for("auto", ["event"]) == "block_writes"
    assert c.transfer_mode_for("block_writes", ["event"]) == "block_writes"
    with pytest.raises(c.ClusterError, match="no primary key nor replica identity.*event"):
        c.transfer_mode_for("force_logical", ["event"])
    assert c.transfer_mode_for("auto", [], ["10.0.0.1:3"]) == "block_writes"
    assert c.transfer_mode_for("force_logical", [], []) == "force_logical"
    with pytest.raises(c.ClusterError, match="wal_level is not 'logical' on 10.0.0.1:3"):
        c.transfer_mode_for("force_logical", [], ["10.0.0.1:3"])
    with pytest.raises(c.ClusterError, match="unknown shard transfer mode"):
        c.transfer_mode_for("fast", [])


def test_rebalance_progress_reads_citus_details() -> None:
    details = {
        "task_state_counts": {"done": 3, "error": 1},
        "tasks": [{"state": "done"}, {"state": "error", "message": "could not connect to 10.0.0.1:3"}],
    }
    progress = c.rebalance_progress(4, "failed", details)
    assert progress.done and progress.tasks == {"done": 3, "error": 1}
    assert progress.message == "could not connect to 10.0.0.1:3"
    assert not c.rebalance_progress(5, "running", None).done
