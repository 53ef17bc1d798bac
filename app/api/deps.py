"""Dependencies the routes declare: the services, and who is calling."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.auth.access import Access, Caller, build_access
from app.services import Services


def get_services(request: Request) -> Services:
    """The services built at start-up."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="key or shopper token",
    description="A service's API key (sg_…) or a shopper's token signed by the shop.",
)


def get_access(request: Request) -> Access:
    """The access rules, built once from the services' settings."""
    access: Access | None = getattr(request.app.state, "access", None)
    if access is None:
        access = request.app.state.access = build_access(get_services(request).settings)
    return access


def get_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """Who is calling (`Unauthenticated`: nobody valid); kept on the request for its log."""
    header = f"{credentials.scheme} {credentials.credentials}" if credentials else None
    caller = get_access(request).caller(header)
    request.state.caller = caller
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]
