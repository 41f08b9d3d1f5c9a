"""A small client of the running service, for the CLI."""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from runtime.settings import Settings
from schemas.errors import ServiceError


def admin_token(settings: Settings) -> str:
    if settings.admin_token:
        return settings.admin_token
    path = settings.admin_token_path
    try:
        return path.read_text().strip()
    except OSError:
        raise ServiceError(
            f"no admin token: set COALMINE_ADMIN_TOKEN or run `coalmine up` (writes {path})"
        ) from None


class ServiceClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        verify: ssl.SSLContext | bool = True,
        timeout_s: float = 30.0,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
            verify=verify,
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceError(f"cannot reach {self._http.base_url}: {exc}") from None
        if response.status_code >= 400:
            try:
                message = response.json().get("error", response.text)
            except ValueError:
                message = response.text
            raise ServiceError(f"{response.status_code}: {message}")
        return response.json()
