from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.sandbox_info import SandboxInfo


T = TypeVar("T", bound="Extensibility")


@_attrs_define
class Extensibility:
    """
    Attributes:
        plugins_loaded (int): Installed plugins (enabled or not) of the tenant, or of every
            tenant in the platform view.
        enabled_plugins (list[str]): Slugs of the enabled ones, sorted and distinct (the platform view
            lists at most 1,000; `enabled_plugins_count` is exact).
        enabled_plugins_count (int): Enabled installations.
        sandbox (SandboxInfo): The sandbox settings every plugin runs under (manifests may lower them).
        webhooks_active (int): Webhooks declared and enabled (neither disabled nor deleted).
        jobs_scheduled (int): Jobs declared by enabled plugins, each with a next fire time in its
            tenant's scheduler.
        http_allowlist (list[str] | None | Unset): The platform's outbound allowlist; `null`: manifests alone decide.
    """

    plugins_loaded: int
    enabled_plugins: list[str]
    enabled_plugins_count: int
    sandbox: SandboxInfo
    webhooks_active: int
    jobs_scheduled: int
    http_allowlist: list[str] | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        plugins_loaded = self.plugins_loaded

        enabled_plugins = self.enabled_plugins

        enabled_plugins_count = self.enabled_plugins_count

        sandbox = self.sandbox.to_dict()

        webhooks_active = self.webhooks_active

        jobs_scheduled = self.jobs_scheduled

        http_allowlist: list[str] | None | Unset
        if isinstance(self.http_allowlist, Unset):
            http_allowlist = UNSET
        elif isinstance(self.http_allowlist, list):
            http_allowlist = self.http_allowlist

        else:
            http_allowlist = self.http_allowlist

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "plugins_loaded": plugins_loaded,
                "enabled_plugins": enabled_plugins,
                "enabled_plugins_count": enabled_plugins_count,
                "sandbox": sandbox,
                "webhooks_active": webhooks_active,
                "jobs_scheduled": jobs_scheduled,
            }
        )
        if http_allowlist is not UNSET:
            field_dict["http_allowlist"] = http_allowlist

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.sandbox_info import SandboxInfo  # noqa: PLC0415

        d = dict(src_dict)
        plugins_loaded = d.pop("plugins_loaded")

        enabled_plugins = cast(list[str], d.pop("enabled_plugins"))

        enabled_plugins_count = d.pop("enabled_plugins_count")

        sandbox = SandboxInfo.from_dict(d.pop("sandbox"))

        webhooks_active = d.pop("webhooks_active")

        jobs_scheduled = d.pop("jobs_scheduled")

        def _parse_http_allowlist(data: object) -> list[str] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                http_allowlist_type_0 = cast(list[str], data)

                return http_allowlist_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None | Unset, data)

        http_allowlist = _parse_http_allowlist(d.pop("http_allowlist", UNSET))

        extensibility = cls(
            plugins_loaded=plugins_loaded,
            enabled_plugins=enabled_plugins,
            enabled_plugins_count=enabled_plugins_count,
            sandbox=sandbox,
            webhooks_active=webhooks_active,
            jobs_scheduled=jobs_scheduled,
            http_allowlist=http_allowlist,
        )

        extensibility.additional_properties = d
        return extensibility

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
