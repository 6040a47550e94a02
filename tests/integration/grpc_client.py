#!/usr/bin/python3
"""tests/integration/grpc_client.py: a real grpcio client of vmmd for
vmmd-grpc.sh.  Stubs are generated from api/vmm.proto and api/health.proto
into a temporary directory at each run, so the test always speaks the
schema in the tree.  Needs Debian's python3-grpcio and python3-grpc-tools,
which are for /usr/bin/python3 (not a pyenv python3 on PATH).

usage: grpc_client.py (--socket PATH | --tcp HOST:PORT --tls-ca CA
                      [--tls-cert CERT --tls-key KEY]) [--srcdir DIR] COMMAND ...
  call METHOD [JSON]     unary Vmm call; prints the reply as JSON
  raw PATH HEX           unary call of any method path with raw request bytes
  health [SERVICE]       Health/Check; prints the serving status
  health-watch [SERVICE] Health/Watch; prints the first status
  watch [--vm-id ID] [--count N] [--timeout S] [--then METHOD JSON]
                         WatchEvents; once subscribed, makes the --then
                         call, then prints N events (one JSON line each)
  console VM_ID TEXT [--count N]
                         ConsoleStream: names the VM, types TEXT, prints
                         N output messages, then hangs up
A failed call prints "ERROR <CODE> field=<FIELD>: <details>" and exits 3.
"""
import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading


def load_stubs(srcdir):
    out = tempfile.mkdtemp(prefix="vmmd-grpc-stubs.")
    try:
        subprocess.run([sys.executable, "-m", "grpc_tools.protoc",
                        "-I" + os.path.join(srcdir, "api"), "-I/usr/include",
                        "--python_out=" + out, "--grpc_python_out=" + out,
                        "vmm.proto", "health.proto"], check=True)
        sys.path.insert(0, out)
        return (importlib.import_module("vmm_pb2"), importlib.import_module("vmm_pb2_grpc"),
                importlib.import_module("health_pb2"),
                importlib.import_module("health_pb2_grpc"))
    finally:
        # the modules are loaded; the files are not needed any more
        shutil.rmtree(out, ignore_errors=True)


def to_json(msg):
    from google.protobuf import json_format
    return json.dumps(json_format.MessageToDict(msg, preserving_proto_field_name=True),
                      sort_keys=True)


def fail(err):
    field = ""
    for k, v in (err.trailing_metadata() or ()):
        if k == "vmmd-error-field":
            field = v
    print("ERROR %s field=%s: %s" % (err.code().name, field, err.details()))
    sys.stdout.flush()
    sys.exit(3)


def main():
    import grpc
    from google.protobuf import json_format

    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", help="vmmd's gRPC Unix socket")
    ap.add_argument("--tcp", help="HOST:PORT served with TLS instead of the socket")
    ap.add_argument("--tls-ca", help="CA that signed vmmd's certificate (PEM)")
    ap.add_argument("--tls-cert", help="client certificate (PEM)")
    ap.add_argument("--tls-key", help="client key (PEM)")
    ap.add_argument("--srcdir", default=os.path.join(os.path.dirname(__file__), "..", ".."))
    ap.add_argument("--deadline", type=float, default=10.0)
    ap.add_argument("command")
    ap.add_argument("args", nargs="*")
    ap.add_argument("--vm-id", default="")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--then", nargs=2, metavar=("METHOD", "JSON"))
    a = ap.parse_args()

    vmm_pb2, vmm_grpc, health_pb2, health_grpc = load_stubs(a.srcdir)
    if a.tcp:
        def pem(path):
            if not path:
                return None
            with open(path, "rb") as f:
                return f.read()
        creds = grpc.ssl_channel_credentials(pem(a.tls_ca), pem(a.tls_key), pem(a.tls_cert))
        chan = grpc.secure_channel(a.tcp, creds)
    elif a.socket:
        chan = grpc.insecure_channel("unix:" + os.path.abspath(a.socket))
    else:
        sys.exit("--socket or --tcp is required")
    vmm = vmm_grpc.VmmStub(chan)
    methods = vmm_pb2.DESCRIPTOR.services_by_name["Vmm"].methods_by_name

    def unary(name, body):
        if name not in methods:
            sys.exit("no method %s in vmm.proto" % name)
        req = getattr(vmm_pb2, methods[name].input_type.name)()
        json_format.Parse(body or "{}", req)
        try:
            return getattr(vmm, name)(req, timeout=a.deadline)
        except grpc.RpcError as err:
            fail(err)

    if a.command == "call":
        print(to_json(unary(a.args[0], a.args[1] if len(a.args) > 1 else "{}")))
    elif a.command == "raw":
        call = chan.unary_unary(a.args[0])  # bytes in, bytes out
        try:
            reply = call(bytes.fromhex(a.args[1] if len(a.args) > 1 else ""),
                         timeout=a.deadline)
            print("OK %s" % reply.hex())
        except grpc.RpcError as err:
            fail(err)
    elif a.command in ("health", "health-watch"):
        stub = health_grpc.HealthStub(chan)
        req = health_pb2.HealthCheckRequest(service=a.args[0] if a.args else "")
        try:
            if a.command == "health":
                resp = stub.Check(req, timeout=a.deadline)
            else:
                stream = stub.Watch(req, timeout=a.deadline)
                resp = next(stream)
                stream.cancel()
            print(health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status))
        except grpc.RpcError as err:
            fail(err)
    elif a.command == "watch":
        req = vmm_pb2.WatchEventsRequest(vm_id=a.vm_id)
        stream = vmm.WatchEvents(req, timeout=a.timeout)
        try:
            # vmmd answers the metadata once it has subscribed us
            stream.initial_metadata()
            if a.then:
                print("# then: " + to_json(unary(a.then[0], a.then[1])))
            for n, ev in enumerate(stream, 1):
                print(to_json(ev))
                sys.stdout.flush()
                if n >= a.count:
                    break
            stream.cancel()
        except grpc.RpcError as err:
            fail(err)
    elif a.command == "console":
        first = threading.Event()

        def requests():
            yield vmm_pb2.ConsoleStreamRequest(vm_id=a.args[0])
            yield vmm_pb2.ConsoleStreamRequest(data=a.args[1].encode())
            # stay open until the output was read, then half-close
            first.wait(a.timeout)

        stream = vmm.ConsoleStream(requests(), timeout=a.timeout)
        try:
            for n, msg in enumerate(stream, 1):
                print("DATA %s" % json.dumps(msg.data.decode(errors="replace")))
                sys.stdout.flush()
                if n >= a.count:
                    first.set()
                    break
            # after the half-close vmmd ends the call with OK
            for msg in stream:
                pass
            print("END %s" % stream.code().name)
        except grpc.RpcError as err:
            fail(err)
    else:
        sys.exit("unknown command %s" % a.command)


if __name__ == "__main__":
    main()
