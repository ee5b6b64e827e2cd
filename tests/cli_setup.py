"""What every command-line test passes, so nothing depends on the machine running the tests:
the live captures' own account file, a fixed machine id, zone and hostname."""

from pathlib import Path
from zoneinfo import ZoneInfo

LIVE = Path(__file__).parent / "fixtures" / "live"
DEV = LIVE / "dev-raw" / "audit.log"
PASSWD = LIVE / "passwd"
MACHINE = "3d1219c7"
UTC = ZoneInfo("UTC")
FIXED = ["--passwd", str(PASSWD), "--no-local-users", "--machine-id", MACHINE, "--tz", "UTC", "--hostname", "testhost"]
API = {"machine_id": MACHINE, "passwd": PASSWD, "local_users": False, "tz": UTC, "hostname": "testhost"}
