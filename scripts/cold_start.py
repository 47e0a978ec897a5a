"""Cold-start init time of a Lambda `bootstrap`: the time from process start until the runtime
asks for its first invocation (GET /2018-06-01/runtime/invocation/next) from a minimal runtime
API emulator on loopback. That span covers everything the function does at init: loading the
binary, reading its environment, building the SDK clients and the service, parsing the config.

Usage: python3 scripts/cold_start.py PATH_TO_BOOTSTRAP [RUNS]
"""
import http.server
import os
import socket
import statistics
import subprocess
import sys
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_run(bootstrap):
    ready = threading.Event()

    class RuntimeApi(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.endswith("/runtime/invocation/next"):
                ready.set()
            time.sleep(2)  # long enough: the process is killed once ready is seen

        def log_message(self, *args):
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": "api",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "cold-start",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/api",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "HEIMDALL_TABLE": "heimdall-jobs",
        "HEIMDALL_BUCKET": "heimdall-artifacts",
        "HEIMDALL_QUEUE_URL": "http://127.0.0.1:5000/123456789012/heimdall-jobs",
        "HEIMDALL_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:heimdall-async-job",
    }
    started = time.perf_counter()
    process = subprocess.Popen([bootstrap], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not ready.wait(timeout=30):
        process.kill()
        sys.exit("the function never asked for an invocation")
    elapsed = time.perf_counter() - started
    process.kill()
    process.wait()
    server.shutdown()
    return elapsed * 1000


def main():
    bootstrap = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    times = sorted(one_run(bootstrap) for _ in range(runs))
    p90 = times[max(0, int(round(0.9 * len(times))) - 1)]
    print(f"{os.path.basename(os.path.dirname(bootstrap))}: {runs} cold starts, init median {statistics.median(times):.1f} ms, "
          f"p90 {p90:.1f} ms, min {times[0]:.1f} ms, max {times[-1]:.1f} ms")


if __name__ == "__main__":
    main()
