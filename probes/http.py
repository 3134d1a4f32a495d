"""The http probe: one request to a URL, its status and body checked, each phase timed.

Statuses:
- `ok`: the final response has an expected status, the body matches, every threshold holds.
- `fail` (the target is unhealthy): another status ("HTTP 500 (expected 200)"), a body that
  does not match, a refused or reset connection, an invalid TLS certificate while `verify_tls`
  is on, a redirect loop, a broken response, a threshold not met, or no answer in time.
  A name that does not exist (NXDOMAIN, or no address record) fails too: its users cannot
  reach it either.
- `error` (tocsin could not tell): our resolver timed out, refused or failed (SERVFAIL), an
  egress proxy of ours is down or refuses, or the `ca_file` cannot be read.

The phases dns_ms, connect_ms, tls_ms, ttfb_ms (request sent to first response byte) and
total_ms are always measured; over redirects they add up, as blackbox_exporter's do. The
body is always read to its end, so total_ms is the whole download; the body checks see
its first `max_body` bytes (decoded when the server compressed them anyway).
"""

from __future__ import annotations

import asyncio
import codecs
import re
import ssl
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urljoin

from pydantic import BaseModel, BeforeValidator, ConfigDict, field_validator, model_validator

from probes.durations import ByteSize
from probes.http_client import Exchange, HttpTimings, build_request, exchange
from probes.http_proxy import FROM_ENVIRONMENT, Proxy, parse_proxy, proxy_for
from probes.http_response import Response
from probes.http_url import Url, parse_url
from probes.net import ProbeProblem, excerpt, own_deadline
from probes.probe import KindSettings, Probe
from probes.result import Measurement, Observation, Status
from probes.thresholds import Threshold, judge, measure
from probes.tls_client import tls_context

MAX_REDIRECTS = 10
DEFAULT_MAX_BODY = 10 * 1024 * 1024
LARGEST_MAX_BODY = 256 * 1024 * 1024
EVIDENCE_BODY = 4096  # kept when no body check needs more: the card shows an excerpt
REDIRECTS = frozenset({301, 302, 303, 307, 308})
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# tocsin frames the exchange itself; these would contradict it.
OWN_HEADERS = ("connection", "content-length", "transfer-encoding", "accept-encoding")
# Never sent on to another host when a redirect leaves the configured one.
HOST_BOUND_HEADERS = frozenset({"host", "authorization", "cookie", "proxy-authorization"})
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def _status_list(value: Any) -> Any:
    return [value] if isinstance(value, int) and not isinstance(value, bool) else value


class HttpExpect(BaseModel):
    """`expect:` of an http probe."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Annotated[tuple[int, ...], BeforeValidator(_status_list)] = (200,)
    body_contains: str | None = None
    body_regex: str | None = None
    dns_ms: Threshold | None = None
    connect_ms: Threshold | None = None
    tls_ms: Threshold | None = None
    ttfb_ms: Threshold | None = None
    total_ms: Threshold | None = None

    @field_validator("status")
    @classmethod
    def _statuses(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(not 100 <= code <= 599 for code in value):
            raise ValueError("give HTTP status codes from 100 to 599, e.g. [200] or [200, 204]")
        return value

    @field_validator("body_regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(
                    f"not a valid regular expression ({error}); e.g. 'Status: (OK|GREEN)'"
                ) from None
        return value


class HttpSettings(KindSettings):
    url: str
    method: str = "GET"
    headers: dict[str, str] = {}
    body: str | None = None
    follow_redirects: bool = True
    verify_tls: bool = True
    ca_file: Path | None = None
    max_body: ByteSize = DEFAULT_MAX_BODY
    proxy: str | None = None
    expect: HttpExpect = HttpExpect()

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parse_url(value)
        return value

    @field_validator("max_body")
    @classmethod
    def _max_body(cls, value: int) -> int:
        if not 1024 <= value <= LARGEST_MAX_BODY:
            raise ValueError("give a size from 1KiB to 256MiB, e.g. 10MiB")
        return value

    @field_validator("proxy")
    @classmethod
    def _proxy(cls, value: str | None) -> str | None:
        if value is not None and value != FROM_ENVIRONMENT:
            parse_proxy(value, credentials=False)
        return value

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        if value.upper() not in METHODS:
            raise ValueError(f"'{value}' is not an HTTP method; use one of {', '.join(METHODS)}")
        return value.upper()

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not HEADER_NAME.match(name):
                raise ValueError(f"'{name}' is not a header name; write e.g. X-Probe: tocsin")
            if name.lower() in OWN_HEADERS:
                raise ValueError(f"remove header '{name}': tocsin sets it for every request")
            if any(ch in text for ch in "\r\n\0") or not text.isascii():
                raise ValueError(f"header '{name}' must be one line of ASCII text")
        return value

    @model_validator(mode="after")
    def _ca_needs_verify(self) -> HttpSettings:
        if self.ca_file is not None and not self.verify_tls:
            raise ValueError("ca_file is unused when verify_tls is false; remove one of them")
        return self


class HttpProbe(Probe):
    kind = "http"
    settings_model = HttpSettings

    def configure(self, settings: KindSettings) -> None:
        assert isinstance(settings, HttpSettings)
        self.settings = settings
        self.expect = settings.expect
        self.url = parse_url(settings.url)
        self.body = settings.body.encode() if settings.body is not None else None
        self.headers, self.unset = secret_headers(settings.headers, self.context.environ)
        self.secret_names = {
            n[: -len("_env")] for n in settings.headers if n.lower().endswith("_env")
        }
        self.request = build_request(settings.method, self.url, self.headers, self.body)
        checks_body = self.expect.body_contains is not None or self.expect.body_regex is not None
        self.keep = settings.max_body if checks_body else EVIDENCE_BODY
        self.regex = re.compile(self.expect.body_regex) if self.expect.body_regex else None
        self._context: ssl.SSLContext | None = None

    @property
    def target_host(self) -> str:
        return self.url.host

    def _tls(self) -> ssl.SSLContext:
        if self._context is None:
            ca_file = self.settings.ca_file
            self._context = tls_context(self.settings.verify_tls, ca_file, ("http/1.1",))
        return self._context

    async def observe(self, timeout: float) -> Observation:  # noqa: ASYNC109 - the contract
        if self.unset:
            return Observation(Status.ERROR, f"{', '.join(self.unset)} is not set")
        timings = HttpTimings()
        hops: list[str] = []
        began = time.perf_counter()
        deadline = own_deadline(timeout)
        try:
            async with asyncio.timeout(deadline):
                response, final = await self._follow(timings, hops)
        except ProbeProblem as problem:
            return self._stopped(problem, timings, began, hops)
        except TimeoutError:
            return self._stopped(timings.timed_out(deadline), timings, began, hops)
        timings.total = time.perf_counter() - began
        return self._judge(response, final, hops, timings)

    async def _follow(self, timings: HttpTimings, hops: list[str]) -> tuple[Response, Url]:
        url, method, body, request = self.url, self.settings.method, self.body, self.request
        seen = {url.text}
        while True:
            proxy = self._proxy(url)
            if proxy is not None:
                request = build_request(method, url, self._headers_for(url), body, proxy)
            context = self._tls() if url.scheme == "https" else None
            plan = Exchange(url, request, method, self.keep, context, proxy)
            response = await exchange(plan, timings)
            location = response.header("location")
            if not (self.settings.follow_redirects and location and response.status in REDIRECTS):
                return response, url
            location = location.encode("latin-1").decode("utf-8", "surrogateescape")
            try:
                target = parse_url(urljoin(url.text, location))
            except ValueError:
                reason = f"HTTP {response.status} redirects to an unusable Location '{location}'"
                raise ProbeProblem(Status.FAIL, excerpt(reason, 200)) from None
            hops.append(f"{response.status} {url.text} -> {target.text}")
            if target.text in seen:
                raise ProbeProblem(Status.FAIL, f"redirect loop: {target.text} again")
            if len(hops) > MAX_REDIRECTS:
                raise ProbeProblem(Status.FAIL, f"more than {MAX_REDIRECTS} redirects")
            seen.add(target.text)
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, body = ("HEAD" if method == "HEAD" else "GET"), None
            request = build_request(method, target, self._headers_for(target), body)
            url = target

    def _proxy(self, url: Url) -> Proxy | None:
        return proxy_for(url, self.settings.proxy, self.context.environ)

    def _headers_for(self, url: Url) -> dict[str, str]:
        """Credentials go only where they were configured for: same scheme, host and port.

        A redirect elsewhere (or from https down to http) drops the host-bound headers
        and every header whose value came from a `*_env` secret.
        """
        headers = self.headers
        if url.origin == self.url.origin:
            return headers
        return {
            name: value
            for name, value in headers.items()
            if name.lower() not in HOST_BOUND_HEADERS and name not in self.secret_names
        }

    def _measurements(self, timings: HttpTimings) -> tuple[Measurement, ...]:
        expect = self.expect
        return (
            measure("dns_ms", round(timings.dns * 1000, 3), "ms", expect.dns_ms),
            measure("connect_ms", round(timings.connect * 1000, 3), "ms", expect.connect_ms),
            measure("tls_ms", round(timings.tls * 1000, 3), "ms", expect.tls_ms),
            measure("ttfb_ms", round(timings.ttfb * 1000, 3), "ms", expect.ttfb_ms),
            measure("total_ms", round(timings.total * 1000, 3), "ms", expect.total_ms),
        )

    def _stopped(
        self, problem: ProbeProblem, timings: HttpTimings, began: float, hops: list[str]
    ) -> Observation:
        timings.total = time.perf_counter() - began
        evidence = [("url", self.url.text)]
        if hops:
            evidence.append(("redirects", "; ".join(hops)))
        measurements = self._measurements(timings)
        return Observation(problem.status, problem.reason, measurements, tuple(evidence))

    def _judge(
        self, response: Response, final: Url, hops: list[str], timings: HttpTimings
    ) -> Observation:
        expect = self.expect
        problems: list[str] = []
        if response.status not in expect.status:
            wanted = " or ".join(str(code) for code in expect.status)
            problems.append(f"HTTP {response.status} (expected {wanted})")
        elif expect.body_contains is not None or self.regex is not None:
            problems += self._body_problems(response)
        evidence = [("status", excerpt(response.status_line, 120)), ("url", final.text)]
        if hops:
            evidence.append(("redirects", "; ".join(hops)))
        location = response.header("location")
        if location is not None and response.status in REDIRECTS:
            evidence.append(("location", excerpt(location, 200)))
        if response.body:
            evidence.append(("body", excerpt(response.body)))
        if response.coding:
            evidence.append(("content-encoding", response.coding_problem or response.coding))
        if not response.complete_body and self.keep == self.settings.max_body:
            evidence.append(("body read", f"{response.size} bytes; the checks saw the first "
                             f"{_size(self.keep)} (max_body)"))  # fmt: skip
        measurements = self._measurements(timings)
        total = timings.total * 1000
        healthy = (
            f"HTTP {response.status} in {total:.0f} ms"
            if total >= 1000
            else (f"HTTP {response.status} in {total:.3g} ms")
        )
        return judge(measurements, tuple(evidence), healthy=healthy, problems=tuple(problems))

    def _body_problems(self, response: Response) -> list[str]:
        expect = self.expect
        if response.coding_problem:
            return [f"cannot check the body: {response.coding_problem}"]
        text = response.body.decode(_charset(response.header("content-type") or ""), "replace")
        where = "" if response.complete_body else f" in its first {_size(self.keep)} (max_body)"
        problems = []
        if expect.body_contains is not None and expect.body_contains not in text:
            problems.append(f"body does not contain '{excerpt(expect.body_contains, 80)}'{where}")
        if self.regex is not None and not self.regex.search(text):
            problems.append(f"body does not match /{excerpt(self.regex.pattern, 80)}/{where}")
        return problems


def _size(count: int) -> str:
    if count % (1024 * 1024) == 0:
        return f"{count // (1024 * 1024)} MiB"
    if count % 1024 == 0:
        return f"{count // 1024} KiB"
    return f"{count} bytes"


def secret_headers(
    headers: dict[str, str], environ: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """`Authorization_env: API_TOKEN` sends `Authorization` with the variable's value.

    Returns the headers to send and the variables that are not set (an `error`:
    our configuration, not the target, is incomplete).
    """
    sent: dict[str, str] = {}
    unset: list[str] = []
    for name, value in headers.items():
        if not name.lower().endswith("_env"):
            sent[name] = value
        elif value in environ:
            sent[name[: -len("_env")]] = environ[value]
        else:
            unset.append(value)
    return sent, unset


def _charset(content_type: str) -> str:
    """The Content-Type charset when Python knows it, else UTF-8."""
    if "charset=" not in content_type:
        return "utf-8"
    name = content_type.split("charset=", 1)[1].split(";")[0].strip().strip("\"'")
    try:
        return codecs.lookup(name).name
    except LookupError:
        return "utf-8"
