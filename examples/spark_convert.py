"""Convert a fleet's audit logs to Sysmon tables with Spark (docs/spark.md explains each step).

    spark-submit --master yarn --deploy-mode cluster \\
        --conf spark.sql.session.timeZone=UTC \\
        examples/spark_convert.py \\
        --input s3a://logs/audit/ --events s3a://lake/sysmon/ --stats s3a://lake/sysmon-stats/ \\
        --passwd-map s3a://logs/passwd-map.csv --tz UTC

Input: one folder per host (`…/host=web01/audit.log`, `audit.log.1.gz`, …), or with
`--lines-table` a table of lines (Parquet) with columns host, file, position, line.
Output: the events as Parquet partitioned by host and date (or, with `--jsonl`, the JSON
lines the command writes, one folder per host), and one statistics row per host.
"""

from __future__ import annotations

import argparse
import csv
import io
from zoneinfo import ZoneInfo

from pyspark.sql import SparkSession

from audit2sysmon import Options
from audit2sysmon.spark import FleetConversion, convert_hosts, convert_lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, nargs="+", help="host folders' parent(s), or the lines table")
    parser.add_argument("--lines-table", action="store_true", help="--input is a Parquet table of lines")
    parser.add_argument("--events", required=True, help="where the events go")
    parser.add_argument("--stats", required=True, help="where the per-host statistics go (Parquet)")
    parser.add_argument("--jsonl", action="store_true", help="write JSON lines as the command does, not Parquet")
    parser.add_argument("--passwd-map", help="CSV host,passwd_path: each host's passwd file")
    parser.add_argument("--machine-ids", help="CSV host,machine_id (hex): each host's machine id")
    parser.add_argument("--tz", default="UTC", help="zone of the syslog header and of ausearch -i text")
    parser.add_argument("--partitions", type=int, help="tasks (default: hosts, at most 2 × cores)")
    args = parser.parse_args()

    spark = SparkSession.builder.appName("audit2sysmon").getOrCreate()
    keywords = {
        "options": Options(tz=ZoneInfo(args.tz), local_users=False),
        "passwd": read_map(spark, args.passwd_map),
        "machine_ids": read_map(spark, args.machine_ids),
        "output_format": "json" if args.jsonl else "syslog",
        "partitions": args.partitions,
    }
    if args.lines_table:
        fleet: FleetConversion = convert_lines(spark, spark.read.parquet(*args.input), **keywords)
    else:
        fleet = convert_hosts(spark, args.input, **keywords)

    # One pass converts: the write reads every event, and the hosts' figures come with it.
    events = fleet.events.sortWithinPartitions("host", "EventRecordID")  # each host's order
    if args.jsonl:
        events.select("host", "line").write.mode("overwrite").partitionBy("host").text(args.events)
    else:
        events.write.mode("overwrite").partitionBy("host", "date").parquet(args.events)
    stats = fleet.stats()
    stats.write.mode("overwrite").parquet(args.stats)
    trouble = stats.where("rejected > 0 or size(read_errors) > 0 or error is not null")
    trouble.select("host", "lines", "rejected", "read_errors", "error").show(20, truncate=False)
    spark.stop()


def read_map(spark: SparkSession, path: str | None) -> dict[str, str] | None:
    """A two-column CSV (host,value) read by Spark, as a dict: small, so kept on the driver."""
    if path is None:
        return None
    text: str = spark.read.text(path, wholetext=True).first()[0]
    return {row[0]: row[1] for row in csv.reader(io.StringIO(text)) if len(row) == 2}


if __name__ == "__main__":
    main()
