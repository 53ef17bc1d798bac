"""Servers a benchmark or a test owns, so that it can kill them and start them again.

`OwnRedis`: a redis-server process on a fixed loopback port (optionally persisting every write
to an append-only file, so that a restart finds the data again). `OwnElasticsearch`: a
single-node Elasticsearch from the install `scripts/services.sh` caches (a Python port of its
node start), on a fixed port and data folder, killed (or frozen: SIGSTOP, then SIGCONT) by its
own pid. `TcpProxy`: a loopback proxy whose `cut` makes a server look dead to its clients, and
whose `hold` makes it look frozen (connections accepted, nothing answered), for a server this
process does not own. `free_port` picks a free loopback port.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import redis

ES_VERSION = "8.12.2"
SERVICES_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "services.sh"


def free_port() -> int:
    """A loopback TCP port free at the moment of asking."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting to be reaped is not)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while _running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


class OwnRedis:
    """A redis-server process on a fixed port that the owner can stop and start again.

    ``persistent``: every write goes to an append-only file in ``directory`` and is synced
    before the reply (``appendfsync always``), so a SIGKILL loses nothing acknowledged and a
    restart reloads it; otherwise the server keeps nothing and restarts empty.
    """

    def __init__(self, directory: Path, *, persistent: bool = False) -> None:
        self.directory = directory
        self.persistent = persistent
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            msg = "redis-server is not installed (bash scripts/services.sh install)"
            raise RuntimeError(msg)
        persistence = ["--appendonly", "no"]
        if self.persistent:
            persistence = ["--appendonly", "yes", "--appendfsync", "always"]
        self.process = subprocess.Popen(  # noqa: S603 - redis-server, our own arguments
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                *persistence,
                "--dir",
                str(self.directory),
                "--logfile",
                str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                try:
                    if client.ping():
                        break
                except redis.BusyLoadingError:  # still reading its append-only file
                    pass
                except redis.ConnectionError:
                    if time.monotonic() > deadline or self.process.poll() is not None:
                        raise
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        """SIGKILL the server (nothing is saved on the way out)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # in case it was left paused
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    kill = stop

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


def wait_es_ready(url: str, deadline: float) -> bool:
    """Wait until the Elasticsearch at ``url`` serves (cluster health yellow or better) or the
    monotonic clock passes ``deadline``; whether it serves."""
    with httpx.Client(timeout=5) as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                response = client.get(
                    f"{url}/_cluster/health",
                    params={"wait_for_status": "yellow", "timeout": "1s"},
                )
                if response.status_code == 200:
                    return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)


def es_home() -> Path:
    """Where `scripts/services.sh` keeps its Elasticsearch install (as that script decides)."""
    default = Path("/var/cache/shopguide") if os.getuid() == 0 else Path.home() / ".cache/shopguide"
    cache = Path(os.environ.get("SHOPGUIDE_CACHE") or default)
    return cache / f"elasticsearch-{ES_VERSION}"


def ensure_es_installed() -> Path:
    """The Elasticsearch install, fetched by `scripts/services.sh install` when missing."""
    home = es_home()
    if not os.access(home / "bin" / "elasticsearch", os.X_OK):
        subprocess.run(["bash", str(SERVICES_SCRIPT), "install"], check=True)  # noqa: S603,S607
    return home


class OwnElasticsearch:
    """A single-node Elasticsearch of this process on a fixed port and data folder.

    As `scripts/services.sh` starts its node: loopback only, security and ML off, a 512 MB
    heap, daemonized with a pid file, run as ``nobody`` when this process is root (Elasticsearch
    refuses root; ``directory`` must then be reachable by nobody). `kill` signals that pid,
    `start` again reuses the data folder and the port, so indices and aliases come back.
    """

    def __init__(self, directory: Path, *, home: Path | None = None, heap_mb: int = 512) -> None:
        self.directory = directory
        self.home = home or ensure_es_installed()
        self.heap_mb = heap_mb
        self.port = free_port()
        self._configured = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.directory / "es.pid"

    def pid(self) -> int | None:
        """The server's pid while it runs."""
        try:
            pid = int(self.pid_file.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            return None
        return pid if _running(pid) else None

    def _configure(self) -> None:
        node = self.directory
        for sub in ("data", "logs", "config"):
            (node / sub).mkdir(parents=True, exist_ok=True)
        shutil.copytree(self.home / "config", node / "config", dirs_exist_ok=True)
        (node / "config" / "elasticsearch.yml").write_text(
            f"network.host: 127.0.0.1\n"
            f"http.port: {self.port}\n"
            "discovery.type: single-node\n"
            "xpack.security.enabled: false\n"
            "xpack.ml.enabled: false\n"
            f"path.data: {node / 'data'}\n"
            f"path.logs: {node / 'logs'}\n"
            "cluster.routing.allocation.disk.threshold_enabled: false\n",
            encoding="utf-8",
        )
        options = node / "config" / "jvm.options.d"
        options.mkdir(exist_ok=True)
        (options / "heap.options").write_text(
            f"-Xms{self.heap_mb}m\n-Xmx{self.heap_mb}m\n", encoding="ascii"
        )
        if os.getuid() == 0:
            # as scripts/services.sh: the server runs as nobody and writes there
            for path in (node, self.home) if self.home.stat().st_uid != _nobody_uid() else (node,):
                subprocess.run(["chown", "-R", "nobody:nogroup", str(path)], check=True)  # noqa: S603,S607
        self._configured = True

    def start(self, timeout_s: float = 180.0) -> float:
        """Start the node and wait until it serves (cluster health yellow or better); the
        seconds that took."""
        if self.pid() is not None:
            msg = f"Elasticsearch already runs (pid {self.pid()})"
            raise RuntimeError(msg)
        if not self._configured:
            self._configure()
        started = time.monotonic()
        self.pid_file.unlink(missing_ok=True)
        node = self.directory
        command = [
            "env",
            f"HOME={node}",
            f"ES_PATH_CONF={node / 'config'}",
            str(self.home / "bin" / "elasticsearch"),
            "-d",
            "-p",
            str(self.pid_file),
        ]
        if os.getuid() == 0:
            command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command]
        with (node / "start.log").open("ab") as log:
            # returns once the daemon has started (or failed)
            launcher = subprocess.run(  # noqa: S603 - the cached install, our own arguments
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout_s,
                check=False,
            )
        if launcher.returncode != 0:
            msg = f"Elasticsearch did not start (status {launcher.returncode}): {self._log_tail()}"
            raise RuntimeError(msg)
        if not wait_es_ready(self.url, started + timeout_s):
            self.kill()
            msg = f"Elasticsearch did not become ready in {timeout_s:.0f} s"
            raise RuntimeError(f"{msg}: {self._log_tail()}")
        return time.monotonic() - started

    def kill(self, sig: signal.Signals = signal.SIGKILL, timeout_s: float = 60.0) -> None:
        """Send ``sig`` to the server and wait until it is gone (SIGKILL after ``timeout_s``)."""
        pid = self.pid()
        if pid is None:
            return
        if sig != signal.SIGKILL:
            os.kill(pid, signal.SIGCONT)  # a frozen node would not act on it before
        os.kill(pid, sig)
        if not _wait_gone(pid, timeout_s) and sig != signal.SIGKILL:
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 10)
        self.pid_file.unlink(missing_ok=True)

    def stop(self) -> None:
        """Stop the node gracefully (SIGTERM)."""
        self.kill(signal.SIGTERM)

    def pause(self) -> None:
        """Freeze the node (SIGSTOP): its connections stay open, nothing is answered."""
        pid = self.pid()
        if pid is None:
            msg = "Elasticsearch does not run"
            raise RuntimeError(msg)
        os.kill(pid, signal.SIGSTOP)

    def resume(self, timeout_s: float = 60.0) -> float:
        """Let a frozen node run again (SIGCONT) and wait until it serves; the seconds that
        took."""
        started = time.monotonic()
        pid = self.pid()
        if pid is None:
            msg = "Elasticsearch does not run"
            raise RuntimeError(msg)
        os.kill(pid, signal.SIGCONT)
        if not wait_es_ready(self.url, started + timeout_s):
            msg = f"Elasticsearch did not serve {timeout_s:.0f} s after SIGCONT"
            raise RuntimeError(msg)
        return time.monotonic() - started

    def _log_tail(self) -> str:
        texts = []
        for path in [
            self.directory / "start.log",
            *sorted((self.directory / "logs").glob("*.log")),
        ]:
            with contextlib.suppress(OSError):
                texts.append(path.read_text(encoding="utf-8", errors="replace")[-1500:])
        return "\n".join(texts)[-3000:]


def _nobody_uid() -> int:
    import pwd

    return pwd.getpwnam("nobody").pw_uid


class TcpProxy:
    """A loopback TCP proxy to ``target``: `cut` closes every connection and refuses new ones
    (the server looks dead to the client), `restore` accepts again on the same port; `hold`
    keeps accepting and connecting but forwards nothing either way (the server looks frozen),
    `release` forwards again, what was held included."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self._flowing = threading.Event()
        self._flowing.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self._flowing.wait()  # held: the bytes wait here, as in a frozen server
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        if self._listener is not None:
            # shutdown wakes the thread blocked in accept(); close alone would not.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            connections, self._connections = self._connections, []
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._flowing.set()  # held bytes go nowhere now: the pipes end

    def restore(self) -> None:
        self.start()

    def hold(self) -> None:
        """Forward nothing until `release` (connections are still accepted)."""
        self._flowing.clear()

    def release(self) -> None:
        self._flowing.set()
