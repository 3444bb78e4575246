"""Templates live in the tenants table (``T#{tenant}`` / ``TEMPLATE#{id}``): the admin API writes
them (validated first), notify reads them through a short in-memory cache."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from huiliu.errors import ConditionFailed, Conflict
from huiliu.notify.templates import InvalidTemplate, Template, check
from huiliu.storage.dynamo import DynamoRepository


class TemplateRepository(DynamoRepository):
    def get_template(self, tenant: str, template_id: str) -> Template | None:
        """The stored template; one that does not parse (written around the admin API) raises
        InvalidTemplate, which a send records as ``failed: template_invalid``."""
        item = self.get(f"T#{tenant}", f"TEMPLATE#{template_id}", consistent=False)
        if not item:
            return None
        try:
            return Template.model_validate(item["template"])
        except ValidationError as exc:
            raise InvalidTemplate([f"stored template {template_id}: {exc.errors()[0]['msg']}"]) from exc

    def list_templates(self, tenant: str) -> list[Template]:
        return [
            Template.model_validate(i["template"])
            for i in self.query_all(f"T#{tenant}", sk_prefix="TEMPLATE#")
        ]

    def save_template(
        self, tenant: str, template: Template, *, expected_version: int | None = None
    ) -> Template:
        """Validate (render against the sample) and store; the version goes up by one."""
        check(template)
        current = self.get_template(tenant, template.template_id)
        version = current.version if current else 0
        if expected_version is not None and expected_version != version:
            raise Conflict(
                f"template {template.template_id} is at version {version}", reason="version_conflict"
            )
        saved = template.model_copy(
            update={"version": version + 1, "updated_at": datetime.now(UTC).isoformat()}
        )
        try:
            self.put(
                {
                    "pk": f"T#{tenant}",
                    "sk": f"TEMPLATE#{template.template_id}",
                    "template": saved.model_dump(mode="json"),
                    "version": saved.version,
                },
                condition="attribute_not_exists(pk) OR version = :v",
                values={":v": version},
            )
        except ConditionFailed as exc:
            raise Conflict("template changed meanwhile; try again", reason="version_conflict") from exc
        return saved

    def delete_template(self, tenant: str, template_id: str) -> None:
        self.delete(f"T#{tenant}", f"TEMPLATE#{template_id}")


class CachedTemplates:
    """Read-through cache (``seconds``) so a warm Lambda reads a template once a minute, not per send."""

    def __init__(self, repo: TemplateRepository, seconds: float = 60.0) -> None:
        self.repo = repo
        self.seconds = seconds
        self._cache: dict[tuple[str, str], tuple[float, Any]] = {}

    def get(self, tenant: str, template_id: str) -> Template | None:
        key = (tenant, template_id)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit and hit[0] > now:
            return hit[1]
        found = self.repo.get_template(tenant, template_id)
        self._cache[key] = (now + (self.seconds if found else min(self.seconds, 5.0)), found)
        return found
