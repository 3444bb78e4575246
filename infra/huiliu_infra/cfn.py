"""template.yaml → CloudFormation (through aws-sam-translator) → a resolved resource model.

The local runtime provisions from this, so template.yaml stays the one source of wiring.
SAM needs ``s3://`` code URIs: local ``CodeUri``/``ContentUri`` paths are rewritten to
``s3://huiliu-local-code/<path>`` before translation and read back afterwards.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CODE_BUCKET = "huiliu-local-code"
ACCOUNT_ID = "123456789012"


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that understands CloudFormation short-form tags (!Ref, !Sub, !GetAtt …)."""


def _construct_tag(loader: yaml.Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506 - safe subclass


class _NoManagedPolicies:
    """SAM asks for managed policy ARNs by name only for names it cannot resolve itself."""

    def load(self) -> dict[str, str]:
        return {}


def translate(template: dict[str, Any], parameters: dict[str, str], region: str) -> dict[str, Any]:
    """Run the SAM transform locally (no AWS calls)."""
    import os

    from samtranslator.translator.transform import transform

    sam = copy.deepcopy(template)
    for resource in sam.get("Resources", {}).values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                props[key] = f"s3://{CODE_BUCKET}/{props[key].strip('/')}"
    previous = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = region
    try:
        return transform(sam, parameters, _NoManagedPolicies())  # type: ignore[arg-type]
    finally:
        if previous is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = previous


@dataclass
class Names:
    """Physical names/ARNs of resources, filled in as they are provisioned."""

    region: str
    stack: str
    refs: dict[str, str] = field(default_factory=dict)
    attrs: dict[tuple[str, str], str] = field(default_factory=dict)


class Resolver:
    """Evaluates the intrinsic functions the template uses against provisioned names."""

    def __init__(self, template: dict[str, Any], names: Names, parameters: dict[str, str]) -> None:
        self.template = template
        self.names = names
        self.parameters = {
            name: parameters.get(name, str(spec.get("Default", "")))
            for name, spec in template.get("Parameters", {}).items()
        }
        self.pseudo = {
            "AWS::Region": names.region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": names.stack,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": None,
        }

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.names.refs:
            return self.names.refs[name]
        raise KeyError(f"unresolved Ref {name}")

    def getatt(self, logical: str, attr: str) -> str:
        key = (logical, attr)
        if key in self.names.attrs:
            return self.names.attrs[key]
        raise KeyError(f"unresolved GetAtt {logical}.{attr}")

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template.get("Conditions", {})[name]))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.getatt(logical, attr)
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
                return re.sub(r"\$\{([^}!]+)\}", lambda m: str(self._sub_var(m.group(1), extra)), text)
            if key == "Fn::Join":
                sep, parts = arg
                return sep.join(str(p) for p in self.resolve(parts))
            if key == "Fn::FindInMap":
                mapping, top, second = self.resolve(arg)
                return self.template["Mappings"][mapping][top][second]
            if key == "Fn::Select":
                index, items = self.resolve(arg)
                return items[int(index)]
            if key == "Fn::Split":
                sep, text = self.resolve(arg)
                return text.split(sep)
            if key == "Fn::If":
                cond, yes, no = arg
                return self.resolve(yes if self.condition(cond) else no)
            if key == "Fn::Equals":
                left, right = self.resolve(arg)
                return left == right
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(a) for a in arg)
            if key == "Fn::Or":
                return any(self.resolve(a) for a in arg)
            if key.startswith("Fn::"):
                raise KeyError(f"intrinsic {key} is not modelled by the local runtime")
            if key == "Condition":
                return self.condition(arg)
        return {k: self.resolve(v) for k, v in value.items()}

    def _sub_var(self, name: str, extra: dict[str, Any]) -> Any:
        if name in extra:
            return extra[name]
        if "." in name:
            logical, attr = name.split(".", 1)
            return self.getatt(logical, attr)
        return self.ref(name)


def resource_enabled(resource: dict[str, Any], resolver: Resolver) -> bool:
    cond = resource.get("Condition")
    return True if cond is None else resolver.condition(cond)


def code_path(code: dict[str, Any] | str) -> str:
    """The local folder behind a translated ``Code``/``Content`` (``s3://huiliu-local-code/<path>``)."""
    if isinstance(code, dict):
        return str(code.get("S3Key", ""))
    return str(code).removeprefix(f"s3://{CODE_BUCKET}/")
