"""Celery app for the montage-scaler test harness (test/servers).

Configured by environment variables so one file serves every test:
MONTAGE_BROKER_URL, MONTAGE_KEY_PREFIX, MONTAGE_ACKS_LATE (1/0),
MONTAGE_VISIBILITY_TIMEOUT (seconds, optional), MONTAGE_PREFETCH,
MONTAGE_CONTROL_URL (Redis URL for the block task's control keys),
MONTAGE_MASTER_NAME (the sentinel master, for a sentinel:// broker).
"""
import json
import os
import time

import redis
from celery import Celery

app = Celery("montage_test", broker=os.environ["MONTAGE_BROKER_URL"])
transport = {}
if os.environ.get("MONTAGE_KEY_PREFIX"):
    transport["global_keyprefix"] = os.environ["MONTAGE_KEY_PREFIX"]
if os.environ.get("MONTAGE_MASTER_NAME"):
    transport["master_name"] = os.environ["MONTAGE_MASTER_NAME"]
if os.environ.get("MONTAGE_VISIBILITY_TIMEOUT"):
    transport["visibility_timeout"] = float(os.environ["MONTAGE_VISIBILITY_TIMEOUT"])
app.conf.broker_transport_options = transport
app.conf.task_acks_late = os.environ.get("MONTAGE_ACKS_LATE", "1") == "1"
app.conf.worker_prefetch_multiplier = int(os.environ.get("MONTAGE_PREFETCH", "1"))
app.conf.broker_connection_retry_on_startup = True
app.conf.task_default_queue = "celery"

STARTED = "montage:started"
RELEASE = "montage:release:"
RENDERS = "montage:renders"


def control():
    return redis.Redis.from_url(os.environ.get("MONTAGE_CONTROL_URL") or os.environ["MONTAGE_BROKER_URL"])


@app.task(name="montage.block")
def block(key):
    """Record that it started, then wait until the test pushes RELEASE+key."""
    r = control()
    r.rpush(STARTED, key)
    r.blpop(RELEASE + key, 0)
    return key


@app.task(name="montage.noop")
def noop():
    return None


@app.task(name="montage.render", bind=True)
def render(self, key, seconds, cpu_millis=0):
    """A render that takes seconds (it sleeps) and, by the test's account,
    cpu_millis of CPU while it runs: it records its start and end, with the
    worker's hostname, on the RENDERS list (JSON), so the test knows every
    task's fate and where it ran."""
    r = control()

    def record(event):
        r.rpush(RENDERS, json.dumps({"key": key, "event": event, "host": self.request.hostname,
                                     "cpuMillis": cpu_millis, "at": time.time()}))

    record("start")
    time.sleep(seconds)
    record("end")
    return key
