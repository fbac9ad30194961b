"""Refresh tokens at rest, encrypted: a small JSON file of Fernet tokens per portal.

The key is ``CALLBRIDGE_SECRETS_KEY`` (a urlsafe-base64 32-byte Fernet key, e.g. from
``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``).
The file maps portal ids to encrypted refresh tokens; writes are atomic (temp file +
rename) so a crash leaves the old or the new token, never half of one. A portal whose
token was rotated starts from the stored token, not the (retired) one of the portals
file.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import orjson
from cryptography.fernet import Fernet, InvalidToken

from service.hubspot.oauth import RefreshTokenSink


class SecretsError(Exception):
    """The key is unusable, or a stored secret does not decrypt with it."""


class RefreshTokenStore:
    """Encrypted refresh tokens by portal id, in ``path``."""

    def __init__(self, path: Path, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode() if isinstance(key, str) else key)
        except (ValueError, TypeError) as exc:
            raise SecretsError(
                "CALLBRIDGE_SECRETS_KEY must be a Fernet key (32 urlsafe-base64 bytes)"
            ) from exc
        self.path = path
        self._lock = asyncio.Lock()

    def _read(self) -> dict[str, str]:
        try:
            raw = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        if not isinstance(raw, dict):
            raise SecretsError(f"{self.path} is not a JSON object")
        return {str(k): str(v) for k, v in raw.items()}

    def load(self, portal: str) -> str | None:
        """The stored refresh token of ``portal``, decrypted; ``None`` if none is stored."""
        sealed = self._read().get(portal)
        if sealed is None:
            return None
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as exc:
            raise SecretsError(
                f"the stored refresh token of portal {portal!r} does not decrypt with "
                "CALLBRIDGE_SECRETS_KEY"
            ) from exc

    def save(self, portal: str, refresh_token: str) -> None:
        """Store ``refresh_token`` for ``portal``, encrypted, atomically."""
        data = self._read()
        data[portal] = self._fernet.encrypt(refresh_token.encode()).decode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        with tmp.open("wb") as fh:
            fh.write(orjson.dumps(data, option=orjson.OPT_SORT_KEYS))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        tmp.replace(self.path)

    def sink(self, portal: str) -> RefreshTokenSink:
        """The ``on_refresh_token`` callback that stores ``portal``'s rotated token."""

        async def store(token: str) -> None:
            async with self._lock:
                await asyncio.to_thread(self.save, portal, token)

        return store
