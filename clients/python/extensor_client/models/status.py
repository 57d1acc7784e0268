from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.status_scope_view import StatusScopeView
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.extensibility import Extensibility
    from ..models.features import Features


T = TypeVar("T", bound="Status")


@_attrs_define
class Status:
    """
    Attributes:
        scope (StatusScopeView): What a status answer covers.
        features (Features):
        extensibility (Extensibility):
        tenant (None | str | Unset): The tenant's slug; `null` in the platform view.
    """

    scope: StatusScopeView
    features: Features
    extensibility: Extensibility
    tenant: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        scope = self.scope.value

        features = self.features.to_dict()

        extensibility = self.extensibility.to_dict()

        tenant: None | str | Unset
        if isinstance(self.tenant, Unset):
            tenant = UNSET
        else:
            tenant = self.tenant

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "scope": scope,
                "features": features,
                "extensibility": extensibility,
            }
        )
        if tenant is not UNSET:
            field_dict["tenant"] = tenant

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.extensibility import Extensibility  # noqa: PLC0415
        from ..models.features import Features  # noqa: PLC0415

        d = dict(src_dict)
        scope = StatusScopeView(d.pop("scope"))

        features = Features.from_dict(d.pop("features"))

        extensibility = Extensibility.from_dict(d.pop("extensibility"))

        def _parse_tenant(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        tenant = _parse_tenant(d.pop("tenant", UNSET))

        status = cls(
            scope=scope,
            features=features,
            extensibility=extensibility,
            tenant=tenant,
        )

        status.additional_properties = d
        return status

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
