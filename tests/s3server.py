"""A throwaway S3 server for the tests: a one-node Ceph cluster with its RADOS gateway.

`CephS3Server.start()` builds a cluster in a fresh temporary directory from Debian's packages
(`bash .ci/install-s3` installs them): one monitor, one BlueStore OSD on a sparse file, and
radosgw answering S3 on 127.0.0.1 (free ports), with cephx keys (the daemons authenticate to one
another; the S3 user has a key and secret of its own). Every wait is bounded, every daemon is a
child process we started (`-f`: in the foreground), and `stop()` kills them and removes the
directory. Ceph sends no usage report unless its manager's telemetry module is switched on, and
no manager runs here at all.

`stop_gateway()` / `start_gateway()` take the S3 endpoint away and give it back (the cluster
stays up): what a test needs to see the object store fail under a submission.

Any failure raises `S3StartError` with the reason and the tail of the daemons' logs.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.config import Config

START_TIMEOUT_SECONDS = 120.0  # ~17 s on an idle machine; much more when 5 test runs share 2 cores
COMMAND_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0
LOG_TAIL_CHARS = 3000
BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph", "ceph-authtool", "monmaptool")
OSD_BLOCK_BYTES = 4 * 1024**3  # a sparse file: only what is written takes disk space
REGION = "us-east-1"  # radosgw's default zonegroup answers to any region name; boto3 needs one


class S3StartError(RuntimeError):
    """The test S3 server could not be set up; the message holds the reason and logs."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def missing_binaries() -> list[str]:
    return [name for name in BINARIES if shutil.which(name) is None]


@dataclass
class CephS3Server:
    base_dir: Path
    mon_port: int
    rgw_port: int
    bucket: str = ""  # the tests' bucket, once made (tests/conftest.py)
    access_key: str = field(default_factory=lambda: "TEST" + secrets.token_hex(8).upper())
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(30))
    _processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)
    _stopped: bool = field(default=False, repr=False)

    region: str = REGION

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.rgw_port}"

    @property
    def conf(self) -> Path:
        return self.base_dir / "ceph.conf"

    # --- lifecycle -----------------------------------------------------------------------

    @classmethod
    def start(cls) -> CephS3Server:
        absent = missing_binaries()
        if absent:
            raise S3StartError(f"Ceph binaries not found: {', '.join(absent)}; run `bash .ci/install-s3`")
        server = cls(Path(tempfile.mkdtemp(prefix="dmp-xds-ceph-")), free_port(), free_port())
        atexit.register(server.stop)  # in case the session ends without fixture teardown
        try:
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            server._write_config()
            server._start_monitor(deadline)
            server._start_osd(deadline)
            server.start_gateway(deadline)
            server._create_user()
        except BaseException:
            server.stop()
            raise
        return server

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for name in ("rgw", "osd", "mon"):
            self._kill(name)
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def stop_gateway(self) -> None:
        """The S3 endpoint gone (connections refused), the cluster behind it still up."""
        self._kill("rgw")

    def start_gateway(self, deadline: float | None = None) -> None:
        deadline = deadline or time.monotonic() + START_TIMEOUT_SECONDS
        self._spawn("rgw", ["radosgw", "-f", "-c", str(self.conf), "-n", "client.rgw.test"])
        while time.monotonic() < deadline:
            self._check_alive("rgw")
            try:
                with socket.create_connection(("127.0.0.1", self.rgw_port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise S3StartError(self._failure(f"radosgw did not listen on port {self.rgw_port}"))

    # --- S3 side -------------------------------------------------------------------------

    def client(self):  # type: ignore[no-untyped-def]  # boto3 clients are built dynamically
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}, connect_timeout=5),
        )

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object under `prefix`, and every multipart upload not completed."""
        s3 = self.client()
        found = [
            obj["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for obj in page.get("Contents", [])
        ]
        uploads = s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])
        return found + [f"(upload) {u['Key']}" for u in uploads]

    def settings_env(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """dmp-xds's settings for this server, as environment variables."""
        return {
            "DMP_XDS_BLOB_STORE": f"s3://{bucket}/{prefix}".rstrip("/"),
            "DMP_XDS_S3_ENDPOINT_URL": self.endpoint_url,
            "DMP_XDS_S3_REGION": self.region,
            "DMP_XDS_S3_ACCESS_KEY_ID": self.access_key,
            "DMP_XDS_S3_SECRET_ACCESS_KEY": self.secret_key,
        }

    # --- the cluster -----------------------------------------------------------------------

    def _write_config(self) -> None:
        base = self.base_dir
        for sub in ("run", "log", "mon", "osd", "rgw"):
            (base / sub).mkdir()
        fsid = uuid.uuid4()
        self.conf.write_text(
            f"""[global]
fsid = {fsid}
mon host = v2:127.0.0.1:{self.mon_port}
mon initial members = a
public addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = {base}/admin.keyring
run dir = {base}/run
admin socket = {base}/run/$name.asok
pid file = {base}/run/$name.pid
log file = {base}/log/$name.log
log to stderr = false
err to stderr = false
mon data = {base}/mon/$name
osd data = {base}/osd/$name
osd objectstore = bluestore
bluestore block create = true
bluestore block size = {OSD_BLOCK_BYTES}
bluestore fsck on mkfs = false
osd memory target = 939524096
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail warn = 2
mon data avail crit = 1
mgr initial modules =
[mon.a]
keyring = {base}/mon.keyring
[osd.0]
keyring = {base}/osd/osd.0/keyring
[client.rgw.test]
keyring = {base}/rgw.keyring
rgw frontends = beast endpoint=127.0.0.1:{self.rgw_port}
rgw data = {base}/rgw
rgw enable usage log = false
rgw crypt require ssl = false
"""
        )

    def _start_monitor(self, deadline: float) -> None:
        base = self.base_dir
        mon_keyring, admin_keyring = base / "mon.keyring", base / "admin.keyring"
        self._run(
            [
                "ceph-authtool",
                "--create-keyring",
                str(mon_keyring),
                "--gen-key",
                "-n",
                "mon.",
                "--cap",
                "mon",
                "allow *",
            ]
        )
        self._run(
            ["ceph-authtool", "--create-keyring", str(admin_keyring), "--gen-key", "-n", "client.admin"]
            + ["--cap", "mon", "allow *", "--cap", "osd", "allow *", "--cap", "mgr", "allow *"]
        )
        self._run(["ceph-authtool", str(mon_keyring), "--import-keyring", str(admin_keyring)])
        fsid = next(
            line.split("=")[1].strip() for line in self.conf.read_text().splitlines() if line.startswith("fsid")
        )
        monmap = base / "monmap"
        self._run(
            ["monmaptool", "--create", "--fsid", fsid, "--addv", "a", f"[v2:127.0.0.1:{self.mon_port}]", str(monmap)]
        )
        self._run(
            [
                "ceph-mon",
                "-c",
                str(self.conf),
                "--mkfs",
                "-i",
                "a",
                "--monmap",
                str(monmap),
                "--keyring",
                str(mon_keyring),
            ]
        )
        self._spawn("mon", ["ceph-mon", "-f", "-c", str(self.conf), "-i", "a"])
        self._ceph_until_ok(["status"], deadline)

    def _start_osd(self, deadline: float) -> None:
        osd_uuid = str(uuid.uuid4())
        secret = self._run(["ceph-authtool", "--gen-print-key"]).strip()
        osd_id = self._ceph(["osd", "new", osd_uuid, "-i", "-"], stdin=f'{{"cephx_secret": "{secret}"}}').strip()
        data = self.base_dir / "osd" / f"osd.{osd_id}"
        data.mkdir()
        (data / "keyring").write_text(f"[osd.{osd_id}]\n\tkey = {secret}\n")
        self._run(["ceph-osd", "-c", str(self.conf), "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid])
        self._spawn("osd", ["ceph-osd", "-f", "-c", str(self.conf), "-i", osd_id])
        while time.monotonic() < deadline:
            self._check_alive("osd")
            if '"num_up_osds":1' in self._ceph(["osd", "stat", "--format", "json"]).replace(" ", ""):
                break
            time.sleep(0.5)
        else:
            raise S3StartError(self._failure("the OSD did not come up"))
        rgw_key = self._ceph(["auth", "get-or-create", "client.rgw.test", "mon", "allow rw", "osd", "allow rwx"])
        (self.base_dir / "rgw.keyring").write_text(rgw_key)

    def _create_user(self) -> None:
        self._run(
            ["radosgw-admin", "-c", str(self.conf), "user", "create", "--uid", "dmp-xds-tests"]
            + ["--display-name", "dmp-xds tests", "--access-key", self.access_key, "--secret-key", self.secret_key]
        )

    # --- processes -----------------------------------------------------------------------

    def _spawn(self, name: str, command: list[str]) -> None:
        log = open(self.base_dir / "log" / f"{name}.out", "ab")  # the child holds it
        try:
            self._processes[name] = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        finally:
            log.close()

    def _kill(self, name: str) -> None:
        process = self._processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_SECONDS)

    def _check_alive(self, name: str) -> None:
        process = self._processes.get(name)
        if process is not None and process.poll() is not None:
            raise S3StartError(self._failure(f"{name} exited with status {process.returncode}"))

    def _run(self, command: list[str], stdin: str | None = None) -> str:
        try:
            done = subprocess.run(
                command, input=stdin, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS, check=False
            )
        except subprocess.TimeoutExpired:
            raise S3StartError(
                self._failure(f"{' '.join(command[:3])} took over {COMMAND_TIMEOUT_SECONDS} s")
            ) from None
        if done.returncode != 0:
            raise S3StartError(self._failure(f"{' '.join(command)} failed: {done.stderr.strip()[-LOG_TAIL_CHARS:]}"))
        return done.stdout

    def _ceph(self, args: list[str], stdin: str | None = None) -> str:
        return self._run(["ceph", "-c", str(self.conf), "--connect-timeout", "10", *args], stdin)

    def _ceph_until_ok(self, args: list[str], deadline: float) -> None:
        while True:
            self._check_alive("mon")
            try:
                self._ceph(args)
                return
            except S3StartError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def _failure(self, reason: str) -> str:
        tails = []
        for log in sorted((self.base_dir / "log").glob("*")):
            text = log.read_text(errors="replace")[-LOG_TAIL_CHARS:]
            if text.strip():
                tails.append(f"--- {log.name}\n{text}")
        return f"test S3 server (Ceph radosgw): {reason}\n" + "\n".join(tails)


def main() -> None:
    """`python tests/s3server.py`: start one, print its settings, stop on Ctrl-C (by hand)."""
    started = time.monotonic()
    server = CephS3Server.start()
    try:
        server.create_bucket("dmp-xds")
        print(f"up in {time.monotonic() - started:.1f} s")
        for key, value in server.settings_env("dmp-xds").items():
            print(f"{key}={value}")
        if os.environ.get("S3SERVER_WAIT"):
            signal.pause()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
