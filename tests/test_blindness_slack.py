"""Blind spots end to end: `tocsin run`'s engine tells the channel it cannot see a probe.

The probe asks nginx over TLS with a `ca_file` that does not exist yet: an `error`, our
configuration's fault, which opens no incident. After `blindness.after` the channel gets
one notice naming the probe and mentioning the configured group; once the file is there,
one more notice says tocsin sees again. No incident card is posted at any point.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from tests.servers.tls_fixtures import TlsServers
from tests.slack_engine import http_engine
from tests.slack_fake import INCIDENTS_CHANNEL, SlackFake

WAIT = 20.0


async def notices(fake: SlackFake, count: int) -> list[str]:
    async with asyncio.timeout(WAIT):
        while True:
            found = fake.top_level(INCIDENTS_CHANNEL)
            if len(found) >= count:
                return [str(message["text"]) for message in found]
            await asyncio.sleep(0.05)


async def test_a_probe_tocsin_cannot_see_is_told_and_so_is_its_return(
    slack_fake: SlackFake, tls_servers: TlsServers, tmp_path: Path
) -> None:
    slack_fake.add_usergroup("S0ONCALL", "oncall", [])
    ca_file = tmp_path / "ca.pem"
    extra = (
        "detection: {blindness: {after: 2s, notify: ['@oncall']}}\n"
        "probes:\n"
        f"  - {{id: shop-tls, kind: http, url: '{tls_servers.url('valid')}', "
        f"ca_file: '{ca_file}', interval: 1s, timeout: 900ms}}\n"
    )
    async with http_engine(slack_fake, tmp_path, extra):
        [blind] = await notices(slack_fake, 1)
        assert blind.startswith("<!subteam^S0ONCALL|@oncall> tocsin cannot see 1 probe:")
        assert f"shop-tls: cannot load ca_file {ca_file}" in blind
        shutil.copy(tls_servers.ca_file, ca_file)
        _, seeing = await notices(slack_fake, 2)
        assert seeing.startswith("tocsin sees again: shop-tls (blind for up to ")
        await asyncio.sleep(1.5)  # more good runs: nothing more is said
    assert len(slack_fake.top_level(INCIDENTS_CHANNEL)) == 2
