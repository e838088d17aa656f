"""[cluster] settings: a lease shorter than two heartbeats is refused, naming both keys."""

from __future__ import annotations

import pytest

from daemon.config import ClusterSettings, load_settings
from daemon.config.settings import DEFAULT_HEARTBEAT_SECONDS, DEFAULT_LEASE_SECONDS
from daemon.errors import ConfigError


def test_the_defaults_are_a_two_second_heartbeat_and_a_ten_second_lease() -> None:
    settings = load_settings(None, {})
    assert (settings.cluster.heartbeat_seconds, settings.cluster.lease_seconds) == (2.0, 10.0)
    assert (DEFAULT_HEARTBEAT_SECONDS, DEFAULT_LEASE_SECONDS) == (2.0, 10.0)


def test_a_lease_of_exactly_two_heartbeats_is_the_shortest_allowed() -> None:
    assert ClusterSettings(heartbeat_seconds=0.5, lease_seconds=1.0).lease_seconds == 1.0
    with pytest.raises(ConfigError, match=r"cluster\.lease_seconds must be at least twice"):
        ClusterSettings(heartbeat_seconds=0.5, lease_seconds=0.99)


def test_a_heartbeat_must_be_above_zero_and_the_environment_sets_both() -> None:
    with pytest.raises(ConfigError, match=r"cluster\.heartbeat_seconds must be above 0"):
        ClusterSettings(heartbeat_seconds=0, lease_seconds=1)
    env = {"ROSTERDROP_CLUSTER_HEARTBEAT_SECONDS": "0.3", "ROSTERDROP_CLUSTER_LEASE_SECONDS": "1.5"}
    cluster = load_settings(None, env).cluster
    assert (cluster.heartbeat_seconds, cluster.lease_seconds) == (0.3, 1.5)
