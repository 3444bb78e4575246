"""Identifier types and normalisation (DESIGN §2).

Normalisation is deterministic and side-effect free: the same person's phone typed three ways
(``+86 138-0013-8000``, ``13800138000``, ``008613800138000``) yields one E.164 string.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import lru_cache


class IdentifierType(StrEnum):
    USER_ID = "user_id"
    MEMBER_ID = "member_id"
    EMAIL = "email"
    PHONE = "phone"
    ANONYMOUS_ID = "anonymous_id"
    WECHAT_OPENID = "wechat_openid"
    WECHAT_UNIONID = "wechat_unionid"
    YOUZAN_OPEN_ID = "youzan_open_id"
    SHOPIFY_CUSTOMER_ID = "shopify_customer_id"


KNOWN_TYPES = frozenset(t.value for t in IdentifierType)
# Custom identifier types (``context.externalIds``) must look like this.
_CUSTOM_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s.]{1,63}$")
# International call prefixes people type instead of "+": 00 (most of the world), 011 (NANP).
_IDD = ("00", "011")
MAX_IDENTIFIER_LENGTH = 256


class InvalidIdentifier(ValueError):
    """An identifier value that cannot be normalised (never matches anyone)."""


def is_valid_type(kind: str) -> bool:
    return kind in KNOWN_TYPES or bool(_CUSTOM_TYPE.match(kind))


def normalize_email(value: str) -> str:
    email = value.strip().lower()
    if not _EMAIL.match(email):
        raise InvalidIdentifier(f"not an email address: {value!r}")
    return email


@lru_cache(maxsize=4096)
def normalize_phone(value: str, default_region: str = "CN") -> str:
    """E.164 for a phone number written in any common way, or InvalidIdentifier."""
    import phonenumbers  # imported on first use: it is large and not every function needs it

    raw = value.strip()
    digits_only = re.sub(r"[\s\-().]", "", raw)
    if not raw.startswith("+"):
        for prefix in _IDD:
            if digits_only.startswith(prefix) and len(digits_only) > len(prefix) + 6:
                raw = "+" + digits_only[len(prefix) :]
                break
    try:
        parsed = phonenumbers.parse(raw, default_region.upper())
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentifier(f"not a phone number: {value!r}") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidIdentifier(f"not a valid phone number: {value!r}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize(kind: str, value: object, default_region: str = "CN") -> str:
    """Normalise one identifier value of type ``kind``; raises InvalidIdentifier."""
    if value is None or isinstance(value, bool | dict | list):
        raise InvalidIdentifier(f"{kind} must be a string or number")
    text = str(value).strip()
    if not text:
        raise InvalidIdentifier(f"{kind} is empty")
    if len(text) > MAX_IDENTIFIER_LENGTH:
        raise InvalidIdentifier(f"{kind} longer than {MAX_IDENTIFIER_LENGTH} characters")
    if kind == IdentifierType.EMAIL:
        return normalize_email(text)
    if kind == IdentifierType.PHONE:
        return normalize_phone(text, default_region)
    return text
