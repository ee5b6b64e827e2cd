"""audit2sysmon.spark on a real local Spark: per host, the command's bytes.

A fleet of hosts is built from the real captures (tests/spark_fleet.py: other names, clocks,
accounts, machine ids, rotated sets with compressed members, one damaged host, two hosts whose
passwd file the command refuses). For every host, what Spark writes is compared byte for byte
with what `python -m audit2sysmon HOSTDIR` writes, and its statistics with the command's
`--stats`. Needs Java (PySpark starts a JVM): the tests skip, saying so, where there is none.
"""

from __future__ import annotations

import io
import os
import random
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from lxml import etree
from spark_fleet import GARBAGE, Host, build_fleet

from audit2sysmon import Options
from audit2sysmon.inputs import open_stream
from audit2sysmon.sysmon import SCHEMAS

JAVA = shutil.which("java") or (os.environ.get("JAVA_HOME") and Path(os.environ["JAVA_HOME"], "bin", "java").exists())
needs_java = pytest.mark.skipif(not JAVA, reason="PySpark needs a Java runtime (java on PATH or JAVA_HOME); CI installs openjdk-17-jre-headless")
UTC = ZoneInfo("UTC")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def spark():
    if not JAVA:
        pytest.skip("PySpark needs a Java runtime (java on PATH or JAVA_HOME)")
    from pyspark.sql import SparkSession

    # Python workers run PYSPARK_PYTHON (default: python3 on PATH): this interpreter, which
    # imports the audit2sysmon under test.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("audit2sysmon-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> tuple[Path, list[Host]]:
    root = tmp_path_factory.mktemp("fleet")
    return root, build_fleet(root)


def run_cli(host: Host, *extra: str) -> subprocess.CompletedProcess[bytes]:
    """`python -m audit2sysmon HOSTDIR` with the host's options, as a user would run it."""
    command = [sys.executable, "-m", "audit2sysmon", str(host.folder), *host.cli_args(), *extra]
    return subprocess.run(command, capture_output=True, check=False, cwd=ROOT)


def cli_outputs(hosts: list[Host], *extra: str) -> dict[str, subprocess.CompletedProcess[bytes]]:
    with ThreadPoolExecutor(2) as pool:
        return dict(zip((h.name for h in hosts), pool.map(lambda h: run_cli(h, *extra), hosts)))


@pytest.fixture(scope="module")
def cli(fleet):
    return cli_outputs(fleet[1], "--stats")


def spark_options(hosts: list[Host]) -> dict[str, object]:
    """convert_hosts/convert_lines keywords giving each host the options of its command."""
    return {
        "options": Options(tz=UTC, local_users=False),
        "passwd": {h.name: str(h.passwd) for h in hosts if h.passwd is not None},
        "machine_ids": {h.name: h.machine_id for h in hosts if h.machine_id is not None},
    }


@pytest.fixture(scope="module")
def converted(spark, fleet):
    from pyspark.sql import functions as F

    from audit2sysmon.spark import convert_hosts

    root, hosts = fleet
    result = convert_hosts(spark, str(root / "logs"), **spark_options(hosts))
    rows = result.events.withColumn("task", F.spark_partition_id()).collect()
    return result, rows, {row.host: row for row in result.stats().collect()}


def by_host(rows) -> dict[str, bytes]:
    """Each host's lines in the order the job produced them, as the command writes them."""
    out: dict[str, list[bytes]] = defaultdict(list)
    for row in rows:
        out[row.host].append(row.line.encode("utf-8") + b"\n")
    return {host: b"".join(lines) for host, lines in out.items()}


@needs_java
def test_every_host_gets_the_commands_bytes(fleet, cli, converted):
    _, hosts = fleet
    _, rows, _ = converted
    got = by_host(rows)
    for host in hosts:
        done = cli[host.name]
        assert done.returncode == (2 if host.refused else 1 if host.damaged else 0), done.stderr
        assert got.get(host.name, b"") == done.stdout, host.name
    converted_hosts = [h for h in hosts if not h.refused]
    assert all(got[h.name].count(b"<EventID>1</EventID>") >= 20 for h in converted_hosts)
    assert set(got) == {h.name for h in converted_hosts}


@needs_java
def test_a_host_is_one_task_and_large_hosts_spread(fleet, converted):
    _, hosts = fleet
    _, rows, _ = converted
    tasks = defaultdict(set)
    for row in rows:
        tasks[row.host].add(row.task)
    assert all(len(found) == 1 for found in tasks.values()), tasks
    busy = [h.name for h in hosts[:2]]  # the two 13,754-line hosts: each alone in its task
    (first,), (second,) = tasks[busy[0]], tasks[busy[1]]
    assert first != second
    assert not [h for h, found in tasks.items() if h not in busy and found & {first, second}]


@needs_java
def test_record_ids_count_up_per_host_in_output_order(converted):
    _, rows, _ = converted
    ids = defaultdict(list)
    for row in rows:
        ids[row.host].append(row.EventRecordID)
    assert all(found == list(range(1, len(found) + 1)) for found in ids.values())


def parse_stats(stderr: str) -> dict[str, int]:
    """The figures of the command's --stats report."""
    figures = {}
    for label, key in (
        (r"lines read \(\d+ files?\)", "lines"),
        (r"records", "records"),
        (r"skipped \(blank, comment, separator\)", "skipped"),
        (r"rejected \(malformed\)", "rejected"),
        (r"audit events", "audit_events"),
        (r"successful execve/execveat", "exec_syscalls"),
        (r"ProcessCreate events written", "process_create"),
        (r"events written", "events_written"),
    ):
        match = re.search(rf"^\s+{label}\s+(\d+)$", stderr, re.MULTILINE)
        assert match is not None, (label, stderr)
        figures[key] = int(match[1])
    return figures


def parse_counts(stderr: str, title: str) -> dict[str, int]:
    """One list of the command's --stats report (`count  reason` lines under `title:`)."""
    lines = stderr.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == f"{title}:"), None)
    counts = {}
    for line in lines[start + 1:] if start is not None else []:
        match = re.match(r"^\s+(\d+)  (.+)$", line)
        if match is None:
            break
        counts[match[2]] = int(match[1])
    return counts


@needs_java
def test_stats_are_the_commands_per_host(fleet, cli, converted):
    _, hosts = fleet
    _, rows, stats = converted
    written = defaultdict(int)
    for row in rows:
        written[row.host] += 1
    assert set(stats) == {h.name for h in hosts}
    some_unresolved = False
    for host in hosts:
        row, done = stats[host.name], cli[host.name]
        stderr = done.stderr.decode()
        assert row.inputs == len(host.files)
        assert row.bytes == sum(path.stat().st_size for path in host.files)
        if host.refused:
            assert "cannot read passwd file" in row.error or "not a passwd line" in row.error
            assert (str(host.passwd) in row.error and "cannot read passwd file" in stderr) or "not a passwd line" in stderr
            assert (row.lines, row.inputs_read, row.events_written) == (0, 0, 0)
            continue
        assert row.error is None
        assert {key: row[key] for key in parse_stats(stderr)} == parse_stats(stderr), host.name
        unresolved = parse_counts(stderr, "events written with a value the log did not hold, by which")
        assert row.unresolved == unresolved, host.name
        some_unresolved = some_unresolved or bool(unresolved)
        assert row.events_written == written[host.name]
        if host.damaged:
            assert row.rejected >= 2 and sum(row.rejected_by_reason.values()) == row.rejected
            assert len(row.rejects) == row.rejected
            assert row.inputs_read == row.inputs - 1
            (error,) = row.read_errors
            oldest = host.files[0]
            assert error.startswith("file:" + str(oldest) + ": read error after line ")
            assert error.split(": read error ", 1)[1] in stderr  # the same line count and cause
        else:
            assert (row.rejected, row.read_errors, row.rejects, row.inputs_read) == (0, [], [], row.inputs)
            assert row.lines == host.lines
    assert some_unresolved, "some host's events lack a value the log did not hold"


def test_damaged_host_holds_the_garbage():
    """The fleet's damage is what the stats test counts: two lines that are no record, and an
    EXECVE record cut short, converted into nothing but a warning."""
    from audit2sysmon import Converter

    conv = Converter(local_users=False, hostname="h")
    for line in GARBAGE:
        conv.feed(line)
    assert conv.flush() == []
    assert (conv.stats.rejected, conv.stats.records, sum(conv.stats.damaged.values())) == (2, 1, 1)


@needs_java
def test_schema_types(converted):
    from pyspark.sql import types as T

    from audit2sysmon.spark import EVENT_SCHEMA

    result, _, _ = converted
    types = {f.name: f.dataType for f in result.events.schema.fields}
    assert result.events.schema == EVENT_SCHEMA
    expected = {
        "host": T.StringType(),
        "date": T.DateType(),
        "EventID": T.IntegerType(),
        "EventRecordID": T.LongType(),
        "TimeCreated": T.TimestampType(),
        "UtcTime": T.TimestampType(),
        "CreationUtcTime": T.TimestampType(),
        "ProcessGuid": T.StringType(),
        "ProcessId": T.LongType(),
        "ParentProcessId": T.LongType(),
        "TerminalSessionId": T.LongType(),
        "LogonId": T.LongType(),
        "SourcePort": T.IntegerType(),
        "DestinationPort": T.IntegerType(),
        "Initiated": T.BooleanType(),
        "SourceIsIpv6": T.BooleanType(),
        "IsExecutable": T.BooleanType(),
        "SourceProcessGUID": T.StringType(),
        "SourceThreadId": T.LongType(),
        "GrantedAccess": T.LongType(),
        "SchemaVersion": T.StringType(),
        "Configuration": T.StringType(),
        "line": T.StringType(),
    }
    assert {name: types[name] for name in expected} == expected
    for event_id in (1, 3, 4, 5, 9, 10, 11, 16, 23):
        assert set(SCHEMAS[event_id].fields) <= set(types)


def _expected(kind: str, text: str) -> object:
    """A field's typed value, read from the line's text by Sysmon's rules (not the code's)."""
    if kind in ("long", "int"):
        return None if text == "-" else int(text, 16) if text.startswith("0x") else int(text)
    if kind == "boolean":
        return {"true": True, "false": False, "-": None}[text]
    return text


@needs_java
def test_columns_hold_what_the_line_says(converted):
    from pyspark.sql import types as T

    result, rows, _ = converted
    kinds = {
        f.name: {T.LongType(): "long", T.IntegerType(): "int", T.BooleanType(): "boolean"}.get(f.dataType, "other")
        for f in result.events.schema.fields
    }
    seen = defaultdict(int)
    for row in rows:
        xml = etree.fromstring(row.line.split(" sysmon: ", 1)[1].encode())
        system = xml.find("System")
        assert row.EventID == int(system.findtext("EventID"))
        assert row.EventRecordID == int(system.findtext("EventRecordID"))
        assert row.Computer == system.findtext("Computer")
        stamp = system.find("TimeCreated").get("SystemTime")
        created = row.TimeCreated.astimezone(timezone.utc)  # collected naive, in local time
        assert created.strftime("%Y-%m-%dT%H:%M:%S.%f000Z") == stamp
        assert row.date == created.date()
        data = {d.get("Name"): d.text for d in xml.find("EventData")}
        for name, text in data.items():
            value = row[name]
            if name in ("UtcTime", "CreationUtcTime"):
                assert value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] == text
            elif kinds[name] == "other":
                assert value == text
            else:
                assert value == _expected(kinds[name], text), (name, text)
            seen[kinds[name]] += text != "-"
        absent = set(kinds) - set(data) - {"host", "date", "EventID", "EventRecordID", "TimeCreated", "Computer", "line", "task"}
        assert all(row[name] is None for name in absent)
    assert all(seen[kind] >= 10 for kind in ("long", "int", "boolean", "other")), seen


@needs_java
def test_stats_need_the_events_computed_first(spark, fleet):
    from audit2sysmon.spark import convert_hosts

    _, hosts = fleet
    result = convert_hosts(spark, str(hosts[5].folder), **spark_options(hosts))
    with pytest.raises(RuntimeError, match="1 of 1 hosts not converted yet"):
        result.stats()


def table_rows(hosts: list[Host]) -> list[tuple[str, str, int, bytes]]:
    """(host, file, byte offset, line) of every line the command reads from each host's
    files; for a file cut short, the lines before the damage (all a shipper would send)."""
    rows = []
    for host in hosts:
        for path in host.files:
            source = open_stream(io.BytesIO(path.read_bytes()), path.name)
            offset = 0
            try:
                for line in source.lines:
                    rows.append((host.name, f"/var/log/audit/{path.name}", offset, line))
                    offset += len(line)
            except EOFError:
                pass
    return rows


@needs_java
def test_lines_table_shuffled_gets_the_commands_bytes(spark, fleet, cli):
    from audit2sysmon.spark import convert_lines

    _, hosts = fleet
    converted_hosts = [h for h in hosts if not h.refused]
    rows = table_rows(converted_hosts)
    random.Random(7).shuffle(rows)
    table = spark.createDataFrame(rows, "host string, file string, position long, line binary")
    result = convert_lines(spark, table, partitions=3, **spark_options(hosts))
    got = by_host(result.events.collect())
    assert got == {h.name: cli[h.name].stdout for h in converted_hosts}
    stats = {row.host: row for row in result.stats().collect()}
    for host in converted_hosts:
        assert stats[host.name].lines == sum(1 for row in rows if row[0] == host.name)
        assert stats[host.name].inputs == len(host.files)


@needs_java
def test_lines_table_of_text_in_json(spark, fleet):
    """Lines as text without their line end (as shippers store them), JSON output."""
    from audit2sysmon.spark import convert_lines

    _, hosts = fleet
    chosen = [h for h in hosts[2:] if not h.damaged and not h.refused][:5]
    rows = [(h, f, p, line.decode().rstrip("\n")) for h, f, p, line in table_rows(chosen)]
    random.Random(11).shuffle(rows)
    table = spark.createDataFrame(rows, ["node_name", "source", "offset", "message"])
    result = convert_lines(
        spark, table, host="node_name", file="source", position="offset", line="message",
        output_format="json", **spark_options(hosts),
    )  # fmt: skip
    got = by_host(result.events.collect())
    expected = cli_outputs(chosen, "-f", "json")
    assert got == {h.name: expected[h.name].stdout for h in chosen}


@needs_java
def test_worker_processes_per_host_give_the_same_bytes(spark, fleet):
    """jobs=2: each host's conversion reads with worker processes (Converter(jobs=2)) inside
    its Spark task; the lines are those of the command reading in one process."""
    from audit2sysmon.spark import convert_hosts

    _, hosts = fleet
    chosen = [hosts[0], hosts[1], hosts[3]]  # two 13,754-line hosts (several chunks), one damaged
    result = convert_hosts(spark, [str(h.folder) for h in chosen], jobs=2, output_format="xml", **spark_options(hosts))
    got = by_host(result.events.collect())
    expected = cli_outputs(chosen, "-f", "xml")
    assert got == {h.name: expected[h.name].stdout for h in chosen}
    assert result.stats().where("error is not null").count() == 0


@needs_java
def test_parquet_and_text_writers_keep_each_hosts_lines(spark, fleet, cli, converted, tmp_path):
    """The writers docs/spark.md shows: Parquet by host and date, and the lines as text files."""
    result, _, _ = converted
    events = result.events.sortWithinPartitions("host", "EventRecordID")
    events.write.partitionBy("host", "date").parquet(str(tmp_path / "parquet"))
    events.select("host", "line").write.partitionBy("host").text(str(tmp_path / "text"))
    back = spark.read.parquet(str(tmp_path / "parquet")).orderBy("host", "EventRecordID").collect()
    expected = {h.name: cli[h.name].stdout for h in fleet[1] if not h.refused}
    assert by_host(back) == expected
    for name, stdout in expected.items():
        parts = sorted((tmp_path / "text" / f"host={name}").glob("part-*"))
        assert b"".join(part.read_bytes() for part in parts) == stdout
    dates = {row.date for row in back}
    assert len(dates) > 10  # the hosts' clocks differ by days: many date partitions


def test_import_without_pyspark_says_what_to_install():
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'pyspark' or name.startswith('pyspark.'):\n"
        "            raise ImportError('No module named ' + repr(name))\n"
        "sys.meta_path.insert(0, Block())\n"
        "import audit2sysmon, audit2sysmon.sysmon.table, audit2sysmon.hostset\n"
        "try:\n"
        "    import audit2sysmon.spark\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'audit2sysmon[spark]'" in done.stdout


def test_host_of_folder_layouts():
    from audit2sysmon.spark import host_of

    assert host_of("s3a://bucket/audit/dt=2026-01-01/host=web01/audit.log.1.gz") == "web01"
    assert host_of("hdfs://nn:8020/logs/host=a/2026/audit.log") == "a"
    assert host_of("file:/var/fleet/db7/audit.log") == "db7"
    assert host_of("abfss://c@acct.dfs.core.windows.net/x/node=n1/audit.log", key="node") == "n1"


@needs_java
def test_vanished_and_too_large_files_are_reported_not_fatal(spark, fleet, tmp_path, monkeypatch):
    """A file deleted between listing and reading (here: just before Spark reads content), and
    one larger than binaryFile reads (the limit lowered for the test), end up in their host's
    read_errors; the rest converts."""
    import audit2sysmon.spark as fleet_spark

    _, hosts = fleet
    source = hosts[2]  # four files: audit.log.3.gz, audit.log.2.gz, audit.log.1, audit.log
    folder = tmp_path / "logs" / f"host={source.name}"
    shutil.copytree(source.folder, folder)
    sizes = {path.name: path.stat().st_size for path in source.files}
    large = max(sizes, key=sizes.__getitem__)  # a plain file: the compressed ones are smaller
    limit = sizes[large] - 1
    assert sorted(sizes.values())[-2] <= limit  # the other three stay readable
    monkeypatch.setattr(fleet_spark, "MAX_FILE_BYTES", limit)
    readers, original = [], fleet_spark._file_reader

    def reader(*args):  # the second reader is the one that reads content: the file goes first
        if readers:
            (folder / "audit.log.3.gz").unlink()
        readers.append(original(*args))
        return readers[-1]

    monkeypatch.setattr(fleet_spark, "_file_reader", reader)
    result = fleet_spark.convert_hosts(spark, str(tmp_path / "logs"), **spark_options(hosts))
    assert len(readers) == 2
    written = result.events.count()
    (row,) = result.stats().collect()
    assert (row.inputs, row.inputs_read) == (4, 2), row.read_errors
    assert row.read_errors == [
        f"file:{folder}/audit.log.3.gz: vanished between listing and reading",
        f"file:{folder}/{large}: {sizes[large]} bytes, more than Spark's binaryFile reads ({limit})",
    ]
    assert row.error is None and row.events_written == written > 0


def test_docs_schema_table_is_the_schema():
    """docs/spark.md's column table lists EVENT_SCHEMA's columns, in order, with their types."""
    from audit2sysmon.spark import EVENT_SCHEMA

    text = (ROOT / "docs" / "spark.md").read_text()
    table = re.findall(r"^\| `(\w+)` \| (\w+) \|", text, re.MULTILINE)
    assert table == [(f.name, f.dataType.simpleString()) for f in EVENT_SCHEMA.fields]


def test_an_internal_error_stops_only_its_host():
    """The task function itself (run here in-process with stand-ins for Spark's broadcast and
    accumulator): a host whose conversion raises is reported with the error, and the task
    goes on with the next host."""
    from dataclasses import fields

    from audit2sysmon.spark import _HostSettings, _Job

    class Value:
        def __init__(self, value):
            self.value = value

    class Results(Value):
        def add(self, more):
            self.value.update(more)

    options = Options(tz=UTC, local_users=False)
    job = _Job(
        settings={f.name: getattr(options, f.name) for f in fields(options)},
        output_format="syslog",
        jobs=1,
        hosts=Value({name: _HostSettings(name, None, None) for name in ("bad", "good")}),
        passwd=Value([]),
        results=Results({}),
    )
    dev = (Path(__file__).parent / "fixtures" / "live" / "dev-raw" / "audit.log").read_bytes()
    rows = [("bad", 0, "bad/audit.log", 42, 1), ("good", 0, "good/audit.log", dev, 1)]  # 42: no bytes
    out = list(job.convert_files(iter(rows)))
    assert {row[0] for row in out} == {"good"} and len(out) >= 50
    bad, good = job.results.value["bad"], job.results.value["good"]
    assert bad.error.startswith("conversion stopped by an internal error: TypeError(")
    assert good.error is None and good.counts[7] == len(out)  # events written
