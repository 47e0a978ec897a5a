"""Cold-start init time of a Lambda `bootstrap` and, for the api function, its time per request.

Init: from process start until the runtime asks for its first invocation
(GET /2018-06-01/runtime/invocation/next) from a minimal runtime API emulator on loopback. That
span covers everything the function does at init: loading the binary, reading its environment,
building the SDK clients and the service, parsing the config, reading the catalog table.

Per request (`--requests N`, the api function): N API Gateway HTTP API events for
`GET /api/v1/commands` (answered from the function's memory, no AWS call within the catalog's
refresh interval), each timed from the moment the runtime hands it over until the function
posts its response: the function's own work per request, without the network of a real one.

The function's AWS calls at init go to `AWS_ENDPOINT_URL` (the moto server `scripts/lambda-bench`
starts) with the stack's `HEIMDALL_*` variables taken from this process's environment.

Usage: python3 scripts/cold_start.py PATH_TO_BOOTSTRAP [RUNS] [--requests N]
"""
import http.server
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_event(path):
    return json.dumps({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {"accept": "application/json"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "api123",
            "authorizer": {"jwt": {"claims": {"sub": "0000-sub", "username": "bench"}, "scopes": None}},
            "domainName": "api123.execute-api.us-east-1.amazonaws.com", "domainPrefix": "api123",
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"},
            "requestId": str(uuid.uuid4()), "routeKey": "$default", "stage": "$default",
            "time": "08/Dec/2026:00:00:00 +0000", "timeEpoch": 1796688000000,
        },
        "isBase64Encoded": False,
    }).encode()


def one_run(bootstrap, requests):
    """Init time in ms and the times of `requests` invocations in ms."""
    ready = threading.Event()
    done = threading.Event()
    state = {"handed": 0, "handed_at": 0.0, "times": [], "failure": None}

    class RuntimeApi(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            if not self.path.endswith("/runtime/invocation/next"):
                return self.answer(404, b"{}")
            ready.set()
            if state["handed"] >= requests:
                done.set()
                time.sleep(5)  # long enough: the process is killed once done is seen
                return
            state["handed"] += 1
            body = api_event("/api/v1/commands")
            self.send_response(200)
            self.send_header("Lambda-Runtime-Aws-Request-Id", str(uuid.uuid4()))
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:api")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            state["handed_at"] = time.perf_counter()
            self.wfile.write(body)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            if self.path.endswith("/response"):
                state["times"].append((time.perf_counter() - state["handed_at"]) * 1000)
                if b'"statusCode":200' not in body.replace(b" ", b""):
                    state["failure"] = body[:300]
            else:  # an init or invocation error
                state["failure"] = body[:300]
                done.set()
            self.answer(202, b"{}")

        def answer(self, status, body):
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {name: value for name, value in os.environ.items() if name.startswith(("HEIMDALL_", "AWS_"))}
    env.update({
        "PATH": "/usr/bin:/bin",
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": "api",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "cold-start",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/api",
        "RUST_LOG": "warn",
    })
    started = time.perf_counter()
    process = subprocess.Popen([bootstrap], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if not ready.wait(timeout=30):
        process.kill()
        sys.exit(f"{bootstrap} never asked for an invocation: {process.stderr.read()[-2000:].decode(errors='replace')}")
    elapsed = time.perf_counter() - started
    if requests and not done.wait(timeout=60):
        state["failure"] = state["failure"] or b"the invocations did not finish"
    process.kill()
    stderr = process.stderr.read()
    process.wait()
    server.shutdown()
    if state["failure"]:
        sys.exit(f"{bootstrap} failed: {state['failure']!r} {stderr[-2000:].decode(errors='replace')}")
    return elapsed * 1000, state["times"]


def summary(times):
    times = sorted(times)
    p90 = times[max(0, int(round(0.9 * len(times))) - 1)]
    return f"median {statistics.median(times):.2f} ms, p90 {p90:.2f} ms, min {times[0]:.2f} ms, max {times[-1]:.2f} ms"


def main():
    arguments = [a for a in sys.argv[1:] if not a.startswith("--requests")]
    requests = 0
    for index, argument in enumerate(sys.argv):
        if argument == "--requests":
            requests = int(sys.argv[index + 1])
            arguments.remove(sys.argv[index + 1])
    bootstrap = arguments[0]
    runs = int(arguments[1]) if len(arguments) > 1 else 20
    results = [one_run(bootstrap, requests) for _ in range(runs)]
    name = os.path.basename(os.path.dirname(bootstrap))
    print(f"{name}: {runs} cold starts, init {summary([init for init, _ in results])}")
    if requests:
        # The first request of each process pays for warming (allocations, lazy statics): apart.
        firsts = [times[0] for _, times in results]
        warm = [t for _, times in results for t in times[1:]]
        print(f"{name}: first request {summary(firsts)}; {len(warm)} warm requests {summary(warm)}")


if __name__ == "__main__":
    main()
