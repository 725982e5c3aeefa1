"""Stamp every Celery task with its publish time, for montage-scaler's queue wait.

Import this module wherever the Celery app is created (every process that sends
tasks: the API, and the workers, which send retries and chained tasks). The scaler
reads the header on the oldest message of each queue: the age is then exact, and a
task restored after a worker died keeps its original stamp. A retry is stamped anew.
"""
import time

from celery.signals import before_task_publish


@before_task_publish.connect
def stamp_publish_time(headers=None, **kwargs):
    headers["montage_published_at"] = time.time()
