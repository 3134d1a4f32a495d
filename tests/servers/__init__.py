"""Real loopback servers (redis, mariadb, sshd, nginx) for the test suite.

Tests talk to genuine daemons instead of mocks so that protocol details,
authentication and host-key checks are exercised the way production sees them.
"""
