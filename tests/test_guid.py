"""Sysmon GUIDs: our encoder must reproduce real Sysmon GUIDs from their decoded parts.

Every GUID in two real Sysmon logs is decoded here with the standard library (uuid's
little-endian view, struct) -- an implementation independent of ours -- and re-encoded.
"""

from __future__ import annotations

import hashlib
import re
import struct
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit2sysmon.errors import ConfigError
from audit2sysmon.mapping.guids import event_key, machine_id_from_node
from audit2sysmon.sysmon.guid import ZERO_GUID, logon_guid, machine_id_from_hex, sysmon_guid

FIXTURES = Path(__file__).parent / "fixtures"
REAL_LOGS = (
    FIXTURES / "reference" / "sysmon-linux-samples.log",
    FIXTURES / "live" / "pair-dev" / "sysmon.log",
)
GUID_DATA = re.compile(r'<Data Name="(\w+(?:Guid|GUID))">(\{[0-9a-f-]{36}\})</Data>')


def decode(guid: str) -> tuple[int, int, int]:
    """(machine id, seconds, key) of a GUID string, via uuid's bytes_le view."""
    return struct.unpack("<IIQ", uuid.UUID(guid).bytes_le)


def _real_guids():
    seen = set()
    for path in REAL_LOGS:
        for name, guid in GUID_DATA.findall(path.read_text("utf-8")):
            if guid not in seen:
                seen.add(guid)
                yield pytest.param(name, guid, id=f"{name}={guid}")


REAL_GUIDS = list(_real_guids())


def test_real_logs_hold_many_guids():
    names = {p.values[0] for p in REAL_GUIDS}
    assert len(REAL_GUIDS) > 40 and {"ProcessGuid", "ParentProcessGuid", "LogonGuid"} <= names


@pytest.mark.parametrize(("name", "guid"), REAL_GUIDS)
def test_encoder_reproduces_every_real_guid(name, guid):
    machine, secs, key = decode(guid)
    assert sysmon_guid(machine, secs, key) == guid
    if name == "LogonGuid":
        assert logon_guid(machine, secs, key & 0xFFFFFFFF, key >> 32) == guid


@pytest.mark.parametrize(
    ("parts", "guid"),
    [
        # The worked example of Sysmon's GUID layout (UtcTime 2021-10-26 20:11:11.159) and its parent.
        ((0x2424FAA4, 1635279071, 0x0000558BB6205B31), "{2424faa4-60df-6178-315b-20b68b550000}"),
        ((0x2424FAA4, 0x617860B3, 0x0000561060A71705), "{2424faa4-60b3-6178-0517-a76010560000}"),
        ((0, 0, 0), ZERO_GUID),
    ],
)
def test_process_guid_examples(parts, guid):
    assert sysmon_guid(*parts) == guid


@pytest.mark.parametrize(
    ("machine", "logon_secs", "uid", "tty", "guid"),
    [
        (0x2424FAA4, 0, 1000, 0, "{2424faa4-0000-0000-e803-000000000000}"),  # no utmp match
        (0x8EF76B8E, 0, 0, 1, "{8ef76b8e-0000-0000-0000-000001000000}"),  # root on pts/1
        (0x3E748DCD, 0x693465F1, 1000, 2, "{3e748dcd-65f1-6934-e803-000002000000}"),  # logged in
        (0x717481A5, 0, 33, 0, "{717481a5-0000-0000-2100-000000000000}"),  # www-data, no tty
        (0x3D2A1117, 0x6168D3B6, 0, 2, "{3d2a1117-d3b6-6168-0000-000002000000}"),  # sample 2
    ],
)
def test_logon_guid_examples(machine, logon_secs, uid, tty, guid):
    assert logon_guid(machine, logon_secs, uid, tty) == guid


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1))
def test_sysmon_guid_is_the_documented_uuid_layout(machine, secs, key):
    expected = "{%s}" % uuid.UUID(bytes_le=struct.pack("<IIQ", machine, secs, key))
    assert sysmon_guid(machine, secs, key) == expected


def test_out_of_range_parts_are_refused():
    with pytest.raises(ValueError):
        sysmon_guid(2**32, 0, 0)
    with pytest.raises(ValueError):
        sysmon_guid(0, -1, 0)
    with pytest.raises(ValueError):
        logon_guid(0, 0, 2**32, 0)


@pytest.mark.parametrize(
    "text",
    [
        "2424faa4",
        "2424FAA4",
        "2424faa4c3e94bd2a8b7e1f50a2b3c4d\n",
        "{2424faa4-60df-6178-315b-20b68b550000}",
    ],
)
def test_machine_id_from_hex(text):
    assert machine_id_from_hex(text) == 0x2424FAA4


@pytest.mark.parametrize("text", ["", "2424faa", "2424fagg", "0x2424faa4", "-2424faa"])
def test_machine_id_from_hex_refuses_bad_text(text):
    with pytest.raises(ConfigError):
        machine_id_from_hex(text)


def test_machine_id_from_node_is_the_documented_hash():
    # docs/output-format.md: BLAKE2b-32 of the UTF-8 node name, person "a2s-machine", big-endian.
    for node in ("vm", "ip-172-31-60-25", "hellosplunk-VirtualBox", "caf\udce9"):
        raw = node.encode("utf-8", "surrogateescape")
        digest = hashlib.blake2b(raw, digest_size=4, person=b"a2s-machine")
        assert machine_id_from_node(node) == int(digest.hexdigest(), 16)
    nodes = [f"host-{i}" for i in range(2000)]
    assert len({machine_id_from_node(n) for n in nodes}) == len(nodes)


IDENTITY = st.tuples(
    st.one_of(st.none(), st.text()),
    st.integers(0, 2**45),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**22),
)


@given(IDENTITY)
def test_event_key_is_pure_and_looks_like_a_user_space_address(identity):
    key = event_key(*identity)
    assert key == event_key(*identity)
    assert 0 <= key < 2**48
    # The key fits the GUID layout whatever it is.
    assert decode(sysmon_guid(1, 2, key)) == (1, 2, key)


@given(IDENTITY, IDENTITY)
def test_distinct_events_get_distinct_keys(a, b):
    if (a[0] or "", *a[1:]) != (b[0] or "", *b[1:]):
        assert event_key(*a) != event_key(*b)


def test_event_key_separates_each_part():
    base = ("vm", 1795852575593, 2293, 4004)
    variants = [
        ("vm2", *base[1:]),
        ("vm", base[1] + 1, *base[2:]),
        (*base[:2], 2294, 4004),
        (*base[:3], 4005),
    ]
    keys = {event_key(*v) for v in [base, *variants]}
    assert len(keys) == 5
