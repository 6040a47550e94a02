#!/usr/bin/python3
"""tests/bench/api_bench.py: vmmd's API under load (run by tests/bench/api).

1. Request latency (p50, p99) and throughput of GetVm and ListVms over REST
   (HTTP/1.1 keep-alive on the Unix socket) and gRPC (grpcio on the Unix
   socket), with 10 VMs registered and none running.
2. Fleet: create+start N tiny-guest VMs through REST (each waited until
   running), then stop (force) and delete them: total times, vmmd's RSS with N
   VMs running, and each worker's RSS less the guest RAM it touched (the
   memfd's resident pages, RssShmem).
Prints a table, or one JSON object with --json.  Needs Debian's
python3-grpcio and python3-grpc-tools (for /usr/bin/python3).
"""
import argparse
import http.client
import json
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import grpc_client  # noqa: E402  (stub generation from api/vmm.proto)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=60)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(self.path)


def rest(conn, method, path, body=None):
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status >= 300:
        raise RuntimeError("%s %s: HTTP %d %s" % (method, path, resp.status, data[:200]))
    return json.loads(data) if data else None


def pct(samples, p):
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * p / 100))]


def latencies(call, n):
    call()  # warm up the connection
    out = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        out.append((time.perf_counter() - t) * 1e6)
    return out


def timed_loop(call, n):
    """(n, start, end) of n calls after a warm-up one, in wall-clock time."""
    call()
    start = time.time()
    for _ in range(n):
        call()
    return n, start, time.time()


def rest_worker(args):
    sock, path, n = args
    conn = UnixHTTPConnection(sock)
    return timed_loop(lambda: rest(conn, "GET", path), n)


def grpc_worker(args):
    sock, srcdir, method, n = args
    import grpc
    pb, pb_grpc, _, _ = grpc_client.load_stubs(srcdir)
    stub = pb_grpc.VmmStub(grpc.insecure_channel("unix:" + sock))
    req = pb.GetVmRequest(id="vm0") if method == "GetVm" else pb.ListVmsRequest()
    return timed_loop(lambda: getattr(stub, method)(req), n)


def throughput(worker, jobs):
    """Requests per second of len(jobs) concurrent clients, from the first
    client's first timed request to the last one's end (process start-up and
    stub generation are not counted)."""
    # spawn, not fork: grpc cannot be used in a child forked after it started.
    with multiprocessing.get_context("spawn").Pool(len(jobs)) as pool:
        runs = pool.map(worker, jobs)
    return sum(r[0] for r in runs) / (max(r[2] for r in runs) - min(r[1] for r in runs))


def rss_kib(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def wait_op(conn, op, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        o = rest(conn, "GET", "/v1/operations/" + op["id"])
        if o["state"] != "OPERATION_STATE_RUNNING":
            if o["state"] != "OPERATION_STATE_SUCCEEDED":
                raise RuntimeError("operation %s: %s" % (o["id"], o))
            return o
        time.sleep(0.01)
    raise RuntimeError("operation %s timed out" % op["id"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vmmd", required=True)
    ap.add_argument("--vmm", required=True)
    ap.add_argument("--tiny", required=True)
    ap.add_argument("--srcdir", required=True)
    ap.add_argument("--vms", type=int, default=100)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="vmmd-bench-api.")
    shutil.copy(a.tiny, os.path.join(work, "tiny.elf"))
    log = open(os.path.join(work, "vmmd.log"), "w")
    vmmd = subprocess.Popen([a.vmmd, "--vmm", a.vmm, "--allow-dir", work], cwd=work,
                            stdout=log, stderr=log)
    rsock = os.path.join(work, "run", "vmmd.sock")
    gsock = os.path.join(work, "run", "vmmd.grpc.sock")
    res = {}
    try:
        for _ in range(200):
            if os.path.exists(rsock) and os.path.exists(gsock):
                break
            time.sleep(0.05)
        conn = UnixHTTPConnection(rsock)
        spec = {"vcpus": 1, "memory_mib": "32", "kernel": os.path.join(work, "tiny.elf"),
                "cmdline": "heartbeat=63"}
        for i in range(10):
            wait_op(conn, rest(conn, "POST", "/v1/vms", {"spec": dict(spec, name="vm%d" % i)}))

        # 1. Latency and throughput.
        import grpc
        pb, pb_grpc, _, _ = grpc_client.load_stubs(a.srcdir)
        stub = pb_grpc.VmmStub(grpc.insecure_channel("unix:" + gsock))
        calls = {
            "rest_get_vm": lambda: rest(conn, "GET", "/v1/vms/vm0"),
            "rest_list_vms": lambda: rest(conn, "GET", "/v1/vms"),
            "grpc_get_vm": lambda: stub.GetVm(pb.GetVmRequest(id="vm0")),
            "grpc_list_vms": lambda: stub.ListVms(pb.ListVmsRequest()),
        }
        for name, call in calls.items():
            lat = latencies(call, a.requests)
            res[name] = {"p50_us": round(pct(lat, 50)), "p99_us": round(pct(lat, 99)),
                         "mean_us": round(statistics.mean(lat))}
        per = a.requests // a.clients
        res["rest_get_vm"]["rps"] = round(throughput(
            rest_worker, [(rsock, "/v1/vms/vm0", per)] * a.clients))
        res["rest_list_vms"]["rps"] = round(throughput(
            rest_worker, [(rsock, "/v1/vms", per)] * a.clients))
        res["grpc_get_vm"]["rps"] = round(throughput(
            grpc_worker, [(gsock, a.srcdir, "GetVm", per)] * a.clients))
        res["grpc_list_vms"]["rps"] = round(throughput(
            grpc_worker, [(gsock, a.srcdir, "ListVms", per)] * a.clients))
        for i in range(10):
            wait_op(conn, rest(conn, "DELETE", "/v1/vms/vm%d" % i))

        # 2. The fleet.
        rss_idle = rss_kib(vmmd.pid)
        t = time.perf_counter()
        for i in range(a.vms):
            wait_op(conn, rest(conn, "POST", "/v1/vms",
                               {"spec": dict(spec, name="f%d" % i), "start": True}))
        t_start = time.perf_counter() - t
        time.sleep(1)
        vms = rest(conn, "GET", "/v1/vms")["vms"]
        running = [v for v in vms if v["status"].get("state") == "VM_STATE_RUNNING"]
        overhead = []
        for v in running:
            pid = int(v["status"]["pid"])
            total = rss_kib(pid)
            overhead.append((total - rss_kib(pid, "RssShmem")) / 1024)
        rss_fleet = rss_kib(vmmd.pid)
        t = time.perf_counter()
        for i in range(a.vms):
            wait_op(conn, rest(conn, "POST", "/v1/vms/f%d:stop" % i, {"force": True}))
            wait_op(conn, rest(conn, "DELETE", "/v1/vms/f%d" % i))
        t_stop = time.perf_counter() - t
        res["fleet"] = {
            "vms": a.vms, "running": len(running),
            "create_start_s": round(t_start, 2), "stop_delete_s": round(t_stop, 2),
            "vmmd_rss_idle_mib": round(rss_idle / 1024, 1),
            "vmmd_rss_mib": round(rss_fleet / 1024, 1),
            "worker_overhead_mib_median": round(statistics.median(overhead), 2) if overhead else None,
            "worker_overhead_mib_max": round(max(overhead), 2) if overhead else None,
        }
    finally:
        vmmd.send_signal(signal.SIGTERM)
        vmmd.wait(timeout=30)
        log.close()
        # Workers outlive vmmd by design: stop what is left.
        subprocess.run(["pkill", "-f", "--", work], check=False)
        shutil.rmtree(work, ignore_errors=True)

    if a.json:
        print(json.dumps(res, sort_keys=True))
        return 0
    print("%-15s %9s %9s %9s %9s" % ("call", "p50 us", "p99 us", "mean us", "req/s"))
    for name in calls:
        r = res[name]
        print("%-15s %9d %9d %9d %9d" % (name, r["p50_us"], r["p99_us"], r["mean_us"], r["rps"]))
    f = res["fleet"]
    print("fleet: %d VMs (%d running): create+start %.2f s, stop+delete %.2f s" %
          (f["vms"], f["running"], f["create_start_s"], f["stop_delete_s"]))
    print("vmmd RSS: %.1f MiB idle, %.1f MiB with the fleet (target < 32)" %
          (f["vmmd_rss_idle_mib"], f["vmmd_rss_mib"]))
    print("worker RSS less guest RAM: median %s MiB, max %s MiB (target <= 5)" %
          (f["worker_overhead_mib_median"], f["worker_overhead_mib_max"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
