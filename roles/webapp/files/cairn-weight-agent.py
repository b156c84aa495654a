#!/usr/bin/env python3
"""
cairn's weight agent for HAProxy's agent-check (document 000: weight = base + (current_qps / max_qps) x factor).

HAProxy connects to the agent port every agent-inter and reads one line; "NN%" sets the server's weight to
NN % of its configured weight (HAProxy's configuration manual, "agent-check"). The agent samples nginx's
stub_status request counter every --sample-s seconds, takes the requests per second since the last sample
as current_qps, and answers base + min(current_qps / max_qps, 1) x factor, clamped to 1..100. When nginx
cannot be read it answers `base` alone (whether the server is up is the health check's business, not this).
It never answers a state word (drain, maint): those stay with the operator and `cairn drain`.
"""
import argparse
import re
import socketserver
import threading
import time
import urllib.request

# nginx stub_status: "Active connections: 1 \nserver accepts handled requests\n 7 7 9 \nReading: ..."
COUNTERS = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s*$", re.M)


def read_requests(url, timeout):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body = response.read(4096).decode("ascii", "replace")
    match = COUNTERS.search(body)
    if not match:
        raise ValueError("not nginx stub_status output")
    return int(match.group(3))


def weight_percent(qps, max_qps, base, factor):
    ratio = min(max(qps / max_qps, 0.0), 1.0)
    return max(1, min(100, round(base + ratio * factor)))


class Sampler(threading.Thread):
    def __init__(self, args):
        super().__init__(daemon=True)
        self.args = args
        self.qps = None
        self.lock = threading.Lock()

    def run(self):
        last = None
        while True:
            try:
                sample = (time.monotonic(), read_requests(self.args.status_url, self.args.sample_s))
                if last is not None and sample[0] > last[0] and sample[1] >= last[1]:
                    with self.lock:
                        self.qps = (sample[1] - last[1]) / (sample[0] - last[0])
                last = sample
            except Exception:  # nginx down or not answering: no rate, the agent answers base
                last = None
                with self.lock:
                    self.qps = None
            time.sleep(self.args.sample_s)

    def percent(self):
        with self.lock:
            qps = self.qps
        if qps is None:
            return max(1, min(100, round(self.args.base)))
        return weight_percent(qps, self.args.max_qps, self.args.base, self.args.factor)


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--listen", default="0.0.0.0")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--status-url", required=True)
    parser.add_argument("--base", type=float, default=50.0)
    parser.add_argument("--factor", type=float, default=50.0)
    parser.add_argument("--max-qps", type=float, default=1000.0)
    parser.add_argument("--sample-s", type=float, default=1.0)
    args = parser.parse_args()
    if args.max_qps <= 0:
        parser.error("--max-qps must be above 0")
    sampler = Sampler(args)
    sampler.start()

    class Answer(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.sendall(f"{sampler.percent()}%\n".encode("ascii"))

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.daemon_threads = True
    with socketserver.ThreadingTCPServer((args.listen, args.port), Answer) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
