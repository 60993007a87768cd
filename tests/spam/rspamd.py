"""A private rspamd (with its own Redis for the Bayes classifier) on free loopback ports,
configured in a temporary directory: nothing of the system's rspamd is touched.

    with Rspamd(tmp_path) as r:
        r.url, r.controller_url
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from tests.harness import free_port
from tests.tools import need

#: Subject marker that our private rspamd scores 8.0.
JUNK_MARKER = "COURRIEL-JUNK-TEST"
JUNK_RULE = f"""
rspamd_config.COURRIEL_JUNK_TEST = {{
  callback = function(task)
    local subject = task:get_header('Subject')
    return subject ~= nil and subject:find('{JUNK_MARKER}', 1, true) ~= nil
  end,
  score = 8.0,
  description = 'courriel test marker',
}}
"""
#: How long rspamd may take to start (it compiles its rules at start).
START_DEADLINE = 90.0


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited: " + (log.read_text()[-3000:] if log.exists() else ""))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not start: " + (log.read_text()[-3000:] if log.exists() else ""))


class Rspamd:
    def __init__(self, root: Path) -> None:
        self.rspamd = need("rspamd")
        self.redis = need("redis-server")
        self.dir = root / "rspamd"
        self.port, self.controller_port, self.proxy_port, self.redis_port = (free_port() for _ in range(4))
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def controller_url(self) -> str:
        return f"http://127.0.0.1:{self.controller_port}"

    def _write_config(self) -> None:
        d = self.dir
        for sub in ("local.d", "override.d", "db", "run", "log"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        redis = f'"127.0.0.1:{self.redis_port}"'
        files = {
            "override.d/worker-normal.inc": f'bind_socket = "127.0.0.1:{self.port}";\nmime = true;\ncount = 1;\n',
            "override.d/worker-controller.inc": (
                f'bind_socket = "127.0.0.1:{self.controller_port}";\ncount = 1;\n'
                'password = "unused-test-password";\nsecure_ip = "127.0.0.1";\nstatic_dir = "${WWWDIR}";\n'
            ),
            "override.d/worker-proxy.inc": f'bind_socket = "127.0.0.1:{self.proxy_port}";\ncount = 1;\n'
            "milter = true;\nupstream \"local\" {\n default = yes;\n self_scan = yes;\n}\n",
            "override.d/logging.inc": f'type = "file";\nfilename = "{d}/log/rspamd.log";\nlevel = "info";\n',
            "local.d/redis.conf": f"servers = {redis};\n",
            "local.d/classifier-bayes.conf": f"backend = \"redis\";\nservers = {redis};\nmin_learns = 1;\n",
            # A rule the tests use: a subject with this marker scores 8 (junk, not reject).
            "rspamd.local.lua": JUNK_RULE,
            # No network here: DNS lookups fail fast instead of timing out each check.
            "local.d/options.inc": 'dns {\n nameserver = ["127.0.0.1:9"];\n timeout = 0.2s;\n retransmits = 1;\n}\n',
        }
        for name, text in files.items():
            (d / name).write_text(text)

    def start(self) -> Rspamd:
        self._write_config()
        redis_log = self.dir / "log" / "redis.log"
        self.procs.append(subprocess.Popen(
            [self.redis, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir / "db"), "--logfile", str(redis_log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))  # fmt: skip
        _wait_port(self.redis_port, self.procs[-1], "redis-server", redis_log)
        log = self.dir / "log" / "rspamd.log"
        d = self.dir
        self.procs.append(subprocess.Popen(
            [self.rspamd, "-f", "-i", "-c", "/etc/rspamd/rspamd.conf",
             f"--var=LOCAL_CONFDIR={d}", f"--var=DBDIR={d}/db", f"--var=RUNDIR={d}/run", f"--var=LOGDIR={d}/log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))  # fmt: skip
        _wait_port(self.port, self.procs[-1], "rspamd", log)
        _wait_port(self.controller_port, self.procs[-1], "rspamd", log)
        return self

    def stat(self) -> dict[str, object]:
        with urllib.request.urlopen(self.controller_url + "/stat", timeout=10) as resp:
            result: dict[str, object] = json.loads(resp.read())
            return result

    def learned(self) -> int:
        """Messages learned so far (spam and ham together)."""
        learned = self.stat().get("learned", 0)
        assert isinstance(learned, int)
        return learned

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()

    def __enter__(self) -> Rspamd:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
        shutil.rmtree(self.dir / "db", ignore_errors=True)
