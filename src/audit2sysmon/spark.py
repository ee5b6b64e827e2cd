"""Fleet-scale conversion on Apache Spark: per host, the bytes `audit2sysmon HOSTDIR` writes.

Two entry points, both returning a `FleetConversion` (a DataFrame of events in the
`EVENT_SCHEMA` columns, and a per-host statistics table once the events have been computed):

* `convert_hosts(spark, paths, …)`: audit.log rotated sets laid out one folder per host
  (`…/host=web01/audit.log.1.gz`), on any filesystem Spark reads (s3a://, abfss://, hdfs://,
  local). Spark's binaryFile source lists the files without their content first; the driver
  groups them by host, orders each host's set as the command does (`inputs.order_inputs`,
  oldest first) and assigns hosts to tasks by size (largest first, each to the least loaded
  task). Spark then reads the files, shuffles each to its host's task and sorts them there
  by host and age; the task converts its hosts one after the other, a file at a time.
* `convert_lines(spark, table, …)`: logs already landed as a table of lines (host, source
  file, position in the file, line), as log shippers write them; the same assignment, then
  lines sorted by host, file age and position within each task.

Everything about audit and Sysmon is the library's: a task runs one `hostset.HostConversion`
(one `Converter`) per host, renders with `render.formatter`, and turns events into rows with
`table.event_row`. State never crosses hosts: each host gets a fresh converter (process table,
open events, EventRecordIDs from `first_record_id`). Bad input is counted in the host's
statistics row and never fails the job or another host.

Requires classic PySpark >= 3.5 (the RDD API: not Spark Connect). docs/spark.md has the
cluster set-up, the schema table and the limits.
"""

from __future__ import annotations

import heapq
import io
import os
import posixpath
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from itertools import groupby
from operator import itemgetter
from typing import Any, NamedTuple

try:
    from py4j.protocol import Py4JJavaError  # type: ignore[import-untyped]
    from pyspark import AccumulatorParam
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
except ImportError as exc:  # pragma: no cover - exercised by a subprocess test without pyspark
    raise ImportError(
        "audit2sysmon.spark needs PySpark >= 3.5: pip install 'audit2sysmon[spark]'"
    ) from exc

from .errors import ConfigError
from .hostset import HostConversion, HostReport
from .inputs import is_audit_log, open_stream, order_inputs
from .mapping.users import parse_passwd
from .options import Options
from .sysmon.event import SysmonEvent
from .sysmon.render import formatter
from .sysmon.table import COLUMNS, HEAD, LINE, ColumnKind, event_row

__all__ = [
    "EVENT_SCHEMA",
    "STATS_SCHEMA",
    "FleetConversion",
    "convert_hosts",
    "convert_lines",
    "host_of",
]

_SPARK_TYPES: dict[ColumnKind, T.DataType] = {
    "string": T.StringType(),
    "int": T.IntegerType(),
    "long": T.LongType(),
    "boolean": T.BooleanType(),
    "timestamp": T.TimestampType(),
    "date": T.DateType(),
}
_ALWAYS = (*HEAD, LINE)
EVENT_SCHEMA = T.StructType(
    [
        T.StructField(c.name, _SPARK_TYPES[c.kind], nullable=c not in _ALWAYS, metadata={"comment": c.doc})
        for c in COLUMNS
    ]
)
"""One row per Sysmon event (audit2sysmon.table says which field becomes which column)."""

_COUNTS = T.MapType(T.StringType(), T.LongType())
STATS_SCHEMA = T.StructType(
    [
        T.StructField("host", T.StringType(), False),
        T.StructField("inputs", T.IntegerType(), False),  # files (or source files of the lines table)
        T.StructField("inputs_read", T.IntegerType(), False),  # read to their end
        T.StructField("bytes", T.LongType(), False),  # stored size of the files, or length of the lines
        T.StructField("lines", T.LongType(), False),
        T.StructField("records", T.LongType(), False),
        T.StructField("skipped", T.LongType(), False),
        T.StructField("rejected", T.LongType(), False),
        T.StructField("audit_events", T.LongType(), False),
        T.StructField("exec_syscalls", T.LongType(), False),
        T.StructField("process_create", T.LongType(), False),
        T.StructField("events_written", T.LongType(), False),
        T.StructField("lost_events", T.LongType(), False),  # by serial numbers skipped (live logs)
        T.StructField("read_errors", T.ArrayType(T.StringType(), False), False),
        T.StructField("rejected_by_reason", _COUNTS, False),
        T.StructField("exec_rejected", _COUNTS, False),
        T.StructField("damaged", _COUNTS, False),
        T.StructField("unresolved", _COUNTS, False),
        T.StructField("filtered", _COUNTS, False),  # by EventID, with a Sysmon configuration
        T.StructField("rule_names", _COUNTS, False),
        T.StructField("rejects", T.ArrayType(T.StringType(), False), False),  # the first messages
        T.StructField("warnings", T.ArrayType(T.StringType(), False), False),
        T.StructField("error", T.StringType(), True),  # the host could not be converted at all
    ]
)
"""One row per host: what `audit2sysmon --stats` prints for it, and why an input fell short."""

MAX_FILE_BYTES = 2**31 - 1
"""binaryFile holds a file in one byte array: larger files are not read (reported per host)."""
COMPRESSION_RATIO = 16
"""How many times its stored size a compressed file is estimated to take to convert (audit
logs compress about 16- to 25-fold with gzip): the weight of a file when sizing hosts."""
_COMPRESSED = (".gz", ".bz2", ".xz")


def host_of(path: str, key: str = "host") -> str:
    """The host a log file belongs to: the value of the last `key=VALUE` folder in its path
    (Hive-style, `…/host=web01/audit.log`), else the name of the folder holding it."""
    folders = posixpath.dirname(path).split("/")
    prefix = key + "="
    for folder in reversed(folders):
        if folder.startswith(prefix):
            return folder[len(prefix) :]
    return folders[-1]


@dataclass(frozen=True, slots=True)
class _HostSettings:
    """What differs between hosts: the Computer for lines without node=, the GUIDs' machine
    id, and the index of the host's passwd file among the job's distinct passwd files."""

    hostname: str
    machine_id: int | None
    passwd: int | None


class _HostResult(NamedTuple):
    """One host's report as it travels from its task to the driver (an accumulator value)."""

    inputs_read: int
    counts: tuple[int, ...]  # lines, records, skipped, rejected, audit events, execs, creates, written, lost
    read_errors: list[str]
    reasons: dict[str, int]
    exec_rejected: dict[str, int]
    damaged: dict[str, int]
    unresolved: dict[str, int]
    filtered: dict[str, int]
    rule_names: dict[str, int]
    rejects: list[str]
    warnings: list[str]
    error: str | None
    missing: list[int]  # positions (oldest first) of planned inputs that never reached the task


class _Results(AccumulatorParam):  # type: ignore[type-arg]
    """host → `_HostResult`, merged by replacing: a host is converted in one task, so a task
    run again (a lost executor, speculation, a second action) gives the same value again."""

    def zero(self, value: dict[str, _HostResult]) -> dict[str, _HostResult]:
        return {}

    def addInPlace(self, value1: dict[str, _HostResult], value2: dict[str, _HostResult]) -> dict[str, _HostResult]:
        value1.update(value2)
        return value1


@dataclass(frozen=True, slots=True)
class _Job:
    """Everything a task needs, pickled to the executors with the partition function.

    Options travel as a dict of their fields, as parallel.py sends them to its workers.
    """

    settings: dict[str, Any]
    output_format: str
    jobs: int
    hosts: Any  # Broadcast[dict[str, _HostSettings]]
    passwd: Any  # Broadcast[list[dict[int, str]]]: the entries of each passwd file
    results: Any  # Accumulator[dict[str, _HostResult]]

    def convert_files(self, rows: Iterable[Any]) -> Iterator[tuple[object, ...]]:
        """A task over files: rows (host, seq, path, content, inputs) sorted by host and seq."""
        for host, group in groupby(rows, key=itemgetter(0)):
            yield from self._host(host, group, self._files)

    def convert_lines(self, rows: Iterable[Any]) -> Iterator[tuple[object, ...]]:
        """A task over lines: rows (host, seq, file, line) sorted by host, seq and position."""
        for host, group in groupby(rows, key=itemgetter(0)):
            yield from self._host(host, group, self._lines)

    def _host(
        self,
        host: str,
        rows: Iterator[Any],
        read: Callable[[HostConversion, Iterator[Any], list[int]], Iterator[list[SysmonEvent]]],
    ) -> Iterator[tuple[object, ...]]:
        """Convert one host's rows; its report goes to the accumulator whatever happens."""
        settings: _HostSettings = self.hosts.value[host]
        passwd = self.passwd.value[settings.passwd] if settings.passwd is not None else self.settings["passwd"]
        options = Options(
            **{**self.settings, "hostname": settings.hostname, "machine_id": settings.machine_id, "passwd": passwd}
        )
        run = HostConversion(host, options, jobs=self.jobs)
        render = formatter(self.output_format, tz=options.tz)
        missing: list[int] = []
        try:
            for events in read(run, rows, missing):
                for event in events:
                    yield event_row(event, host, render(event))
            for event in run.finish():
                yield event_row(event, host, render(event))
        except Exception as exc:
            run.report.error = f"conversion stopped by an internal error: {exc!r}"
        finally:  # also when Spark stops reading early (a limit): no worker process stays
            run.close()
        self.results.add({host: _result(run.report, missing)})

    @staticmethod
    def _files(run: HostConversion, rows: Iterator[Any], missing: list[int]) -> Iterator[list[SysmonEvent]]:
        expected, inputs = 0, 0
        for _, seq, path, content, inputs in rows:  # noqa: B007 - `inputs` is read after the loop
            missing.extend(range(expected, seq))  # vanished after listing, or too large
            expected = seq + 1
            yield from run.read(open_stream(io.BytesIO(_bytes(content)), path))
        missing.extend(range(expected, inputs))

    @staticmethod
    def _lines(run: HostConversion, rows: Iterator[Any], missing: list[int]) -> Iterator[list[SysmonEvent]]:
        for (_, name), lines in groupby(rows, key=itemgetter(1, 2)):
            yield from run.read_lines((_bytes(row[3]) for row in lines), name)


def _bytes(value: Any) -> Any:
    """A binary value as bytes (PySpark gives bytearray before 4.0); text stays text."""
    return bytes(value) if isinstance(value, bytearray) else value


def _result(report: HostReport, missing: list[int]) -> _HostResult:
    s = report.stats
    counts = (
        s.lines, s.records, s.skipped, s.rejected, s.events, s.exec_syscalls, s.process_create, s.written,
        s.lost_events,
    )  # fmt: skip
    return _HostResult(
        report.inputs_read,
        counts,
        report.read_errors,
        dict(s.reasons),
        {str(reason): count for reason, count in s.exec_rejected.items()},
        {str(kind): count for kind, count in s.damaged.items()},
        {str(which): count for which, count in s.unresolved.items()},
        {str(event_id): count for event_id, count in s.filtered.items()},
        dict(s.rule_names),
        report.rejects,
        report.warnings,
        report.error,
        missing,
    )


@dataclass(frozen=True, slots=True)
class _Input:
    """One planned input of a host: a file's path (or a lines table's file name) and size."""

    name: str
    size: int


class FleetConversion:
    """The result of a fleet conversion: `events`, and `stats()` once the events were computed.

    `events` is a lazy DataFrame (`EVENT_SCHEMA`); each action on it converts the fleet.
    While the first action that reads all of it runs (a write, a count), every host's task
    reports its figures, and `stats()` then gives them as a DataFrame (`STATS_SCHEMA`),
    without converting anything again.
    """

    def __init__(
        self,
        spark: SparkSession,
        events: DataFrame,
        plan: dict[str, list[_Input]],
        results: Any,
        skipped: Mapping[str, str],
        failed: Mapping[str, str],
    ) -> None:
        self.events = events
        self.hosts = sorted(plan)
        self._spark = spark
        self._plan = plan
        self._results = results
        self._skipped = skipped
        self._failed = failed

    def stats(self) -> DataFrame:
        """One row per host. Raises RuntimeError when some host has not been converted yet."""
        results: dict[str, _HostResult] = {
            **self._results.value,
            **{host: _result(HostReport(host, error=error), []) for host, error in self._failed.items()},
        }
        waiting = [host for host in self.hosts if host not in results]
        if waiting:
            raise RuntimeError(
                f"{len(waiting)} of {len(self.hosts)} hosts not converted yet (e.g. {waiting[0]!r}): "
                "run an action that reads all events first, such as a write or a count"
            )
        rows = [self._row(host, results[host]) for host in self.hosts]
        return self._spark.createDataFrame(rows, STATS_SCHEMA)

    def _row(self, host: str, result: _HostResult) -> tuple[object, ...]:
        inputs = self._plan[host]
        read_errors = [*result.read_errors]
        for seq in result.missing:
            name = inputs[seq].name
            read_errors.append(f"{name}: {self._skipped.get(name, 'vanished between listing and reading')}")
        return (
            host,
            len(inputs),
            result.inputs_read,
            sum(one.size for one in inputs),
            *result.counts,
            read_errors,
            result.reasons,
            result.exec_rejected,
            result.damaged,
            result.unresolved,
            result.filtered,
            result.rule_names,
            result.rejects,
            result.warnings,
            result.error,
        )


def convert_hosts(
    spark: SparkSession,
    paths: str | Sequence[str],
    *,
    options: Options | None = None,
    passwd: Mapping[str, str] | None = None,
    machine_ids: Mapping[str, int | str] | None = None,
    hostnames: Mapping[str, str] | None = None,
    output_format: str = "syslog",
    partitions: int | None = None,
    jobs: int = 1,
    host_key: str = "host",
) -> FleetConversion:
    """Convert every host's audit.log rotated set found under `paths` (folders or globs).

    `options` applies to every host (default `Options(local_users=False)`: user names come
    from a host's passwd file, never from the executor's accounts). Per host, by host name:
    `passwd` (a passwd file's path or URL, read by Spark), `machine_ids` (int or hex text)
    and `hostnames` (the Computer for lines without node=; default the options' hostname,
    else the host name itself). `output_format` is the `line` column's: syslog, xml or json.
    `partitions` is the number of tasks (default: hosts, at most twice the default
    parallelism); `jobs` > 1 converts each host with that many worker processes
    (`Converter(jobs=…)`: pair it with `spark.task.cpus`). A host is the `host_key=NAME`
    folder a file sits under, else its folder's name (`host_of`).
    """
    listing = _file_reader(spark, paths).select("path", "length").collect()
    plan: dict[str, list[_Input]] = {}
    for path, length in listing:
        if is_audit_log(path):
            plan.setdefault(host_of(path, host_key), []).append(_Input(path, length))
    plan = {host: _ordered(inputs) for host, inputs in plan.items()}
    skipped = {
        one.name: f"{one.size} bytes, more than Spark's binaryFile reads ({MAX_FILE_BYTES})"
        for inputs in plan.values()
        for one in inputs
        if one.size > MAX_FILE_BYTES
    }
    weight = {
        host: sum(one.size * (COMPRESSION_RATIO if one.name.endswith(_COMPRESSED) else 1) for one in inputs)
        for host, inputs in plan.items()
    }
    job, count, keys, failed = _prepare(
        spark, plan, weight, options, passwd, machine_ids, hostnames, output_format, partitions, jobs
    )
    rows = [
        (one.name, host, seq, len(inputs), keys[host])
        for host, inputs in plan.items()
        if host not in failed
        for seq, one in enumerate(inputs)
    ]
    assignment = spark.createDataFrame(rows, "path string, host string, seq int, inputs int, key long")
    content = (
        _file_reader(spark, paths)
        .where(F.col("length") <= MAX_FILE_BYTES)  # pushed into the listing: never read
        .select("path", "content")
        .join(F.broadcast(assignment), "path")
    )
    ordered = content.repartition(count, "key").sortWithinPartitions("host", "seq")
    rdd = ordered.select("host", "seq", "path", "content", "inputs").rdd.mapPartitions(job.convert_files)
    events = spark.createDataFrame(rdd, EVENT_SCHEMA, verifySchema=False)
    return FleetConversion(spark, events, plan, job.results, skipped, failed)


def convert_lines(
    spark: SparkSession,
    table: DataFrame,
    *,
    host: str = "host",
    file: str = "file",
    position: str = "position",
    line: str = "line",
    options: Options | None = None,
    passwd: Mapping[str, str] | None = None,
    machine_ids: Mapping[str, int | str] | None = None,
    hostnames: Mapping[str, str] | None = None,
    output_format: str = "syslog",
    partitions: int | None = None,
    jobs: int = 1,
) -> FleetConversion:
    """Convert a table of log lines: one row per line, with its host, source file and position.

    `host`, `file`, `position` and `line` name the table's columns; `line` may be text or
    binary (binary keeps bytes that are not UTF-8 as the command reads them), with or without
    its line end. Per host, files are read in rotation order, oldest first
    (`inputs.order_inputs` of the file names), and each file's lines by `position` (a byte
    offset or a line number). Other arguments are those of `convert_hosts`.
    """
    lines = table.select(
        F.col(host).cast("string").alias("host"),
        F.col(file).cast("string").alias("file"),
        F.col(position).alias("position"),
        F.col(line).alias("line"),
    ).where(F.col("host").isNotNull() & F.col("file").isNotNull() & F.col("line").isNotNull())
    sizes = lines.groupBy("host", "file").agg(F.sum(F.length("line")).alias("size")).collect()
    plan: dict[str, list[_Input]] = {}
    for name, source, size in sizes:
        plan.setdefault(name, []).append(_Input(source, size or 0))
    plan = {name: _ordered(inputs) for name, inputs in plan.items()}
    weight = {name: sum(one.size for one in inputs) for name, inputs in plan.items()}
    job, count, keys, failed = _prepare(
        spark, plan, weight, options, passwd, machine_ids, hostnames, output_format, partitions, jobs
    )
    rows = [
        (name, one.name, seq, keys[name])
        for name, inputs in plan.items()
        if name not in failed
        for seq, one in enumerate(inputs)
    ]
    assignment = spark.createDataFrame(rows, "host string, file string, seq int, key long")
    ordered = (
        lines.join(F.broadcast(assignment), ["host", "file"])
        .repartition(count, "key")
        .sortWithinPartitions("host", "seq", "position")
    )
    rdd = ordered.select("host", "seq", "file", "line").rdd.mapPartitions(job.convert_lines)
    events = spark.createDataFrame(rdd, EVENT_SCHEMA, verifySchema=False)
    return FleetConversion(spark, events, plan, job.results, {}, failed)


def _file_reader(spark: SparkSession, paths: str | Sequence[str]) -> DataFrame:
    """binaryFile over the folders, recursively, audit.log files only; a file that vanishes
    between listing and reading is skipped (and reported for its host), not a job failure."""
    return (
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", "true")
        .option("pathGlobFilter", "audit.log*")
        .option("ignoreMissingFiles", "true")
        .load([paths] if isinstance(paths, str) else list(paths))
    )


def _ordered(inputs: list[_Input]) -> list[_Input]:
    """A host's inputs in conversion order: the command's order for the files of a folder
    (names sorted, then rotated sets oldest first)."""
    by_name = {one.name: one for one in inputs}
    return [by_name[name] for name in order_inputs(sorted(by_name))]


def _prepare(
    spark: SparkSession,
    plan: Mapping[str, list[_Input]],
    weight: Mapping[str, int],
    options: Options | None,
    passwd: Mapping[str, str] | None,
    machine_ids: Mapping[str, int | str] | None,
    hostnames: Mapping[str, str] | None,
    output_format: str,
    partitions: int | None,
    jobs: int,
) -> tuple[_Job, int, dict[str, int], dict[str, str]]:
    """The job's settings shipped to the tasks, the number of tasks, each host's partition
    key, and the hosts that cannot be converted (host → why: a passwd file that cannot be
    read, as the command refuses it). Option values are checked here, before any work."""
    base = options if options is not None else Options(local_users=False)
    formatter(output_format, tz=base.tz)  # an unknown format is refused now
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    settings = {f.name: getattr(base, f.name) for f in fields(base)}
    passwd_for = {host: passwd.get(host) if passwd is not None else None for host in plan}
    if isinstance(base.passwd, (str, os.PathLike)):  # entries given in the options go as they are
        passwd_for = {host: where or os.fspath(base.passwd) for host, where in passwd_for.items()}
    entries, unreadable = _read_passwd(spark, {where for where in passwd_for.values() if where is not None})
    index = {where: number for number, where in enumerate(entries)}
    failed = {
        host: unreadable[where]
        for host, where in passwd_for.items()
        if where is not None and where in unreadable
    }
    hosts = {
        host: _HostSettings(
            hostname=(hostnames or {}).get(host) or base.hostname or host,
            machine_id=_machine_id(base, (machine_ids or {}).get(host)),
            passwd=index[where] if where is not None else None,
        )
        for host, where in passwd_for.items()
        if host not in failed
    }
    context = spark.sparkContext
    count = partitions if partitions is not None else min(len(plan), 2 * context.defaultParallelism)
    count = max(1, count)
    bins = _balance({host: size for host, size in weight.items() if host not in failed}, count)
    partition_keys = _partition_keys(spark, count)
    job = _Job(
        settings=settings,
        output_format=output_format,
        jobs=jobs,
        hosts=context.broadcast(hosts),
        passwd=context.broadcast(list(entries.values())),
        results=context.accumulator({}, _Results()),
    )
    return job, count, {host: partition_keys[number] for host, number in bins.items()}, failed


def _machine_id(base: Options, value: int | str | None) -> int | None:
    if value is None:
        return base.machine_id
    return Options.from_kwargs(machine_id=value).machine_id


def _read_passwd(spark: SparkSession, places: Iterable[str]) -> tuple[dict[str, dict[int, str]], dict[str, str]]:
    """(place → entries, place → why it cannot be used, said as the command says it) for the
    passwd files, read by Spark and parsed here.

    binaryFile names files by their qualified path (`file:/…`, `hdfs://nn:8020/…`) and
    refuses a whole load when one path is missing, so each place is first qualified and
    checked by Hadoop's own FileSystem (through the JVM, as Spark itself resolves paths).
    """
    context = spark.sparkContext
    jvm, conf = context._jvm, context._jsc.hadoopConfiguration()
    if jvm is None:  # pragma: no cover - a classic SparkContext always has its gateway
        raise RuntimeError("this SparkContext has no JVM gateway (Spark Connect is not supported)")
    qualified: dict[str, str] = {}
    unreadable: dict[str, str] = {}
    for where in sorted(set(places)):
        path = jvm.org.apache.hadoop.fs.Path(where)
        filesystem = path.getFileSystem(conf)
        try:
            is_file = filesystem.getFileStatus(path).isFile()
        except Py4JJavaError as exc:  # FileNotFoundException, AccessDeniedException, …
            unreadable[where] = f"{where}: cannot read passwd file: {exc.java_exception.getMessage()}"
            continue
        if not is_file:
            unreadable[where] = f"{where}: cannot read passwd file: not a file"
            continue
        qualified[filesystem.makeQualified(path).toString()] = where
    if not qualified:
        return {}, unreadable
    rows = spark.read.format("binaryFile").load(sorted(qualified)).select("path", "content").collect()
    contents = {qualified[path]: bytes(content) for path, content in rows if path in qualified}
    entries: dict[str, dict[int, str]] = {}
    for where in qualified.values():
        if where not in contents:
            unreadable[where] = f"{where}: cannot read passwd file: not found by Spark"
            continue
        try:
            text = contents[where].decode("utf-8", "surrogateescape")
            entries[where] = parse_passwd(text.splitlines(keepends=True), where)
        except ConfigError as exc:
            unreadable[where] = str(exc)
    return entries, unreadable


def _balance(weight: Mapping[str, int], count: int) -> dict[str, int]:
    """host → task number: largest host first, each to the least loaded task (the classic
    longest-processing-time rule, within 4/3 of the best possible makespan)."""
    loads = [(0, number) for number in range(count)]
    assigned = {}
    for host in sorted(weight, key=lambda h: (-weight[h], h)):
        load, number = heapq.heappop(loads)
        assigned[host] = number
        heapq.heappush(loads, (load + weight[host], number))
    return assigned


def _partition_keys(spark: SparkSession, count: int) -> list[int]:
    """For each partition number p < count, a key that `repartition(count, key)` sends to p.

    Spark places a row by `pmod(hash(key), count)`, Murmur3 as SQL's `hash()` computes it; a
    small Spark query finds the smallest key for each partition. Placement only balances the
    load: a key landing elsewhere would cost time, never correctness (tasks sort by host).
    """
    limit = 8 * count + 64
    while True:
        found = (
            spark.range(limit)
            .select("id", F.expr(f"pmod(hash(id), {count})").alias("p"))
            .groupBy("p")
            .agg(F.min("id").alias("key"))
            .collect()
        )
        if len(found) == count:
            keys = {p: key for p, key in found}
            return [keys[p] for p in range(count)]
        limit *= 4
