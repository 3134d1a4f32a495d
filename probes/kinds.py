"""The probe kinds tocsin knows. Each gets its own class in the probe engine."""

PROBE_KINDS = ("http", "tls", "tcp", "mysql", "redis", "ssh", "heartbeat")
