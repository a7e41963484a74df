"""The monitoring stack on a laptop (`python -m devstack up|down`, `make stack`): dev tooling, never installed.

`cli.py` (the command) drives `runner.py` (one `Stack`: the service, Prometheus, Alertmanager, a webhook receiver),
which writes `overlay.py`'s loopback copies of `rendered/` and starts `process.py`'s children; `webhook.py` records
what Alertmanager sends. It imports the generators (the test profile is rendered in process) and the service's
paths from featurestore/conventions.py; nothing imports it.
"""
