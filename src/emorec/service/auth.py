"""API keys: random secrets shown once, stored as SHA-256 hashes, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from emorec.service.db import ApiKey, utcnow

KEY_PREFIX = "emorec_"
# Characters of the key kept in clear to tell keys apart in listings (prefix + 6 random).
SHOWN_CHARS = len(KEY_PREFIX) + 6
# last_used_at is refreshed at most this often, so a busy key does not write on every request.
_TOUCH_INTERVAL = timedelta(minutes=1)


def generate_key() -> str:
    """A new secret: ``emorec_`` and 43 URL-safe characters (256 random bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The SHA-256 hex digest stored for ``key``.

    A plain hash suffices: keys are 256-bit random, so there is nothing to brute-force.
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_api_key(session: Session, name: str) -> tuple[ApiKey, str]:
    """Store a new key named ``name``; return the row and the secret (shown only now)."""
    name = name.strip()
    if not name:
        raise ValueError("An API key needs a non-empty name.")
    key = generate_key()
    record = ApiKey(name=name, key_prefix=key[:SHOWN_CHARS], key_hash=hash_key(key))
    session.add(record)
    session.commit()
    return record, key


def verify_api_key(session: Session, key: str | None) -> ApiKey | None:
    """The active key matching ``key``, or None (missing, unknown or revoked)."""
    if not key or not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    digest = hash_key(key)
    record = session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    if record is None or not hmac.compare_digest(record.key_hash, digest) or record.revoked:
        return None
    now = utcnow()
    if record.last_used_at is None or now - record.last_used_at > _TOUCH_INTERVAL:
        record.last_used_at = now
        session.commit()
    return record


def list_api_keys(session: Session) -> list[ApiKey]:
    """Every key, oldest first (revoked ones included)."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_api_key(session: Session, ident: str) -> ApiKey | None:
    """Revoke the key whose id, name or shown prefix is ``ident``; None when none matches.

    Raises ValueError when ``ident`` names several keys.
    """
    conditions = [ApiKey.name == ident, ApiKey.key_prefix == ident]
    if ident.isdigit():
        conditions.append(ApiKey.id == int(ident))
    matches = list(session.scalars(select(ApiKey).where(or_(*conditions))))
    if len(matches) > 1:
        ids = ", ".join(str(m.id) for m in matches)
        raise ValueError(f"{ident!r} matches several keys (ids {ids}); revoke one by its id.")
    if not matches:
        return None
    matches[0].revoked = True
    session.commit()
    return matches[0]
