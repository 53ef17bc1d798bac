"""Dependencies the routes declare: the services, who is calling, and their rate limits."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.auth.access import Access, Caller, build_access
from app.limits import RateLimits, build_rate_limits
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


def get_rate_limits(request: Request) -> RateLimits:
    """The rate limits, built once from the services' settings."""
    limits: RateLimits | None = getattr(request.app.state, "rate_limits", None)
    if limits is None:
        limits = request.app.state.rate_limits = build_rate_limits(get_services(request).settings)
    return limits


def search_caller(request: Request, caller: CallerDep) -> Caller:
    """The caller, charged one search (`RateLimited`: it has spent its searches)."""
    get_rate_limits(request).charge(caller, "search")
    return caller


def answers_caller(request: Request, caller: CallerDep) -> Caller:
    """The caller, charged one answer (`RateLimited`: it has spent its answers)."""
    get_rate_limits(request).charge(caller, "answers")
    return caller


SearchCallerDep = Annotated[Caller, Depends(search_caller)]
AnswersCallerDep = Annotated[Caller, Depends(answers_caller)]
