from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.issued_token_view import IssuedTokenView
    from ..models.tenant_view import TenantView


T = TypeVar("T", bound="CreatedTenant")


@_attrs_define
class CreatedTenant:
    """
    Attributes:
        tenant (TenantView):
        owner_token (IssuedTokenView): A token just issued. `token` is shown only in this response.
    """

    tenant: TenantView
    owner_token: IssuedTokenView
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        tenant = self.tenant.to_dict()

        owner_token = self.owner_token.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "tenant": tenant,
                "owner_token": owner_token,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.issued_token_view import IssuedTokenView  # noqa: PLC0415
        from ..models.tenant_view import TenantView  # noqa: PLC0415

        d = dict(src_dict)
        tenant = TenantView.from_dict(d.pop("tenant"))

        owner_token = IssuedTokenView.from_dict(d.pop("owner_token"))

        created_tenant = cls(
            tenant=tenant,
            owner_token=owner_token,
        )

        created_tenant.additional_properties = d
        return created_tenant

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
