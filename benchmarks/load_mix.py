"""The merchant mix of the pipeline benchmark: signed webhooks as Youzan, WeChat, Shopify and the
Segment API send them (``huiliu_infra.sources``), for new and returning shoppers, with orders and
products, noisy identifiers, duplicates and retries.

Each :class:`Webhook` knows the identity processed marker it must produce (``expect``: connector and
message id, derived the way the connector derives it) so a run can check that nothing accepted was
lost, and whether it is a latency probe (a new person's order: the no-wait journey sends at once).
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
PRODUCTS = ["SKU-A", "SKU-B", "SKU-C", "SKU-TEA-250", "SKU-CUP", "SKU-Z"]


@dataclass
class Webhook:
    request: Any  # huiliu_infra.sources.SignedRequest
    connector: str
    expect: tuple[str, str] | None  # (connector, message id) identity must have processed
    probe: str | None = None  # the user id of a latency probe (its order triggers the no-wait journey)
    kind: str = "event"  # event | duplicate | retry


def _noisy_email(rng: random.Random, email: str) -> str:
    """The same address as shops send it: case and whitespace vary."""
    return rng.choice([email, email.upper(), f"  {email} ", email.capitalize()])


def _noisy_phone(rng: random.Random, digits: str) -> str:
    return rng.choice(
        [digits, f"+86{digits}", f"+86 {digits[:3]}-{digits[3:7]}-{digits[7:]}", f"0086{digits}"]
    )


class Mix:
    """Builds the webhooks of one run: ``shoppers`` people, about ``orders_per_returning`` orders for
    each returning one, ``dup_share`` of the webhooks sent twice (a source's retry)."""

    def __init__(
        self,
        connectors: dict[str, Any],
        *,
        seed: int,
        shoppers: int,
        returning_share: float = 0.6,
        orders_per_returning: int = 2,
        dup_share: float = 0.05,
        probes: int = 0,
    ) -> None:
        self.conf = connectors
        self.rng = random.Random(seed)
        self.run = uuid.UUID(int=self.rng.getrandbits(128)).hex[:6]
        self.shoppers = shoppers
        self.returning_share = returning_share
        self.orders_per_returning = orders_per_returning
        self.dup_share = dup_share
        self.probes = probes
        self._order_seq = 0

    # -- people ---------------------------------------------------------------------------------------
    def _person(self, i: int) -> dict[str, str]:
        phone = f"139{(self.rng.getrandbits(32) % 10**8):08d}"
        return {
            "user": f"ld-{self.run}-{i}",
            "email": f"shopper{i}.{self.run}@example.com",
            "phone": phone,
            "openid": f"oLd{self.run}{i:06d}",
        }

    def webhooks(self) -> list[Webhook]:
        """Every webhook of the run in send order (a person's sign-up before their orders)."""
        out: list[Webhook] = []
        for i in range(self.shoppers):
            person = self._person(i)
            source = self.rng.choice(["segment", "segment", "shopify", "youzan", "wechat"])
            out += self._arrival(person, source)
            if self.rng.random() < self.returning_share:
                for _ in range(self.rng.randint(1, 2 * self.orders_per_returning - 1)):
                    out.append(self._order(person, self.rng.choice(["segment", "shopify", "youzan"])))
                if self.rng.random() < 0.3:  # browsing between orders
                    out.append(
                        self._track(person, "Product Viewed", {"product_id": self.rng.choice(PRODUCTS)})
                    )
        # Interleave people (a shop's traffic is not one person at a time) but keep each person's order.
        out = self._interleave(out)
        for k in range(self.probes):
            person = self._person(10_000_000 + k)
            at = self.rng.randrange(len(out) + 1)
            out.insert(at, self._probe(person))
        # Duplicates and retries: the same signed request again (a retry after a lost 200).
        extra = []
        for hook in out:
            if hook.probe is None and self.rng.random() < self.dup_share:
                extra.append(Webhook(hook.request, hook.connector, hook.expect, kind="duplicate"))
        for dup in extra:
            out.insert(self.rng.randrange(len(out) + 1), dup)
        return out

    def _interleave(self, hooks: list[Webhook]) -> list[Webhook]:
        # Split into per-person runs (a person's hooks are consecutive) and merge them at random.
        runs: list[list[Webhook]] = []
        for hook in hooks:
            if hook.kind == "arrival" or not runs:
                runs.append([])
            runs[-1].append(hook)
            hook.kind = "event"
        merged: list[Webhook] = []
        live = [r for r in runs if r]
        window = 8
        while live:
            pick = self.rng.randrange(min(window, len(live)))
            merged.append(live[pick].pop(0))
            if not live[pick]:
                live.pop(pick)
        return merged

    # -- sources --------------------------------------------------------------------------------------
    def _arrival(self, person: dict[str, str], source: str) -> list[Webhook]:
        if source == "segment":
            hooks = [
                self._identify(person),
                self._track(person, "Signed Up", {"method": self.rng.choice(["wechat", "email", "phone"])}),
            ]
        elif source == "shopify":
            hooks = [self._shopify_customer(person)]
        elif source == "youzan":
            hooks = [self._youzan_card(person)]
        else:
            hooks = [self._wechat_subscribe(person)]
        hooks[0].kind = "arrival"
        return hooks

    def _segment(self, call: str, payload: dict[str, Any]) -> Webhook:
        from huiliu_infra import sources

        request = sources.segment(self.conf["segment"], call, payload)
        return Webhook(request, "segment", ("segment", payload["messageId"]))

    def _identify(self, person: dict[str, str]) -> Webhook:
        traits = {
            "email": _noisy_email(self.rng, person["email"]),
            "phone": _noisy_phone(self.rng, person["phone"]),
            "name": f"Shopper {person['user'][-4:]}",
            "city": self.rng.choice(["Hangzhou", "Shanghai", "Shenzhen", "Chengdu"]),
            "consent": {"email": True, "sms": self.rng.random() < 0.5},
        }
        return self._segment(
            "identify", {"userId": person["user"], "messageId": uuid.uuid4().hex, "traits": traits}
        )

    def _track(self, person: dict[str, str], event: str, properties: dict[str, Any]) -> Webhook:
        payload = {
            "userId": person["user"],
            "event": event,
            "messageId": uuid.uuid4().hex,
            "properties": properties,
            "context": {"traits": {"email": _noisy_email(self.rng, person["email"])}},
        }
        return self._segment("track", payload)

    def _products(self) -> list[dict[str, Any]]:
        picked = self.rng.sample(PRODUCTS, self.rng.randint(1, 3))
        return [
            {"product_id": p, "price": self.rng.choice([19.9, 59.0, 98.5]), "quantity": 1} for p in picked
        ]

    def _order_id(self) -> str:
        self._order_seq += 1
        return f"{self.run}{self._order_seq:07d}"

    def _order(self, person: dict[str, str], source: str) -> Webhook:
        if source == "shopify":
            return self._shopify_order(person)
        if source == "youzan":
            return self._youzan_order(person)
        products = self._products()
        return self._track(
            person,
            "Order Completed",
            {
                "order_id": f"S-{self._order_id()}",
                "products": products,
                "revenue": round(sum(p["price"] for p in products), 2),
                "currency": "CNY",
            },
        )

    def _probe(self, person: dict[str, str]) -> Webhook:
        """A new person's first event is an order: the no-wait journey sends them a receipt at once."""
        products = self._products()
        payload = {
            "userId": person["user"],
            "event": "Order Completed",
            "messageId": uuid.uuid4().hex,
            "properties": {"order_id": f"P-{self._order_id()}", "products": products, "revenue": 59.0},
            "context": {"traits": {"email": person["email"]}},
        }
        hook = self._segment("track", payload)
        hook.probe = person["user"]
        return hook

    def _shopify(self, topic: str, payload: dict[str, Any]) -> Webhook:
        from huiliu.connectors.common import digest_id
        from huiliu_infra import sources

        request = sources.shopify(self.conf["shopify"], topic, payload)
        message_id = "shp-" + digest_id(topic, hashlib.sha256(request.body).hexdigest())
        return Webhook(request, "shopify", ("shopify", message_id))

    def _shopify_customer(self, person: dict[str, str]) -> Webhook:
        sample = json.loads((ROOT / "events" / "shopify" / "customers_create.json").read_text())
        body = copy.deepcopy(sample)
        body["id"] = 8_000_000_000 + int(hashlib.sha256(person["user"].encode()).hexdigest()[:8], 16)
        body["email"] = _noisy_email(self.rng, person["email"])
        body["phone"] = f"+86{person['phone']}"
        return self._shopify("customers/create", body)

    def _shopify_order(self, person: dict[str, str]) -> Webhook:
        sample = json.loads((ROOT / "events" / "shopify" / "orders_create.json").read_text())
        order = copy.deepcopy(sample)
        seq = self._order_id()
        order["id"] = int(seq, 16) % 10**12
        order["name"] = f"#{seq}"
        order["email"] = _noisy_email(self.rng, person["email"])
        order.pop("phone", None)
        order["customer"] = {"id": 7_000_000 + int(seq[-7:]), "email": person["email"]}
        items = order.get("line_items") or [{}]
        order["line_items"] = [
            dict(
                items[0], product_id=hash(p["product_id"]) % 10**6, sku=p["product_id"], title=p["product_id"]
            )
            for p in self._products()
        ]
        return self._shopify("orders/create", order)

    def _youzan(self, push: dict[str, Any]) -> Webhook:
        from huiliu_infra import sources

        request = sources.youzan(self.conf["youzan"], push)
        return Webhook(request, "youzan", ("youzan", push["msg_id"]))

    def _youzan_order(self, person: dict[str, str]) -> Webhook:
        sample = json.loads((ROOT / "events" / "youzan" / "trade_TradePaid.json").read_text())
        from urllib.parse import unquote

        msg = json.loads(unquote(sample["msg"]))
        tid = f"E{self._order_id()}"
        info = msg["full_order_info"]
        info["order_info"]["tid"] = tid
        info["buyer_info"]["buyer_phone"] = person["phone"]
        info["buyer_info"]["yz_open_id"] = f"yz-{person['user']}"
        info["buyer_info"].pop("fans_id", None)
        info["buyer_info"].pop("outer_user_id", None)
        info["orders"] = [
            {
                "oid": str(k),
                "outer_sku_id": p["product_id"],
                "title": p["product_id"],
                "num": 1,
                "price": f"{p['price']:.2f}",
                "payment": f"{p['price']:.2f}",
            }
            for k, p in enumerate(self._products())
        ]
        push = dict(sample, id=tid, msg=quote(json.dumps(msg)), msg_id=str(uuid.uuid4()))
        return self._youzan(push)

    def _youzan_card(self, person: dict[str, str]) -> Webhook:
        sample = json.loads((ROOT / "events" / "youzan" / "SCRM_CUSTOMER_CARD.json").read_text())
        from urllib.parse import unquote

        raw = sample.get("msg")
        msg = json.loads(unquote(raw)) if isinstance(raw, str) else copy.deepcopy(raw)
        text = json.dumps(msg)
        for old in _phones_in(text):
            text = text.replace(old, person["phone"])
        push = dict(sample, msg=quote(text), msg_id=str(uuid.uuid4()), id=f"card-{person['user']}")
        return self._youzan(push)

    def _wechat_subscribe(self, person: dict[str, str]) -> Webhook:
        from huiliu_infra import sources

        created = int(time.time()) + self.rng.randrange(10**6)
        xml = (
            "<xml><ToUserName><![CDATA[gh_1234567890ab]]></ToUserName>"
            f"<FromUserName><![CDATA[{person['openid']}]]></FromUserName><CreateTime>{created}</CreateTime>"
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event>"
            "<EventKey><![CDATA[qrscene_spring_fair]]></EventKey></xml>"
        )
        request = sources.wechat(self.conf["wechat"], xml)
        return Webhook(request, "wechat", ("wechat", f"{person['openid']}:{created}:subscribe"))


def _phones_in(text: str) -> list[str]:
    import re

    return sorted(set(re.findall(r"1[3-9][0-9]{9}", text)))
