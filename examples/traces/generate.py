#!/usr/bin/env python3
"""Writes the example traces of examples/traces/ (deterministic: no randomness).

Run from this folder: python3 generate.py
Shapes follow the ADR baselines: ~9 s per video task, ~850 API requests/min by day.
"""
import datetime as dt
import math


def write(name, start, step_s, rows, service=False):
    with open(name, "w") as f:
        f.write("time,tasks,requests" + (",service_seconds" if service else "") + "\n")
        t = start
        for r in rows:
            line = "%s,%d,%d" % (t.strftime("%Y-%m-%dT%H:%M:%SZ"), r[0], r[1])
            if service:
                line += ",%g" % r[2]
            f.write(line + "\n")
            t += dt.timedelta(seconds=step_s)


def spread(total_per_step, i, period=7):
    # Deterministic integer arrivals with the right average: carry the fraction.
    return int(math.floor(total_per_step * (i + 1)) - math.floor(total_per_step * i))


# Weekday evening peak: Monday 2026-03-02, one-minute steps over 24 h. Uploads
# after work, 18:00-22:00, peaking at ~36 tasks/min around 20:00; the API follows.
rows = []
for m in range(24 * 60):
    h = m / 60
    day = 850 if 8 <= h < 23 else 250
    peak = math.exp(-((h - 20) / 1.1) ** 2)
    rate = 0.3 + (1.5 if 8 <= h < 18 else 0) + 35 * peak
    rows.append((spread(rate, m), day + 3200 * peak))
write("weekday-evening.csv", dt.datetime(2026, 3, 2), 60, rows)

# Weekend batch: Saturday 2026-03-07 09:00-13:00, 30 s steps: a creator uploads
# 40 clips at 10:00 within a minute (longer, 25 s each), otherwise quiet.
rows = []
for i in range(4 * 120):
    tasks, svc = (0, 9)
    if 120 <= i < 122:
        tasks, svc = (20, 25)
    elif i % 20 == 7:
        tasks = 1
    rows.append((tasks, 300 / 2, svc))
write("weekend-batch.csv", dt.datetime(2026, 3, 7, 9), 30, rows, service=True)

# Scheduled live session: Thursday 2026-03-05 17:00-22:00, one-minute steps;
# the session in live-session.ics runs 19:00-20:00: viewers hit the API
# (5000 req/min) and clips are cut live (20 tasks/min), from the first minute.
rows = []
for m in range(5 * 60):
    h = 17 + m / 60
    live = 19 <= h < 20
    after = 20 <= h < 20.5
    tasks = spread(20 if live else (6 if after else 0.5), m)
    rows.append((tasks, 5000 if live else (1400 if after else 700)))
write("live-session.csv", dt.datetime(2026, 3, 5, 17), 60, rows)

# Idle night: Tuesday 2026-03-03 00:00-07:00, five-minute steps: a few
# health checks and one late upload at 03:10.
rows = []
for i in range(7 * 12):
    rows.append((3 if i == 38 else 0, 150))
write("idle-night.csv", dt.datetime(2026, 3, 3), 300, rows)

# weeks.csv and noisy-weeks.csv, the forecast's multi-week traces, come from
# examples/traces/weeks (go run ./examples/traces/weeks -out examples/traces).

# Long renders: Friday 2026-03-06 09:00-10:00, one-minute steps: a creator
# renders a season, 12 one-minute videos a minute for 40 minutes (about 3
# replicas of 5 slots), a quiet API. With queue-wait.yaml's tasksPerReplica
# (tuned for short thumbnails) the depth ask falls short: queueWaitTarget's case.
rows = []
for m in range(60):
    rows.append((12 if m < 40 else 0, 300, 60))
write("long-renders.csv", dt.datetime(2026, 3, 6, 9), 60, rows, service=True)


def write_classes(name, start, step_s, rows, queues):
    # rows: (requests, [(tasks, service_seconds, queue), ...]) per step; a
    # step's classes are rows repeating its time, the first carrying the
    # requests. Without queues the queue column is left out (one queue).
    with open(name, "w") as f:
        f.write("time,tasks,requests,service_seconds" + (",queue" if queues else "") + "\n")
        t = start
        for requests, classes in rows:
            for k, (tasks, service, queue) in enumerate(classes):
                line = "%s,%d,%d,%g" % (t.strftime("%Y-%m-%dT%H:%M:%SZ"), tasks, requests if k == 0 else 0, service)
                if queues:
                    line += "," + queue
                f.write(line + "\n")
            t += dt.timedelta(seconds=step_s)


# Mixed: Thursday 2026-03-12 17:00-20:00, 15-second steps, short thumbnails
# and long renders side by side. Every 10 minutes (at :05) a creator's upload
# brings a burst of 200 thumbnails (2 s each) within 15 s, with a trickle of 2
# a minute between; renders (60 s each) rise to 4 a minute around 18:45. Once
# in one queue (mixed-one-queue.csv), once with thumbnails and renders in
# queues of their own (mixed-two-queues.csv: one worker pool consumes both).
rows = []
for i in range(3 * 60 * 4):
    m = i / 4
    thumbs = 200 if (i * 15) % 600 == 300 else spread(0.5, i)
    renders = spread(math.exp(-(((m - 105) / 35.0) ** 2)), i)
    rows.append((175, [(thumbs, 2, "thumbs"), (renders, 60, "renders")]))
write_classes("mixed-one-queue.csv", dt.datetime(2026, 3, 12, 17), 15, rows, queues=False)
write_classes("mixed-two-queues.csv", dt.datetime(2026, 3, 12, 17), 15, rows, queues=True)
