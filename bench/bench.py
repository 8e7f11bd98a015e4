#!/usr/bin/env python3
"""Benchmarks echo-iac against kubectl and Pulumi on the local control plane,
with a minimal client as the floor.

For each stack size, every tool goes through the same life cycle on the same
objects (rendered by `echo-iac render`), each in its own namespace:

  up       echo-iac up --yes --skip-preview
           vs kubectl apply --server-side + kubectl wait --for=condition=Available
           vs pulumi up --yes --skip-preview (a Pulumi YAML program, SSA on)
  noop     echo-iac preview --expect-no-changes
           vs kubectl diff --server-side (exit 0: no differences)
           vs pulumi preview --expect-no-changes, plain and with --refresh
           vs the floor: bench/floor sends the same dry-run applies and lists
  change   replicas of one entry 1 -> 2: echo-iac preview + echo-iac up
           vs kubectl diff + kubectl apply --server-side + kubectl rollout status
           vs pulumi preview + pulumi up
  destroy  echo-iac destroy --yes
           vs kubectl delete --cascade=foreground --wait
           vs pulumi destroy --yes

One run is one life cycle per tool; the order of the tools rotates from run
to run, so drift on a noisy machine hits all of them. The tools share one
set of node ports, which is possible because only one tool's objects exist
at a time. Each command runs as a child process: wall time, user+sys CPU of
its process tree (wait4), peak RSS summed over the tree (sampled, and never
below GNU time's peak of the largest process), and the number of API
requests, from the API server's audit log when the control plane keeps one
(ECHO_IAC_CLUSTER_AUDIT=1), else from the tools themselves.

Started by bench/run.sh (`make bench`), which builds the release binary, the
floor client and the Pulumi toolchain, and checks the control plane first.
Settings come from the environment; see bench/README.md.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# The peers echo-iac is measured against (BENCH_TOOLS); echo-iac always runs.
PEERS = ("kubectl", "pulumi", "floor")
# Tools with a whole life cycle; the floor only sends a no-op preview's
# requests, from echo-iac's cycle, against echo-iac's objects.
CYCLE_TOOLS = ("echo-iac", "kubectl", "pulumi")
SCENARIOS = ("noop", "up", "change", "destroy")
SCENARIO_TITLES = {
    "noop": "No-op preview",
    "up": "First up to all-ready",
    "change": "One-field change (`replicas` of `e0`: 1 → 2), preview then up",
    "destroy": "Destroy",
}
SHORT_TITLES = {
    "noop": "no-op preview",
    "up": "first up (to ready)",
    "change": "one-field change",
    "destroy": "destroy",
}
# What each tool runs per scenario, for the tables.
COMMANDS = {
    ("noop", "echo-iac"): "`preview --expect-no-changes` (objects proven unchanged are not dry-run)",
    ("noop", "echo-iac-full"): "`preview --full --expect-no-changes` (a dry run per object)",
    ("noop", "kubectl"): "`diff --server-side`",
    ("noop", "pulumi"): "`preview --expect-no-changes` (its own state, no cluster read)",
    ("noop", "pulumi-refresh"): "`preview --refresh --expect-no-changes`",
    ("noop", "floor"): "bench/floor: the same dry-run applies and lists, nothing else",
    ("up", "echo-iac"): "`up --yes --skip-preview`",
    ("up", "kubectl"): "`apply --server-side` + `wait --for=condition=Available`",
    ("up", "pulumi"): "`up --yes --skip-preview`",
    ("change", "echo-iac"): "`preview` + `up --yes --skip-preview`",
    ("change", "kubectl"): "`diff --server-side` + `apply --server-side` + `rollout status`",
    ("change", "pulumi"): "`preview` + `up --yes --skip-preview`",
    ("destroy", "echo-iac"): "`destroy --yes`",
    ("destroy", "kubectl"): "`delete --cascade=foreground --wait`",
    ("destroy", "pulumi"): "`destroy --yes --skip-preview`",
}
TOOL_LABELS = {"pulumi-refresh": "pulumi --refresh", "echo-iac-full": "echo-iac --full"}
# Concurrencies the floor client tries; the fastest (median) is reported.
FLOOR_CONCURRENCY = (1, 8, 32, 128)

# kubectl -v=6 logs one line per response: v1.36 as structured klog
# (`"Response" verb="GET" url="..." status="200 OK"`), older releases as
# `GET https://... 200 OK in 3 milliseconds`. Only used without an audit log.
KUBECTL_REQUEST = re.compile(
    r'"Response" verb="[A-Z]+"|\] (?:GET|PUT|POST|PATCH|DELETE|HEAD) https?://\S+ \d{3}'
)
ECHO_IAC_REQUESTS = re.compile(r"echo-iac stats: (\d+) API requests")
FLOOR_REQUESTS = re.compile(r"floor: (\d+) requests")
# The control plane's own clients, whose requests the audit log also holds.
BACKGROUND_AGENTS = re.compile(r"^(kube-controller-manager|kube-scheduler|kube-apiserver|kwok)\b")

# Peak RSS of the largest process comes from GNU time, not from our own
# wait4: a child forked from this Python process keeps Python's RSS as its
# high-water mark across exec.
TIME = ["/usr/bin/time", "-f", "%M"]
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def peak_rss_kb(path: Path) -> int:
    lines = [l for l in path.read_text().split() if l.isdigit()]
    return int(lines[-1]) if lines else 0


def parse_sizes(text: str, runs: int) -> dict[int, int]:
    """`3 30 3000:1` -> {3: runs, 30: runs, 3000: 1}: a size may carry its own run count."""
    out: dict[int, int] = {}
    for item in text.replace(",", " ").split():
        size, _, n = item.partition(":")
        out[int(size)] = int(n) if n else runs
    return out


def parse_ports(spec: str) -> list[int]:
    ports: list[int] = []
    for part in spec.replace(" ", "").split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        ports.extend(range(int(lo), int(hi or lo) + 1))
    return ports


def parse_tools(text: str) -> list[str]:
    peers = [t for t in text.replace(",", " ").split() if t != "echo-iac"]
    bad = [t for t in peers if t not in PEERS]
    if bad:
        raise SystemExit(f"bench: BENCH_TOOLS: unknown {', '.join(bad)}; allowed: {' '.join(PEERS)}")
    return ["echo-iac"] + [t for t in PEERS if t in peers]


@dataclass
class Settings:
    sizes: list[int]
    runs: int
    runs_by_size: dict[int, int]
    ports: list[int]
    timeout: int
    kubeconfig: Path
    context: str
    kubectl: Path
    echo_iac: Path
    out_dir: Path
    keep: bool
    command: str
    tools: list[str] = field(default_factory=lambda: ["echo-iac", *PEERS])
    pulumi_bin: Path | None = None
    floor: Path | None = None
    audit_log: Path | None = None
    sizes_text: str = ""
    tools_text: str = ""

    @staticmethod
    def from_env() -> "Settings":
        kubectl = os.environ.get("ECHO_IAC_KUBECTL") or str(
            Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
            / "echo-iac/cluster/kubernetes-v1.36.3/kubectl"
        )
        runs = int(os.environ.get("BENCH_RUNS", "3"))
        sizes_text = os.environ.get("BENCH_SIZES", "3 30 300 900")
        tools_text = os.environ.get("BENCH_TOOLS", " ".join(PEERS))
        by_size = parse_sizes(sizes_text, runs)
        audit = os.environ.get("BENCH_AUDIT_LOG", "")
        pulumi_bin = os.environ.get("BENCH_PULUMI_BIN", "")
        floor = os.environ.get("BENCH_FLOOR", "")
        return Settings(
            sizes=list(by_size),
            runs=runs,
            runs_by_size=by_size,
            sizes_text=" ".join(sizes_text.split()),
            tools=parse_tools(tools_text),
            tools_text=" ".join(tools_text.split()),
            # Node ports the tests and shipped stacks leave alone: they use
            # 30007-30010, 30100-30199, 30999 and 31000-32599 (tests/).
            ports=parse_ports(os.environ.get("BENCH_PORTS", "30200-30998,32600-32767,30011-30099")),
            timeout=int(os.environ.get("BENCH_TIMEOUT", "0")),
            kubeconfig=Path(os.environ.get("BENCH_KUBECONFIG", REPO / ".cluster/kubeconfig")).resolve(),
            context=os.environ.get("BENCH_CONTEXT", "echo-iac-local"),
            kubectl=Path(kubectl),
            echo_iac=Path(os.environ.get("BENCH_ECHO_IAC", REPO / "target/release/echo-iac")),
            pulumi_bin=Path(pulumi_bin) if pulumi_bin else None,
            floor=Path(floor) if floor else None,
            audit_log=Path(audit) if audit and Path(audit).exists() else None,
            out_dir=Path(os.environ.get("BENCH_OUT", HERE)),
            keep=os.environ.get("BENCH_KEEP", "") not in ("", "0"),
            command=os.environ.get("BENCH_COMMAND", "make bench"),
        )


@dataclass
class Sample:
    wall: float = 0.0  # seconds
    cpu: float = 0.0  # user + sys seconds, process tree
    rss_kb: int = 0  # peak resident set, summed over the process tree
    requests: int | None = 0  # None: not counted
    processes: list[str] = field(default_factory=list)
    concurrency: int | None = None  # the floor's

    def add(self, other: "Sample") -> None:
        self.wall += other.wall
        self.cpu += other.cpu
        self.rss_kb = max(self.rss_kb, other.rss_kb)
        self.requests = None if self.requests is None or other.requests is None \
            else self.requests + other.requests
        self.processes.extend(other.processes)


class TreeMemory:
    """Samples the summed RSS of a process's descendants every 20 ms: Pulumi
    runs as three processes (CLI, language host, provider), and GNU time
    only reports the largest one. A process that lives less than a sample
    is missed, so the caller takes the larger of this and GNU time's."""

    def __init__(self, root: int, every: float = 0.02):
        import threading

        self.root = root
        self.peak_kb = 0
        self.most = 0  # processes seen at once
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(every,), daemon=True)
        self._thread.start()

    @staticmethod
    def children(pid: int) -> list[int]:
        out: list[int] = []
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    out.extend(int(c) for c in f.read().split())
        except OSError:
            pass
        return out

    def _watch(self, every: float) -> None:
        while not self._stop.wait(every):
            total, seen, todo = 0, 0, self.children(self.root)
            while todo:
                pid = todo.pop()
                try:
                    with open(f"/proc/{pid}/statm") as f:
                        total += int(f.read().split()[1]) * PAGE_KB
                    seen += 1
                except (OSError, ValueError, IndexError):
                    continue
                todo.extend(self.children(pid))
            self.peak_kb = max(self.peak_kb, total)
            self.most = max(self.most, seen)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class AuditLog:
    """Counts API requests in the API server's audit log (one line per
    request, level Metadata, see tests/cluster/up.sh), the same way for
    every tool: the requests received while a command ran, less those of the
    control plane's own clients and of the benchmark's watchdog."""

    def __init__(self, path: Path):
        self.path = path

    def offset(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def count(self, offset: int, start: float, end: float) -> int:
        # The server writes a request's line once it has answered: give the
        # last answers a moment to reach the file.
        time.sleep(0.15)
        ids: set[str] = set()
        with open(self.path, "rb") as f:
            f.seek(offset)
            for line in f:
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if BACKGROUND_AGENTS.match(ev.get("userAgent", "")):
                    continue
                ref = ev.get("objectRef") or {}
                if ref.get("resource") == "namespaces" and ref.get("name") == "kube-system":
                    continue  # the watchdog (Runner.current_cluster_uid)
                received = ev.get("requestReceivedTimestamp", "")
                try:
                    at = dt.datetime.fromisoformat(received.replace("Z", "+00:00")).timestamp()
                except ValueError:
                    continue
                if start - 0.001 <= at <= end:
                    ids.add(ev.get("auditID", line))
        return len(ids)


class BenchError(Exception):
    pass


class ClusterRestarted(BenchError):
    """The control plane went away or was recreated under the benchmark."""


class Watchdog:
    """Kills a measured command if the control plane is recreated under it
    (a command would otherwise wait on a namespace that no longer exists).
    Checks every 15 s, so commands shorter than that are never disturbed."""

    def __init__(self, runner: "Runner", pid: int, every: float = 15):
        import threading

        self.fired = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(runner, pid, every), daemon=True)
        self._thread.start()

    def _watch(self, runner: "Runner", pid: int, every: float) -> None:
        misses = 0
        while not self._stop.wait(every):
            uid = runner.current_cluster_uid()
            misses = misses + 1 if uid is None else 0
            if (uid and uid != runner.cluster_uid) or misses >= 4:
                self.fired = True
                try:
                    os.killpg(pid, 15)
                except ProcessLookupError:
                    pass
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class Runner:
    def __init__(self, settings: Settings, work: Path):
        self.s = settings
        self.work = work
        self.log_dir = work / "logs"
        self.log_dir.mkdir()
        self.counter = 0
        self.time_overhead = 0.0
        self.cluster_uid: str | None = None
        self.others: set[str] = set()
        self.env = dict(os.environ)
        self.env["KUBECONFIG"] = str(settings.kubeconfig)
        self.env["ECHO_IAC_STATS"] = "1"
        self.env["NO_COLOR"] = "1"
        self.env.pop("ECHO_IAC_STACK", None)
        self.audit = AuditLog(settings.audit_log) if settings.audit_log else None
        # Pulumi offline: a file backend in the work folder, its plugins from
        # the toolchain's own PULUMI_HOME (bench/pulumi/build.sh), never from
        # PATH (it would warn on every run and start extra processes).
        self.pulumi_env = dict(self.env)
        if settings.pulumi_bin:
            (work / "pulumi-state").mkdir()
            self.pulumi_env.update({
                "PULUMI_HOME": str(settings.pulumi_bin.parent / "home"),
                "PULUMI_BACKEND_URL": f"file://{work / 'pulumi-state'}",
                "PULUMI_CONFIG_PASSPHRASE": "bench",
                "PULUMI_SKIP_UPDATE_CHECK": "true",
                "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
                "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
                "PATH": f"{settings.pulumi_bin}:{self.env.get('PATH', '')}",
            })

    # -- processes ---------------------------------------------------------

    def measure(self, tool: str, argv: list[str], stdin: Path | None = None,
                ok: tuple[int, ...] = (0,), env: dict | None = None) -> Sample:
        """Runs one command under /usr/bin/time and returns what it cost."""
        self.counter += 1
        log = self.log_dir / f"{self.counter:05d}-{tool}.log"
        usage_file = self.log_dir / f"{self.counter:05d}-{tool}.rusage"
        # Pulumi prints its errors on stdout: keep them.
        stdout = log if tool == "pulumi" else None
        offset = self.audit.offset() if self.audit else 0
        begin = time.time()
        wall, cpu, code, tree_kb = self.spawn(TIME + ["-o", str(usage_file)] + argv, log, stdin,
                                              env or self.env, stdout)
        end = time.time()
        text = log.read_text(errors="replace")
        if code not in ok:
            tail = "\n".join(text.splitlines()[-15:])
            raise BenchError(f"`{' '.join(argv)}` exited {code} (log {log}):\n{tail}")
        requests: int | None
        if self.audit:
            requests = self.audit.count(offset, begin, end)
        elif tool == "echo-iac":
            found = ECHO_IAC_REQUESTS.findall(text)
            if not found:
                raise BenchError(f"no request count from `{' '.join(argv)}` (log {log})")
            requests = int(found[-1])
        elif tool == "kubectl":
            requests = len(KUBECTL_REQUEST.findall(text))
        elif tool == "floor":
            found = FLOOR_REQUESTS.findall(text)
            requests = int(found[-1]) if found else None
        else:
            requests = None
        return Sample(
            wall=wall,
            cpu=max(cpu - self.time_overhead, 0.0),
            rss_kb=max(peak_rss_kb(usage_file), tree_kb),
            requests=requests,
            processes=[os.path.basename(argv[0]) + " " + argv_summary(argv)],
        )

    def spawn(self, argv: list[str], log: Path, stdin: Path | None, env: dict | None = None,
              stdout: Path | None = None) -> tuple[float, float, int, int]:
        """Wall time, CPU time (user+sys, children included), exit code and
        the peak summed RSS of the process tree in KiB."""
        with open(log, "wb") as err, open(os.devnull, "wb") as out, \
                (open(stdin, "rb") if stdin else open(os.devnull, "rb")) as inp:
            start = time.perf_counter()
            proc = subprocess.Popen(argv, stdin=inp, stdout=err if stdout else out, stderr=err,
                                    env=env or self.env, start_new_session=True)
            memory = TreeMemory(proc.pid)
            watchdog = Watchdog(self, proc.pid) if self.cluster_uid else None
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
            memory.stop()
            if watchdog:
                watchdog.stop()
        if watchdog and watchdog.fired:
            raise ClusterRestarted("the control plane was restarted or stopped during the run")
        proc.returncode = os.waitstatus_to_exitcode(status)
        return wall, usage.ru_utime + usage.ru_stime, proc.returncode, memory.peak_kb

    def current_cluster_uid(self) -> str | None:
        """The uid of kube-system: it changes when the control plane is recreated."""
        argv = [str(self.s.kubectl), f"--kubeconfig={self.s.kubeconfig}", f"--context={self.s.context}",
                "get", "namespace", "kube-system", "-o", "jsonpath={.metadata.uid}", "--request-timeout=5s"]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=10)
        except subprocess.TimeoutExpired:
            return None
        return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None

    def wait_for_cluster(self, limit: float = 600) -> None:
        """Waits until the control plane answers, all its nodes are Ready and
        its controllers work (a new namespace gets its default ServiceAccount)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            uid = self.current_cluster_uid()
            if uid and self.nodes_ready() and self.controllers_work():
                self.cluster_uid = uid
                return
            time.sleep(5)
        raise BenchError("the local control plane is not healthy (see .cluster/logs): run make cluster")

    def note_others(self) -> None:
        """Remembers namespaces of others (tests) seen on the shared control plane."""
        try:
            names = self.quiet("get", "namespaces", "-o", "name").split()
        except BenchError:
            return
        for name in names:
            name = name.split("/", 1)[-1]
            if name not in ("default", "kube-system", "kube-public", "kube-node-lease") \
                    and not name.startswith("bench-"):
                self.others.add(name)

    def nodes_ready(self) -> bool:
        try:
            nodes = json.loads(self.quiet("get", "nodes", "-o", "json"))["items"]
        except (BenchError, ValueError):
            return False
        ready = [n for n in nodes if any(c["type"] == "Ready" and c["status"] == "True"
                                         for c in n["status"].get("conditions", []))]
        return bool(nodes) and len(ready) == len(nodes)

    def controllers_work(self) -> bool:
        ns = f"bench-canary-{uuid.uuid4().hex[:6]}"
        try:
            self.quiet("create", "namespace", ns)
            for _ in range(30):
                if self.quiet("get", "serviceaccount", "default", "-n", ns, "--ignore-not-found",
                              "-o", "name", check=False).strip():
                    return True
                time.sleep(1)
            return False
        except BenchError:
            return False
        finally:
            self.quiet("delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)

    def calibrate(self) -> None:
        """The CPU that /usr/bin/time itself adds, subtracted from each sample."""
        log = self.log_dir / "calibrate.log"
        true = shutil.which("true") or "/bin/true"
        with_time = [self.spawn(TIME + ["-o", os.devnull, true], log, None)[1] for _ in range(7)]
        without = [self.spawn([true], log, None)[1] for _ in range(7)]
        self.time_overhead = max(statistics.median(with_time) - statistics.median(without), 0.0)

    def kubectl(self, *args: str, stdin: Path | None = None, ok=(0,)) -> Sample:
        # Without an audit log, kubectl's requests are counted from -v=6.
        verbose = [] if self.audit else ["-v=6"]
        argv = [str(self.s.kubectl), f"--kubeconfig={self.s.kubeconfig}",
                f"--context={self.s.context}", *verbose, *args]
        return self.measure("kubectl", argv, stdin=stdin, ok=ok)

    def echo(self, project: Path, *args: str, ok=(0,)) -> Sample:
        argv = [str(self.s.echo_iac), "-C", str(project), "--stack", "bench", *args]
        return self.measure("echo-iac", argv, ok=ok)

    def pulumi(self, project: Path, *args: str, ok=(0,)) -> Sample:
        assert self.s.pulumi_bin
        argv = [str(self.s.pulumi_bin / "pulumi"), "--cwd", str(project), "--stack", "bench",
                "--non-interactive", "--color", "never", *args]
        return self.measure("pulumi", argv, ok=ok, env=self.pulumi_env)

    def pulumi_quiet(self, project: Path, *args: str) -> None:
        """An unmeasured Pulumi call (set-up)."""
        assert self.s.pulumi_bin
        argv = [str(self.s.pulumi_bin / "pulumi"), "--cwd", str(project), "--non-interactive", *args]
        done = subprocess.run(argv, capture_output=True, text=True, env=self.pulumi_env)
        if done.returncode != 0:
            raise BenchError(f"`pulumi {' '.join(args)}` failed: {(done.stdout + done.stderr).strip()}")

    def floor(self, manifest: Path, concurrency: int) -> Sample:
        assert self.s.floor
        argv = [str(self.s.floor), f"-kubeconfig={self.s.kubeconfig}", f"-context={self.s.context}",
                f"-f={manifest}", f"-concurrency={concurrency}"]
        sample = self.measure("floor", argv)
        sample.concurrency = concurrency
        return sample

    def quiet(self, *args: str, check: bool = True, stdin: Path | None = None) -> str:
        """An unmeasured kubectl call (set-up and clean-up)."""
        argv = [str(self.s.kubectl), f"--kubeconfig={self.s.kubeconfig}",
                f"--context={self.s.context}", *args]
        with open(stdin, "rb") if stdin else open(os.devnull, "rb") as f:
            done = subprocess.run(argv, stdin=f, capture_output=True, text=True, env=self.env)
        if check and done.returncode != 0:
            raise BenchError(f"`kubectl {' '.join(args)}` failed: {done.stderr.strip()}")
        return done.stdout

    # -- the stacks ------------------------------------------------------------

    def write_stack(self, project: Path, namespace: str, entries: int, ports: list[int],
                    changed: bool) -> None:
        (project / "stacks").mkdir(parents=True, exist_ok=True)
        (project / "state").mkdir(exist_ok=True)
        lines = [
            "# Written by bench/bench.py",
            f"kubeconfig: {self.s.kubeconfig}",
            f"context: {self.s.context}",
            f"namespace: {namespace}",
            "createNamespace: false",
            "echoes:",
        ]
        for i in range(entries):
            replicas = 2 if (changed and i == 0) else 1
            lines += [f"  - name: e{i}", f"    replicas: {replicas}", f"    nodePort: {ports[i]}"]
        (project / "stacks/bench.yaml").write_text("\n".join(lines) + "\n")

    def render(self, project: Path, target: Path) -> None:
        argv = [str(self.s.echo_iac), "-C", str(project), "--stack", "bench", "render"]
        done = subprocess.run(argv, capture_output=True, text=True, env=self.env)
        if done.returncode != 0:
            raise BenchError(f"`{' '.join(argv)}` failed: {done.stderr.strip()}")
        target.write_text(done.stdout)


def argv_summary(argv: list[str]) -> str:
    return " ".join(a for a in argv[1:] if not a.startswith(("--kubeconfig", "--context", "-v=",
                                                            "-kubeconfig", "-context", "--cwd")))


def pulumi_versions() -> dict[str, str]:
    out = {}
    for line in (HERE / "pulumi/versions.env").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            out[key.strip()] = value.strip()
    return out


def pulumi_escape(value):
    """Pulumi YAML reads `${...}` in any string as an interpolation and `$$`
    as `$`: double every `$` (nginx's `$server_addr`) to keep it literal."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, list):
        return [pulumi_escape(v) for v in value]
    if isinstance(value, dict):
        return {k: pulumi_escape(v) for k, v in value.items()}
    return value


def pulumi_program(project: str, manifest: str, kubeconfig: Path, context: str) -> str:
    """A Pulumi YAML program with one resource per object of `echo-iac
    render`'s output, all through one explicit provider with server-side
    apply, pinned to the plugin version bench/pulumi/build.sh installed."""
    import yaml

    version = pulumi_versions()["PULUMI_K8S_PROVIDER_VERSION"].removeprefix("v")
    resources: dict = {
        "k8s": {
            "type": "pulumi:providers:kubernetes",
            "properties": {"kubeconfig": str(kubeconfig), "context": context,
                           "enableServerSideApply": True},
            "options": {"version": version},
        }
    }
    for doc in yaml.safe_load_all(manifest):
        if not doc:
            continue
        group, _, api_version = doc["apiVersion"].rpartition("/")
        kind = doc["kind"]
        name = f"{kind.lower()}-{doc['metadata']['name']}"
        resources[name] = {
            "type": f"kubernetes:{group or 'core'}/{api_version}:{kind}",
            "properties": pulumi_escape({k: v for k, v in doc.items() if k not in ("apiVersion", "kind")}),
            "options": {"provider": "${k8s}"},
        }
    program = {"name": project, "runtime": "yaml", "resources": resources}
    return "# Written by bench/bench.py from `echo-iac render`\n" + yaml.safe_dump(program, sort_keys=False)


class SizeBench:
    """One stack size: its namespaces, projects and rendered manifests."""

    def __init__(self, r: Runner, size: int, run_id: str, ports: list[int]):
        self.r = r
        self.size = size
        self.entries = size // 3
        self.tools = [t for t in r.s.tools if t in CYCLE_TOOLS]
        # Long enough for kubectl delete --wait (about 0.2 s an object here).
        self.timeout = r.s.timeout or int(120 + 0.4 * size)
        short = {"echo-iac": "echo", "kubectl": "kubectl", "pulumi": "pulumi"}
        self.ns = {t: f"bench-{run_id}-{size}-{short[t]}" for t in self.tools}
        base = r.work / f"size-{size}"
        self.echo_project = base / "echo-iac"
        self.ports = ports[: self.entries]
        self.manifest = base / "kubectl.yaml"
        self.manifest_changed = base / "kubectl-changed.yaml"
        if "kubectl" in self.ns:
            project = base / "kubectl"
            r.write_stack(project, self.ns["kubectl"], self.entries, self.ports, changed=True)
            r.render(project, self.manifest_changed)
            r.write_stack(project, self.ns["kubectl"], self.entries, self.ports, changed=False)
            r.render(project, self.manifest)
        self.pulumi_project = base / "pulumi"
        self.pulumi_programs: dict[bool, str] = {}
        if "pulumi" in self.ns:
            project = base / "pulumi-render"
            for changed in (False, True):
                r.write_stack(project, self.ns["pulumi"], self.entries, self.ports, changed)
                rendered = base / f"pulumi-render-{changed}.yaml"
                r.render(project, rendered)
                self.pulumi_programs[changed] = pulumi_program(
                    f"bench-{run_id}-{size}", rendered.read_text(), r.s.kubeconfig, r.s.context)
            self.pulumi_project.mkdir(parents=True)
            self.write_pulumi(changed=False)
        # The floor sends echo-iac's no-op requests against echo-iac's objects.
        self.floor_manifest = base / "floor.yaml"
        self.write_echo(changed=False)
        if "floor" in r.s.tools:
            r.render(self.echo_project, self.floor_manifest)

    def write_echo(self, changed: bool) -> None:
        self.r.write_stack(self.echo_project, self.ns["echo-iac"], self.entries, self.ports, changed)

    def write_pulumi(self, changed: bool) -> None:
        (self.pulumi_project / "Pulumi.yaml").write_text(self.pulumi_programs[changed])

    def setup(self) -> None:
        for ns in self.ns.values():
            self.r.quiet("create", "namespace", ns)
        if "pulumi" in self.ns:
            self.r.pulumi_quiet(self.pulumi_project, "stack", "init", "bench")

    def teardown(self) -> None:
        for ns in self.ns.values():
            self.r.quiet("delete", "namespace", ns, "--ignore-not-found", "--wait=true",
                         f"--timeout={self.timeout}s", check=False)

    def cycle(self, tool: str) -> dict[str, Sample]:
        """up, noop, change, destroy for one tool; the objects are gone after it."""
        r, t = self.r, f"--timeout={self.timeout}s"
        out: dict[str, Sample] = {}
        if tool == "echo-iac":
            p = self.echo_project
            self.write_echo(changed=False)
            out["up"] = r.echo(p, "up", "--yes", "--skip-preview", "--timeout", f"{self.timeout}s")
            out["noop"] = r.echo(p, "preview", "--expect-no-changes")
            out["noop/echo-iac-full"] = r.echo(p, "preview", "--full", "--expect-no-changes")
            if "floor" in r.s.tools:
                for c in FLOOR_CONCURRENCY:
                    out[f"noop/floor@{c}"] = r.floor(self.floor_manifest, c)
            self.write_echo(changed=True)
            change = r.echo(p, "preview", ok=(0,))
            change.add(r.echo(p, "up", "--yes", "--skip-preview", "--timeout", f"{self.timeout}s"))
            out["change"] = change
            self.write_echo(changed=False)
            out["destroy"] = r.echo(p, "destroy", "--yes", "--timeout", f"{self.timeout}s")
        elif tool == "pulumi":
            p = self.pulumi_project
            self.write_pulumi(changed=False)
            out["up"] = r.pulumi(p, "up", "--yes", "--skip-preview")
            out["noop"] = r.pulumi(p, "preview", "--expect-no-changes")
            out["noop/pulumi-refresh"] = r.pulumi(p, "preview", "--refresh", "--expect-no-changes")
            self.write_pulumi(changed=True)
            change = r.pulumi(p, "preview")
            change.add(r.pulumi(p, "up", "--yes", "--skip-preview"))
            out["change"] = change
            out["destroy"] = r.pulumi(p, "destroy", "--yes", "--skip-preview")
        else:
            ns = self.ns["kubectl"]
            up = r.kubectl("apply", "--server-side", "-f", "-", stdin=self.manifest)
            up.add(r.kubectl("wait", "--for=condition=Available", "deployment", "--all", "-n", ns, t))
            out["up"] = up
            # kubectl diff exits 0 for no differences, 1 for differences.
            out["noop"] = r.kubectl("diff", "--server-side", "-f", "-", stdin=self.manifest)
            change = r.kubectl("diff", "--server-side", "-f", "-", stdin=self.manifest_changed, ok=(1,))
            change.add(r.kubectl("apply", "--server-side", "-f", "-", stdin=self.manifest_changed))
            change.add(r.kubectl("rollout", "status", "deployment/e0", "-n", ns, t))
            out["change"] = change
            out["destroy"] = r.kubectl("delete", "--cascade=foreground", "--wait=true", t,
                                       "-f", "-", stdin=self.manifest_changed)
        return out


# -- reporting ------------------------------------------------------------------


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def summarize(samples: dict) -> dict:
    """samples[size][scenario][tool] = [Sample...] -> medians. The floor's
    samples come per concurrency (`floor@8`); "floor" is the fastest."""
    summary: dict = {}
    for size, by_scenario in samples.items():
        for scenario, by_tool in by_scenario.items():
            for tool, runs in by_tool.items():
                counted = [s.requests for s in runs if s.requests is not None]
                summary.setdefault(size, {}).setdefault(scenario, {})[tool] = {
                    "wall": median([s.wall for s in runs]),
                    "cpu": median([s.cpu for s in runs]),
                    "rss_mb": max(s.rss_kb for s in runs) / 1024,
                    "requests": median(counted) if len(counted) == len(runs) else None,
                    "runs": len(runs),
                    "walls": [round(s.wall, 4) for s in runs],
                }
            floors = {t: v for t, v in summary[size][scenario].items() if t.startswith("floor@")}
            if floors:
                best = min(floors, key=lambda t: floors[t]["wall"])
                summary[size][scenario]["floor"] = dict(floors[best], concurrency=int(best[6:]))
    return summary


def fmt_time(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


def goals(summary: dict) -> list[tuple[str, str, str]]:
    """(goal, verdict, evidence) for the goals the project set itself."""
    out = []
    sizes = sorted(summary)

    def get(size, scenario, tool, key):
        return summary.get(size, {}).get(scenario, {}).get(tool, {}).get(key)

    def verdict(ok):
        return "met" if ok else "**missed**"

    has_kubectl = all(get(n, "noop", "kubectl", "wall") for n in sizes)
    if 3 in summary and has_kubectl:
        e, k = get(3, "noop", "echo-iac", "wall"), get(3, "noop", "kubectl", "wall")
        out.append(("No-op preview of the echo stack (3 objects) < 0.3× kubectl diff",
                    verdict(e < 0.3 * k), f"{fmt_time(e)} vs {fmt_time(k)} = {e / k:.2f}×"))
    if 900 in summary and has_kubectl:
        e, k = get(900, "noop", "echo-iac", "wall"), get(900, "noop", "kubectl", "wall")
        out.append(("No-op preview of 900 objects < 2 s and < 0.5× kubectl diff",
                    verdict(e < 2 and e < 0.5 * k), f"{fmt_time(e)} vs {fmt_time(k)} = {e / k:.2f}×"))
        e, k = get(900, "up", "echo-iac", "wall"), get(900, "up", "kubectl", "wall")
        out.append(("First up of 900 objects to all-ready ≤ kubectl apply + wait",
                    verdict(e <= k), f"{fmt_time(e)} vs {fmt_time(k)} = {e / k:.2f}×"))
    per_obj = {n: get(n, "noop", "echo-iac", "requests") / n for n in sizes
               if get(n, "noop", "echo-iac", "requests") is not None}
    if per_obj:
        worst = max(per_obj, key=per_obj.get)
        out.append(("No-op preview: ≤ 2 API requests per object",
                    verdict(all(v <= 2 for v in per_obj.values())),
                    ", ".join(f"{n}: {v:.2f}" for n, v in per_obj.items()) + f" (worst at {worst})"))
    for n in sizes:
        e, full, floor = (get(n, "noop", t, "wall") for t in ("echo-iac", "echo-iac-full", "floor"))
        if n >= 300 and e is not None and floor:
            out.append((f"No-op preview of {n} objects ≤ 0.2× bench/floor (proven unchanged)",
                        verdict(e <= 0.2 * floor),
                        f"{fmt_time(e)} vs {fmt_time(floor)} = {e / floor:.2f}×"
                        + (f"; --full {fmt_time(full)}" if full else "")))
    if 3000 in summary:
        e = get(3000, "noop", "echo-iac", "wall")
        out.append(("No-op preview of 3,000 objects ≤ 0.5 s", verdict(e <= 0.5), fmt_time(e)))
    destroy = {n: get(n, "destroy", "echo-iac", "requests") / n for n in sizes
               if n >= 300 and get(n, "destroy", "echo-iac", "requests") is not None}
    if destroy:
        out.append(("Destroy: ≤ 1.2 API requests per object from 300 objects",
                    verdict(all(v <= 1.2 for v in destroy.values())),
                    ", ".join(f"{n}: {v:.2f}" for n, v in destroy.items())))
    if 30 in summary and max(sizes) > 30:
        top = max(sizes)
        parts, ok = [], True
        for sc in SCENARIOS:
            a = get(30, sc, "echo-iac", "wall") / 30
            b = get(top, sc, "echo-iac", "wall") / top
            ok &= b <= 1.5 * a
            parts.append(f"{SHORT_TITLES[sc]} {b / a:.2f}×")
        label = "Time per object flat from 30 to 3,000 objects (≤ 1.5× between ends)"
        note = "" if top >= 3000 else f" (measured up to {top} only)"
        out.append((label, verdict(ok), f"{top} vs 30: " + ", ".join(parts) + note))
    if 3 in summary:
        m = max(get(3, sc, "echo-iac", "rss_mb") for sc in SCENARIOS)
        out.append(("Peak memory < 30 MB for the echo stack", verdict(m < 30), f"{m:.1f} MB"))
    if 3000 in summary:
        m = max(get(3000, sc, "echo-iac", "rss_mb") for sc in SCENARIOS)
        out.append(("Peak memory < 100 MB for 3,000 objects", verdict(m < 100), f"{m:.1f} MB"))
    else:
        out.append(("Peak memory < 100 MB for 3,000 objects", "not measured",
                    "3,000 was not among BENCH_SIZES"))
    return out


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({cpu}){mem}"


def version_of(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def git_describe() -> str:
    rev = version_of(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = version_of(["git", "-C", str(REPO), "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"])
    return rev + (" with uncommitted changes to src/" if dirty else "")


def fmt_requests(n: float | None, size: int) -> str:
    return "–" if n is None else f"{n:.0f} ({n / size:.2f}/obj)"


def tools_of(summary: dict, scenario: str) -> list[str]:
    """The tools measured in a scenario, in table order."""
    order = ["echo-iac", "echo-iac-full", "kubectl", "pulumi", "pulumi-refresh", "floor"]
    seen = {t for n in summary for t in summary[n].get(scenario, {})}
    return [t for t in order if t in seen]


def label(tool: str, entry: dict) -> str:
    if tool == "floor":
        return f"floor (concurrency {entry.get('concurrency', '?')})"
    return TOOL_LABELS.get(tool, tool)


def ratio_table(summary: dict) -> list[str]:
    """echo-iac's wall time against each peer's, size by size."""
    peers = [t for t in ("echo-iac-full", "kubectl", "pulumi", "pulumi-refresh", "floor")
             if any(t in summary[n][sc] for n in summary for sc in SCENARIOS)]
    head = "| objects | scenario | " + " | ".join(f"÷ {TOOL_LABELS.get(p, p)}" for p in peers) + " |"
    lines = [head, "| ---: | --- |" + " ---: |" * len(peers)]
    for size in sorted(summary):
        for sc in SCENARIOS:
            e = summary[size][sc]["echo-iac"]["wall"]
            cells = []
            for p in peers:
                x = summary[size][sc].get(p)
                cells.append(f"{e / x['wall']:.2f}×" if x else "")
            lines.append(f"| {size} | {SHORT_TITLES[sc]} | " + " | ".join(cells) + " |")
    return lines


def write_results(s: Settings, summary: dict, meta: dict) -> None:
    tools = meta.get("tools", ["echo-iac", "kubectl"])
    peers = [t for t in ("kubectl", "Pulumi", "the floor")
             if t.lower().removeprefix("the ") in tools]
    named = ", ".join(peers[:-1]) + " and " + peers[-1] if len(peers) > 1 else "".join(peers)
    title = "Benchmarks: echo-iac against " + named
    lines = [
        f"# {title}",
        "",
        "Generated by `bench/run.sh` (`make bench`); do not edit by hand. See bench/README.md",
        "for what each scenario runs and how it is measured.",
        "",
        f"- date: {meta['date']}",
        f"- command: `{meta['command']}`",
        f"- machine: {meta['machine']}" + (f"; {meta['note']}" if meta.get("note") else ""),
        f"- echo-iac: {meta['echo_iac']} (release build, git {meta['git']})",
        f"- kubectl: {meta['kubectl']}; API server: {meta['server']} (local control plane, kwok nodes)",
    ]
    if meta.get("pulumi"):
        lines.append(f"- Pulumi: {meta['pulumi']}")
    if "floor" in tools:
        lines.append("- floor: bench/floor (client-go " + meta.get("client_go", "?") + "), concurrency "
                     + " / ".join(str(c) for c in FLOOR_CONCURRENCY) + " tried, the fastest shown")
    lines += [
        "- runs per point: " + ", ".join(f"{n} objects: {s.runs_by_size[n]}" for n in sorted(summary))
        + " (the tools' order rotates from run to run; medians shown; peak RSS is the max over runs)",
        f"- total benchmark time: {meta['elapsed']}; load average at the end: {meta.get('load', '?')}",
        "- other users of the control plane during the run: "
        + (f"{len(meta['others'])} namespaces of others seen (e.g. {', '.join(meta['others'][:3])}): "
           "their load adds noise to every tool" if meta.get("others") else "none seen"),
    ]
    if meta.get("missing"):
        lines.append(f"- not measured: {meta['missing']}")
    lines += [
        "",
        "Wall and CPU (user+sys, the whole process tree) are per command sequence; RSS is the",
        "peak resident memory summed over the process tree (Pulumi runs three processes);",
        ("requests are API requests received by the API server (its audit log)."
         if meta.get("requests_from") == "audit"
         else "requests are API requests as the tools count them (echo-iac's own count, "
         "kubectl's `-v=6` lines; not counted for Pulumi)."),
        "The last column is echo-iac's wall time divided by that tool's (below 1: echo-iac is faster).",
        "",
        "## Goals",
        "",
        "| goal | verdict | measured |",
        "| --- | --- | --- |",
    ]
    for goal, verdict, evidence in goals(summary):
        lines.append(f"| {goal} | {verdict} | {evidence} |")
    lines += ["", "## echo-iac's wall time against each peer's", ""] + ratio_table(summary)
    for sc in SCENARIOS:
        scenario_tools = tools_of(summary, sc)
        lines += ["", f"## {SCENARIO_TITLES[sc]}", ""]
        for t in scenario_tools:
            lines.append(f"- {TOOL_LABELS.get(t, t)}: {COMMANDS.get((sc, t), '')}")
        lines += [
            "",
            "| objects | tool | wall | ms/object | CPU | RSS | requests | echo-iac ÷ tool |",
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for size in sorted(summary):
            e = summary[size][sc]["echo-iac"]
            for t in scenario_tools:
                x = summary[size][sc].get(t)
                if not x:
                    lines.append(f"| {size} | {label(t, {})} | not measured | | | | | |")
                    continue
                ratio = "" if t == "echo-iac" else f"{e['wall'] / x['wall']:.2f}×"
                lines.append(
                    f"| {size} | {label(t, x)} | {fmt_time(x['wall'])} | {x['wall'] * 1000 / size:.1f} "
                    f"| {fmt_time(x['cpu'])} | {x['rss_mb']:.1f} MB | {fmt_requests(x['requests'], size)} "
                    f"| {ratio} |"
                )
    lines += ["", "![time per object](scaling.png)", ""]
    (s.out_dir / "RESULTS.md").write_text("\n".join(lines))


def plot(s: Settings, summary: dict, meta: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    sizes = sorted(summary)
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), sharex=True)
    style = {
        "echo-iac": ("#1f77b4", "-"),
        "echo-iac-full": ("#1f77b4", "--"),
        "kubectl": ("#d62728", "-"),
        "pulumi": ("#9467bd", "-"),
        "pulumi-refresh": ("#9467bd", "--"),
        "floor": ("#7f7f7f", ":"),
    }
    for ax, sc in zip(axes.flat, SCENARIOS):
        for tool in tools_of(summary, sc):
            points = [(n, summary[n][sc][tool]["wall"] * 1000 / n) for n in sizes if tool in summary[n][sc]]
            color, line = style[tool]
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", color=color,
                    linestyle=line, label=TOOL_LABELS.get(tool, tool), linewidth=2)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(SHORT_TITLES[sc])
        ax.set_ylabel("wall time per object (ms)")
        ax.grid(True, which="both", alpha=0.3)
        ax.set_xticks(sizes)
        ax.set_xticklabels([str(n) for n in sizes])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.legend(fontsize="small")
    for ax in axes[1]:
        ax.set_xlabel("objects in the stack (log)")
    peers = " vs ".join(t for t in ("kubectl", "Pulumi") if t.lower() in meta.get("tools", ["kubectl"]))
    fig.suptitle(f"echo-iac vs {peers}: wall time per object (medians; {meta['date']})")
    fig.tight_layout()
    fig.savefig(s.out_dir / "scaling.png", dpi=110)


# -- main -------------------------------------------------------------------------


def quantity(text: str) -> int:
    """A Kubernetes count quantity such as `110` or `1k`."""
    units = {"k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for suffix, factor in sorted(units.items(), key=lambda u: -len(u[0])):
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(float(text))


def preflight(r: Runner, s: Settings) -> list[int]:
    if not s.kubeconfig.exists():
        raise BenchError(f"no kubeconfig at {s.kubeconfig}: the local control plane is not running; run make cluster")
    ready = subprocess.run(
        [str(s.kubectl), f"--kubeconfig={s.kubeconfig}", f"--context={s.context}",
         "get", "--raw", "/readyz", "--request-timeout=5s"],
        capture_output=True, text=True)
    if ready.returncode != 0:
        raise BenchError("the local control plane does not answer "
                         f"({ready.stderr.strip() or ready.stdout.strip()}): run make cluster")
    nodes = json.loads(r.quiet("get", "nodes", "-o", "json"))["items"]
    capacity = sum(quantity(n["status"].get("allocatable", {}).get("pods", "0")) for n in nodes)
    pods = json.loads(r.quiet("get", "pods", "-A", "-o", "json"))["items"]
    need = max(s.sizes) // 3 + 1
    if need > capacity - len(pods):
        raise BenchError(f"{len(nodes)} nodes with room for {capacity} pods ({len(pods)} used) "
                         f"cannot hold the {need} pods of {max(s.sizes)} objects")
    services = json.loads(r.quiet("get", "services", "-A", "-o", "json"))["items"]
    used = {p.get("nodePort") for svc in services for p in svc["spec"].get("ports", [])}
    free = [p for p in dict.fromkeys(s.ports) if p not in used and 30000 <= p <= 32767]
    if len(free) < max(s.sizes) // 3:
        raise BenchError(f"{max(s.sizes)} objects need {max(s.sizes) // 3} node ports; only {len(free)} "
                         "of BENCH_PORTS are free")
    bad = [n for n in s.sizes if n % 3 or n <= 0]
    if bad:
        raise BenchError(f"sizes must be positive multiples of 3 (one ConfigMap, Deployment and Service per entry): {bad}")
    print(f"cluster: {len(nodes)} nodes, room for {capacity} pods; {len(free)} free node ports in BENCH_PORTS",
          flush=True)
    return free


def run_size(r: Runner, b: SizeBench, runs: int) -> dict:
    """All runs at one size: samples[scenario][tool] = [Sample...]."""
    out: dict = {}
    b.setup()
    size_start = time.monotonic()
    for run in range(runs):
        k = run % len(b.tools)
        order = b.tools[k:] + b.tools[:k]
        for tool in order:
            t0 = time.monotonic()
            result = b.cycle(tool)
            for key, sample in result.items():
                sc, _, name = key.partition("/")
                out.setdefault(sc, {}).setdefault(name or tool, []).append(sample)
            print(f"  {b.size:>5} objects  run {run + 1}/{runs}  {tool:<8} "
                  + "  ".join(f"{sc} {fmt_time(result[sc].wall)}" for sc in SCENARIOS)
                  + (f"  noop --full {fmt_time(result['noop/echo-iac-full'].wall)}"
                     if "noop/echo-iac-full" in result else "")
                  + (f"  noop --refresh {fmt_time(result['noop/pulumi-refresh'].wall)}"
                     if "noop/pulumi-refresh" in result else "")
                  + (f"  floor {fmt_time(min(v.wall for k2, v in result.items() if '/floor@' in k2))}"
                     if any("/floor@" in k2 for k2 in result) else "")
                  + f"  ({time.monotonic() - t0:.0f}s)", flush=True)
    print(f"{b.size} objects done in {time.monotonic() - size_start:.0f}s", flush=True)
    return out


def report_from(path: Path) -> int:
    """Rewrites RESULTS.md and scaling.png from a results.json."""
    s = Settings.from_env()
    data = json.loads(path.read_text())
    summary = {int(n): v for n, v in data["summary"].items()}
    meta = data["meta"]
    s.runs_by_size = {n: summary[n]["noop"]["echo-iac"]["runs"] for n in summary}
    write_results(s, summary, meta)
    plot(s, summary, meta)
    print(f"wrote {s.out_dir / 'RESULTS.md'} and {s.out_dir / 'scaling.png'} from {path}")
    return 0


def pulumi_description(s: Settings) -> str:
    if not s.pulumi_bin:
        return ""
    v = pulumi_versions()
    cli = version_of([str(s.pulumi_bin / "pulumi"), "version"]) or v["PULUMI_VERSION"]
    return (f"CLI {cli}, pulumi-kubernetes provider {v['PULUMI_K8S_PROVIDER_VERSION']} "
            f"(server-side apply), pulumi-language-yaml {v['PULUMI_YAML_VERSION']}; "
            "file:// backend, default parallelism, built from source by bench/pulumi/build.sh")


def client_go_version() -> str:
    found = re.search(r"k8s.io/client-go (v\S+)", (HERE / "floor/go.mod").read_text())
    return found.group(1) if found else "?"


class Report:
    """Writes results.json, RESULTS.md and scaling.png, after each size as
    well as at the end, so that a run stopped part-way keeps what it measured."""

    def __init__(self, s: Settings, r: Runner, git: str, started: float):
        self.s, self.r, self.git, self.started = s, r, git, started
        server = json.loads(r.quiet("version", "-o", "json")).get("serverVersion", {})
        self.meta = {
            "command": s.command + f" BENCH_SIZES=\"{s.sizes_text}\" BENCH_RUNS={s.runs}"
            + (f" BENCH_TOOLS=\"{s.tools_text}\"" if os.environ.get("BENCH_TOOLS") else ""),
            "machine": machine(),
            "note": os.environ.get("BENCH_NOTE", ""),
            "echo_iac": version_of([str(s.echo_iac), "--version"]),
            "kubectl": version_of([str(s.kubectl), "version", "--client", "-o", "json"]),
            "server": server.get("gitVersion", "?"),
            "git": git,
            "tools": s.tools,
            "pulumi": pulumi_description(s),
            "client_go": client_go_version(),
            "requests_from": "audit" if s.audit_log else "tools",
        }
        try:
            self.meta["kubectl"] = "kubectl " + json.loads(self.meta["kubectl"])["clientVersion"]["gitVersion"]
        except (ValueError, KeyError):
            pass

    def write(self, samples: dict, final: bool) -> None:
        if not samples:
            return
        s = self.s
        summary = summarize(samples)
        elapsed = time.monotonic() - self.started
        missing = [n for n in s.sizes if n not in samples]
        meta = dict(self.meta, **{
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "elapsed": f"{elapsed / 60:.1f} min",
            "others": sorted(self.r.others),
            "load": "%.2f %.2f %.2f" % os.getloadavg(),
            "missing": (", ".join(f"{n} objects" for n in missing)
                        + (" (the run was stopped before them)" if final else " (still running)"))
            if missing else "",
        })
        s.out_dir.mkdir(parents=True, exist_ok=True)
        raw = {str(n): {sc: {t: [vars(x) for x in runs] for t, runs in by_t.items()}
                        for sc, by_t in by_sc.items()} for n, by_sc in samples.items()}
        (s.out_dir / "results.json").write_text(
            json.dumps({"meta": meta, "summary": summary, "samples": raw}, indent=1, default=str) + "\n")
        done = dataclasses.replace(s, runs_by_size={n: s.runs_by_size[n] for n in summary})
        write_results(done, summary, meta)
        plot(done, summary, meta)


def main() -> int:
    # SIGTERM cleans up like Ctrl-C: the namespaces go, the node ports are freed.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if len(sys.argv) == 3 and sys.argv[1] == "--report":
        return report_from(Path(sys.argv[2]))
    s = Settings.from_env()
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="echo-iac-bench-"))
    # A copy, so that a rebuild during the benchmark does not change the binary.
    binary = work / "echo-iac"
    shutil.copy2(s.echo_iac, binary)
    s.echo_iac = binary
    r = Runner(s, work)
    r.calibrate()
    git = git_describe()  # what the binary was built from, before anyone commits more
    run_id = uuid.uuid4().hex[:6]
    samples: dict = {}
    benches: list[SizeBench] = []
    print("bench: " + " vs ".join(s.tools) + "; requests counted from "
          + ("the API server's audit log" if s.audit_log else "the tools' own output"), flush=True)
    try:
        ports = preflight(r, s)
        r.wait_for_cluster(limit=60)
        report = Report(s, r, git, started)
        for size in s.sizes:
            for attempt in range(1, 4):
                r.wait_for_cluster()
                r.note_others()
                b = SizeBench(r, size, f"{run_id}{attempt}", ports)
                benches.append(b)
                try:
                    samples[size] = run_size(r, b, s.runs_by_size[size])
                    b.teardown()
                    break
                except BenchError as e:
                    b.teardown()
                    if attempt == 3:
                        raise
                    # Others share the control plane (tests stop and restart
                    # it): wait until it is healthy again and start the size over.
                    print(f"bench: {size} objects failed ({str(e).splitlines()[0]}); "
                          "running that size again once the control plane is healthy",
                          file=sys.stderr, flush=True)
                    r.wait_for_cluster()
                    ports = preflight(r, s)
            report.write(samples, final=False)
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        for b in benches:
            b.teardown()
        if samples:
            report.write(samples, final=True)
            print(f"bench: wrote the sizes measured so far to {s.out_dir}", file=sys.stderr)
        print(f"bench: logs kept in {work}/logs", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        for b in benches:
            b.teardown()
        if samples:
            report.write(samples, final=True)
        return 130

    report.write(samples, final=True)
    elapsed = time.monotonic() - started
    print()
    print((s.out_dir / "RESULTS.md").read_text())
    print(f"wrote {s.out_dir / 'RESULTS.md'}, {s.out_dir / 'scaling.png'} and results.json in {elapsed / 60:.1f} min")
    if not s.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
