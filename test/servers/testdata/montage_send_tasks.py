"""Celery producer for the test harness: reads a JSON list of tasks on stdin
({"name", "args", "queue", "priority", "countdown"}), sends each with
send_task and prints their ids, one a line. MONTAGE_PRELOAD names modules
(comma-separated) imported first, such as a before_task_publish handler."""
import importlib
import json
import os
import sys

from montage_celery_app import app

for module in filter(None, os.environ.get("MONTAGE_PRELOAD", "").split(",")):
    importlib.import_module(module)

tasks = json.load(sys.stdin)
for t in tasks:
    opts = {}
    if t.get("queue"):
        opts["queue"] = t["queue"]
    if t.get("priority") is not None:
        opts["priority"] = t["priority"]
    if t.get("countdown"):
        opts["countdown"] = t["countdown"]
    res = app.send_task(t["name"], args=t.get("args") or [], **opts)
    print(res.id)
