"""How fast the Sysmon configuration engine refuses hostile files and decides events.

Prints, for each hostile input of tests/test_config_reader.py, the time `load_config` takes
to refuse it (best of 5), then the time to read Microsoft's main.xml and the cost of
`decide` per event with it and with collect-all, over the events of a real capture.
Nothing here is a test: the figures depend on the machine and the build.

Usage:
    python benchmarks/config.py
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import audit2sysmon
from audit2sysmon import convert
from audit2sysmon.errors import ConfigError
from audit2sysmon.sysmon.config import load_config

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
HEADER = '<Sysmon schemaversion="4.90"><EventFiltering><ProcessCreate onmatch="include"><Image>'
FOOTER = "</Image></ProcessCreate></EventFiltering></Sysmon>"


def best_of(runs: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def refusal(data: bytes | Path) -> Callable[[], object]:
    def attempt() -> object:
        try:
            load_config(data)
        except ConfigError as error:
            return error
        raise SystemExit(f"not refused: {data!r:.60}")

    return attempt


def main() -> None:
    print(f"audit2sysmon {audit2sysmon.__version__} ({audit2sysmon.build()})")
    laughs = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10 if i else "lol"}">' for i in range(10))
    hostile = {
        "billion laughs": f"<!DOCTYPE Sysmon [{laughs}]>{HEADER}&l9;{FOOTER}".encode(),
        "external entity": f'<!DOCTYPE Sysmon [<!ENTITY x SYSTEM "file:///etc/passwd">]>{HEADER}&x;{FOOTER}'.encode(),
        "100,000-deep nesting": (HEADER + "<a>" * 100_000 + "</a>" * 100_000 + FOOTER).encode(),
        "invalid UTF-8 (1 MiB)": (HEADER + "x" * (1 << 20) + FOOTER).encode().replace(b"x", b"\xff", 1),
        "100 MB in memory": b" " * (100 * 1024 * 1024),
    }
    with tempfile.TemporaryDirectory() as directory:
        sparse = Path(directory) / "huge.xml"
        with open(sparse, "wb") as file:
            file.truncate(100 * 1024 * 1024)
        cases: dict[str, bytes | Path] = {**hostile, "100 MB file": sparse}
        for name, data in cases.items():
            print(f"refuse {name:<24} {best_of(5, refusal(data)) * 1000:8.2f} ms")

    main_xml = FIXTURES / "config" / "main.xml"
    print(f"read main.xml{'':18} {best_of(5, lambda: load_config(main_xml)) * 1000:8.2f} ms")
    with open(FIXTURES / "live" / "busy-raw" / "audit.log", "rb") as lines:
        events = [(e.event_id, dict(e.fields)) for e in convert(lines, hostname="vm", machine_id="00000000",
                                                               passwd=None, local_users=False)]  # fmt: skip
    for name in ("main.xml", "collect-all.xml"):
        decide = load_config(FIXTURES / "config" / name).decide
        seconds = best_of(5, lambda: [decide(event_id, fields) for event_id, fields in events])  # noqa: B023
        print(f"decide with {name:<19} {seconds / len(events) * 1e6:8.2f} µs per event ({len(events)} events)")


if __name__ == "__main__":
    main()
