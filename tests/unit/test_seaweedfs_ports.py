"""The embedded SeaweedFS gets a free, valid port for every listener, gRPC included (never an implicit + 10000)."""

from __future__ import annotations

import socket

from ragbus.stack.process import free_ports, port_in_use
from ragbus.stack.servers import seaweedfs_port_flags

SERVICES = ("s3", "master", "volume", "filer", "admin")


def _ports(flags: list[str]) -> dict[str, int]:
    return {name.lstrip("-"): int(value) for name, value in (flag.split("=", 1) for flag in flags)}


def test_every_seaweedfs_listener_has_its_own_free_port_within_range() -> None:
    for _ in range(20):  # many draws: an implicit + 10000 above 55535 or a repeat would show
        ports = _ports(seaweedfs_port_flags(8333))
        for service in SERVICES:  # a named gRPC port: SeaweedFS never derives one as port + 10000
            assert f"{service}.port.grpc" in ports, service
        assert ports["s3.port.iceberg"] == 0 and ports["s3.port.lance"] == 0  # fixed 8181 / 9101 otherwise
        listening = [port for port in ports.values() if port]
        assert len(listening) == len(set(listening)) == 11
        assert all(1024 < port <= 65535 for port in listening)
        assert ports["s3.port"] == 8333
        assert not any(port_in_use(port) for port in listening if port != 8333)


def test_free_ports_are_distinct_and_skip_the_ones_named() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        held = taken.getsockname()[1]
        ports = free_ports(50, besides=[held])
    assert len(set(ports)) == 50
    assert held not in ports
