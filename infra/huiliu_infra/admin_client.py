"""The admin API from the command line — the one HTTP client every ``huiliu`` command uses: which API
and key (``--stack``, ``--api``/``--key``, ``$HUILIU_ADMIN_KEY``, the local runtime's state file),
``request`` (status and JSON answer, errors included) and ``ok`` (the answer, or :class:`CliError`;
:class:`Refused` with the API's ``problems`` when it refused a definition)."""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from huiliu_infra import default_api, local_state


class CliError(Exception):
    """Printed to stderr; the command exits non-zero."""


class Refused(CliError):
    """The API refused a definition: ``problems`` are ``[{path, reason}]``."""

    def __init__(self, message: str, problems: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.problems = problems


def resolve_key(given: str | None) -> str:
    """``--key``, else ``$HUILIU_ADMIN_KEY``, else the running local runtime's admin key."""
    key = given or os.environ.get("HUILIU_ADMIN_KEY") or local_state().get("admin_key")
    if not key:
        raise CliError("no admin key: pass --key, set HUILIU_ADMIN_KEY or start the local runtime")
    return str(key)


def add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", default=None, help="admin API base URL (default: local runtime or --stack)")
    parser.add_argument(
        "--key", default=None, help="admin key (default: $HUILIU_ADMIN_KEY or the local runtime's)"
    )


def stack_api_url(stack: str) -> str:
    from huiliu import aws

    described = aws.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    return outputs["ApiUrl"]


@dataclass
class AdminApi:
    api: str
    key: str
    timeout: float = 120.0

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> AdminApi:
        api = getattr(args, "api", None)
        if not api and getattr(args, "env_stack", None):
            api = stack_api_url(args.env_stack)
        api = api or default_api()
        key = getattr(args, "key", None) or os.environ.get("HUILIU_ADMIN_KEY")
        if not key and not getattr(args, "env_stack", None):
            key = local_state().get("admin_key")
        if not key:
            raise CliError("no admin key: pass --key or set HUILIU_ADMIN_KEY")
        return cls(api.rstrip("/"), str(key))

    def request(
        self, method: str, path: str, *, query: dict[str, Any] | None = None, body: Any = None
    ) -> tuple[int, Any]:
        url = self.api.rstrip("/") + "/admin" + path
        clean = {k: v for k, v in (query or {}).items() if v is not None}
        if clean:
            url += "?" + urllib.parse.urlencode(clean)
        data = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - the operator's own API URL
            url,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.key}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:  # noqa: S310
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw) if raw else None
            except ValueError:
                return exc.code, {"message": raw.decode(errors="replace")}
        except urllib.error.URLError as exc:
            raise CliError(f"cannot reach {self.api}: {exc.reason}") from exc

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON answer (``{}`` for an empty one); a 4xx/5xx raises :class:`CliError` —
        :class:`Refused` when the answer lists ``problems``."""
        status, body = self.request(method, path, **kwargs)
        if status >= 400:
            message = body.get("message") if isinstance(body, dict) else body
            if isinstance(body, dict) and body.get("problems"):
                raise Refused(f"{method} {path} -> HTTP {status}: {message}", list(body["problems"]))
            raise CliError(f"{method} {path} -> HTTP {status}: {message}")
        return {} if body is None else body


def call(
    api: str, key: str, method: str, path: str, *, query: dict[str, Any] | None = None, body: Any = None
) -> Any:
    """One admin request: the JSON answer, or :class:`CliError` / :class:`Refused`."""
    return AdminApi(api, key).ok(method, path, query=query, body=body)
