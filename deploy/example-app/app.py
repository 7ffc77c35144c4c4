"""The seed article's example exporter, ready to sit behind Scrapeguard.

Two metrics, as in the article: app_processed_tasks_total (a counter) and
app_active_workers (a gauge), with simulated activity.

What changed for the sidecar setup:
  * The metrics server binds to EXPORTER_ADDR, 127.0.0.1 by default, instead of
    every interface: only processes in the same pod (the Scrapeguard sidecar) can
    scrape it. start_http_server() takes the address as `addr`.
  * SIGTERM ends the loop and the process exits at once, so the pod terminates
    without waiting for the grace period.
  * No prints on every task; logging goes to stderr at startup and shutdown only.
"""

import logging
import os
import random
import signal
import threading

from prometheus_client import Counter, Gauge, start_http_server

PROCESSED_TASKS = Counter(
    "app_processed_tasks",  # the client appends _total
    "Total number of tasks processed by the application.",
)
ACTIVE_WORKERS = Gauge(
    "app_active_workers",
    "Current number of active workers in the application.",
)

stop = threading.Event()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    addr = os.environ.get("EXPORTER_ADDR", "127.0.0.1")
    port = int(os.environ.get("EXPORTER_PORT", "8000"))

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    start_http_server(port, addr=addr)
    logging.info("metrics on http://%s:%d/metrics", addr, port)

    ACTIVE_WORKERS.set(random.randint(1, 10))
    while not stop.is_set():
        # Simulated work: one task every 1.1 to 1.5 seconds.
        if stop.wait(random.uniform(0.1, 0.5)):
            break
        PROCESSED_TASKS.inc()
        if random.random() < 0.3:
            ACTIVE_WORKERS.set(random.randint(1, 10))
        stop.wait(1)
    logging.info("stopping")


if __name__ == "__main__":
    main()
