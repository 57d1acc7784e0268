from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.version_view import VersionView


T = TypeVar("T", bound="PluginView")


@_attrs_define
class PluginView:
    """
    Attributes:
        id (str): `ins_…`, derived from the tenant and the slug.
        slug (str):
        name (str):
        description (str):
        status (str): `enabled` or `disabled`.
        current (VersionView):
        permissions (list[str]):
        secret_keys (list[str]): Names of the plugin's secrets (never their values).
        manifest (Any): The validated manifest of the current version.
        previous (None | Unset | VersionView): What `roll-back` restores, if there is one.
        installed_at (datetime.datetime | None | Unset):
    """

    id: str
    slug: str
    name: str
    description: str
    status: str
    current: VersionView
    permissions: list[str]
    secret_keys: list[str]
    manifest: Any
    previous: None | Unset | VersionView = UNSET
    installed_at: datetime.datetime | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.version_view import VersionView  # noqa: PLC0415

        id = self.id

        slug = self.slug

        name = self.name

        description = self.description

        status = self.status

        current = self.current.to_dict()

        permissions = self.permissions

        secret_keys = self.secret_keys

        manifest = self.manifest

        previous: dict[str, Any] | None | Unset
        if isinstance(self.previous, Unset):
            previous = UNSET
        elif isinstance(self.previous, VersionView):
            previous = self.previous.to_dict()
        else:
            previous = self.previous

        installed_at: None | str | Unset
        if isinstance(self.installed_at, Unset):
            installed_at = UNSET
        elif isinstance(self.installed_at, datetime.datetime):
            installed_at = self.installed_at.isoformat()
        else:
            installed_at = self.installed_at

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "id": id,
                "slug": slug,
                "name": name,
                "description": description,
                "status": status,
                "current": current,
                "permissions": permissions,
                "secret_keys": secret_keys,
                "manifest": manifest,
            }
        )
        if previous is not UNSET:
            field_dict["previous"] = previous
        if installed_at is not UNSET:
            field_dict["installed_at"] = installed_at

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.version_view import VersionView  # noqa: PLC0415

        d = dict(src_dict)
        id = d.pop("id")

        slug = d.pop("slug")

        name = d.pop("name")

        description = d.pop("description")

        status = d.pop("status")

        current = VersionView.from_dict(d.pop("current"))

        permissions = cast(list[str], d.pop("permissions"))

        secret_keys = cast(list[str], d.pop("secret_keys"))

        manifest = d.pop("manifest")

        def _parse_previous(data: object) -> None | Unset | VersionView:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                previous_type_1 = VersionView.from_dict(data)

                return previous_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | Unset | VersionView, data)

        previous = _parse_previous(d.pop("previous", UNSET))

        def _parse_installed_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                installed_at_type_0 = datetime.datetime.fromisoformat(data)

                return installed_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        installed_at = _parse_installed_at(d.pop("installed_at", UNSET))

        plugin_view = cls(
            id=id,
            slug=slug,
            name=name,
            description=description,
            status=status,
            current=current,
            permissions=permissions,
            secret_keys=secret_keys,
            manifest=manifest,
            previous=previous,
            installed_at=installed_at,
        )

        plugin_view.additional_properties = d
        return plugin_view

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
