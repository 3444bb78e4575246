"""Import column mapping: the mapping file's model and the header-name conventions."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from huiliu.identifiers import KNOWN_TYPES

CONNECTOR = "csv-import"
IMPORT_PREFIX = "imports/"
MAX_REPORTED_REJECTIONS = 1000
MAX_FIELD_BYTES = 64 * 1024
ALIASES = {
    "mobile": "phone",
    "phone_number": "phone",
    "tel": "phone",
    "手机": "phone",
    "手机号": "phone",
    "电话": "phone",
    "e_mail": "email",
    "email_address": "email",
    "邮箱": "email",
    "userid": "user_id",
    "customer_id": "user_id",
    "member_no": "member_id",
    "card_no": "member_id",
    "会员号": "member_id",
    "会员卡号": "member_id",
    "openid": "wechat_openid",
    "unionid": "wechat_unionid",
    "order": "order_id",
    "order_no": "order_id",
    "订单号": "order_id",
    "total": "revenue",
    "amount": "revenue",
    "金额": "revenue",
    "time": "timestamp",
    "date": "timestamp",
    "created_at": "timestamp",
    "时间": "timestamp",
    "event_name": "event",
    "messageid": "message_id",
}
FIELDS = frozenset({"order_id", "revenue", "currency", "timestamp", "event", "type", "message_id", "ignore"})


class ImportMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    columns: dict[str, str] = Field(default_factory=dict)
    type: str = Field(default="auto", pattern="^(auto|identify|track)$")
    default_event: str = Field(default="Order Completed", min_length=1, max_length=200)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: str = "utf-8-sig"


def target_for_header(header: str) -> str:
    """Where a column goes by its name: an identifier type, a known field, trait.x / property.x."""
    name = header.strip().lower().replace(" ", "_").replace("-", "_")
    for prefix, kind in (
        ("trait.", "trait."),
        ("traits.", "trait."),
        ("property.", "property."),
        ("properties.", "property."),
        ("prop.", "property."),
    ):
        if name.startswith(prefix) and len(name) > len(prefix):
            return kind + header.strip()[len(prefix) :]
    name = ALIASES.get(name, name)
    if name in KNOWN_TYPES or name in FIELDS:
        return name
    return "extra." + header.strip()
