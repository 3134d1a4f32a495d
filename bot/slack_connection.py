"""How tocsin reaches Slack: tokens from the environment, the Web API client, the mode.

Socket Mode when `SLACK_APP_TOKEN` is set (no public URL needed), HTTP mode
with signed requests otherwise. `SLACK_API_URL` points the Web API at another
base URL (the test fake, a local sandbox).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

DEFAULT_API_URL = "https://slack.com/api/"
WEB_TIMEOUT_SECONDS = 10


class SlackMode(StrEnum):
    SOCKET = "socket"
    HTTP = "http"


@dataclass(frozen=True)
class SlackCredentials:
    bot_token: str
    app_token: str | None
    signing_secret: str | None
    api_url: str

    @property
    def mode(self) -> SlackMode:
        return SlackMode.SOCKET if self.app_token else SlackMode.HTTP


def slack_credentials(environ: Mapping[str, str]) -> SlackCredentials | None:
    """The credentials, or None when Slack is not configured (see `missing_slack_settings`)."""
    if missing_slack_settings(environ):
        return None
    api_url = environ.get("SLACK_API_URL") or DEFAULT_API_URL
    return SlackCredentials(
        bot_token=environ["SLACK_BOT_TOKEN"],
        app_token=environ.get("SLACK_APP_TOKEN") or None,
        signing_secret=environ.get("SLACK_SIGNING_SECRET") or None,
        api_url=api_url if api_url.endswith("/") else api_url + "/",
    )


def missing_slack_settings(environ: Mapping[str, str]) -> list[str]:
    """What a user must still set, each with where to find it; empty when Slack can start."""
    missing: list[str] = []
    bot_token = environ.get("SLACK_BOT_TOKEN", "")
    if not bot_token:
        missing.append(
            "SLACK_BOT_TOKEN: the Bot User OAuth Token (xoxb-...), under OAuth & Permissions "
            "after installing the app"
        )
    elif not bot_token.startswith("xoxb-"):
        missing.append("SLACK_BOT_TOKEN must be a bot token starting with xoxb-")
    app_token = environ.get("SLACK_APP_TOKEN", "")
    if app_token and not app_token.startswith("xapp-"):
        missing.append(
            "SLACK_APP_TOKEN must be an app-level token starting with xapp- (Basic Information "
            "> App-Level Tokens, scope connections:write)"
        )
    if not app_token and not environ.get("SLACK_SIGNING_SECRET"):
        missing.append(
            "SLACK_APP_TOKEN (Socket Mode: Basic Information > App-Level Tokens, scope "
            "connections:write) or, for HTTP mode, SLACK_SIGNING_SECRET (Basic Information > "
            "App Credentials)"
        )
    return missing


def web_client(credentials: SlackCredentials, *, retries: bool = True) -> AsyncWebClient:
    """The Web API client for listeners: retries 429 (honouring Retry-After), 5xx, drops.

    The outbox sender gets one with `retries=False`: a retried post whose first
    attempt reached Slack would appear twice, so the sender decides itself,
    after looking in the channel, whether an unconfirmed post may be sent again.
    """
    client = AsyncWebClient(
        token=credentials.bot_token,
        base_url=credentials.api_url,
        timeout=WEB_TIMEOUT_SECONDS,
    )
    client.retry_handlers = (
        [
            AsyncConnectionErrorRetryHandler(max_retry_count=1),
            AsyncRateLimitErrorRetryHandler(max_retry_count=2),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ]
        if retries
        else []
    )
    return client
