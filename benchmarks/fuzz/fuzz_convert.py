"""Coverage-guided fuzzing of the whole conversion (issue 7), with atheris (libFuzzer).

Each input is a byte string read as an audit log (split at \\n, as a file is). The harness
feeds it through `Converter` and fails on anything the robustness contract forbids:

* any exception escaping `feed`/`flush` (a bad line must become an `on_error` report), and
  any "internal error" report (what the parser's and the converter's safety nets catch);
* a report without file and line;
* an output line that is not one line, not well-formed XML (lxml) or not valid JSON, or
  whose JSON values differ from what an XML parser reads;
* a broken "no event lost" identity: exec SYSCALL records read != ProcessCreate written
  + rejected with a reason.

Run (see README.md): `python benchmarks/fuzz/fuzz_convert.py -max_total_time=300 -dict=benchmarks/fuzz/audit.dict
benchmarks/fuzz/corpus`. An empty corpus directory is seeded from tests/fixtures first.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["audit2sysmon", "lark"]):
    from audit2sysmon.convert import Converter

from lxml import etree

ROOT = Path(__file__).resolve().parents[2]
SEED_LINES = 12  # lines per seed file cut from the fixtures: small inputs mutate fast
OPTIONS = {"hostname": "fuzz", "machine_id": 1, "passwd": None, "local_users": False}


def check(data: bytes) -> None:
    reports: list = []
    conv = Converter(on_error=reports.append, on_warning=reports.append, path="fuzz.log", **OPTIONS)
    out = []
    for line in data.split(b"\n"):
        out += conv.feed(line)
    out += conv.flush()
    for report in reports:
        if report.path != "fuzz.log" or not isinstance(report.line, int):
            raise AssertionError(f"report without location: {report!r}")
        if "internal" in report.reason:  # the parser's and the converter's safety nets: a bug
            raise AssertionError(f"internal error: {report}")
    stats = conv.stats
    if stats.exec_syscalls != stats.process_create + sum(stats.exec_rejected.values()):
        raise AssertionError(f"identity broken: {stats}")
    if stats.process_create != sum(1 for e in out if e.event_id == 1):
        raise AssertionError(f"ProcessCreate count differs from events written: {stats}")
    for event in out:
        syslog, xml, text = event.to_syslog(), event.to_xml(), event.to_json()
        for line in (syslog, xml, text):
            if line.splitlines() != [line]:
                raise AssertionError(f"not one line: {line!r}")
        root = etree.fromstring(xml.encode("utf-8"))
        data_xml = {d.get("Name"): d.text or "" for d in root.iter("Data")}
        doc = json.loads(text.encode("utf-8"))["Event"]
        if doc["EventData"] != data_xml or doc["System"]["Computer"] != root.findtext("System/Computer"):
            raise AssertionError(f"JSON and XML values differ: {text!r} {xml!r}")


def seed(corpus: Path) -> None:
    """Cut the fixture logs into small seeds, plus hand-made damaged ones."""
    corpus.mkdir(parents=True, exist_ok=True)
    count = 0
    logs = sorted((ROOT / "tests/fixtures").glob("**/*.log")) + sorted((ROOT / "tests/fixtures").glob("**/*.txt"))
    for log in logs:
        if log.name == "sysmon.log":
            continue
        lines = log.read_bytes().split(b"\n")
        for start in range(0, min(len(lines), 400), SEED_LINES):
            (corpus / f"seed-{count:05d}").write_bytes(b"\n".join(lines[start : start + SEED_LINES]))
            count += 1
    print(f"seeded {count} inputs into {corpus}", file=sys.stderr)


def main() -> None:
    dirs = [a for a in sys.argv[1:] if not a.startswith("-")]
    if dirs and (not Path(dirs[0]).exists() or (Path(dirs[0]).is_dir() and not any(Path(dirs[0]).iterdir()))):
        seed(Path(dirs[0]))
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
