"""THE tenancy rule: which communities' data a caller sees, and which users an admin administers.

One rule decides visibility for every resource of the API:

    A caller sees a thing when **every community the thing belongs to is one of
    the caller's communities**, or when the caller is an installation-wide
    administrator. Anything else does not exist for the caller: 404, never 403.

What a thing belongs to:

- a community's row — device, event, dead letter, alert, work order, KPI,
  resident, on-call schedule / override / policy / maintenance window,
  stream change, audit entry of a community — belongs to its one community;
- a **user** belongs to all of their communities, and so do the user's API keys
  and the audit entries about that user (logins, logouts, failures, locks,
  password and key changes, user administration). So an admin administers
  exactly the users whose communities are all within their own: a user who
  also belongs to a community the admin does not have is *not found*;
- an **installation-wide administrator** (``api_users.all_communities``)
  belongs to every community, including ones that do not exist yet: only
  another installation-wide administrator sees or administers one;
- a thing of no community (a failed login for an unknown username, a dead
  letter whose topic named no community) is seen by installation-wide
  administrators only.

Permissions — what a role may *do* once it sees a thing — are the other half:
`api.security.ROLE_PERMISSIONS`, checked by `api.deps.allow` (403).

How routes use it (nothing else may test community membership; a test greps
the routes for it):

- `visible(caller, community)` — the communities to filter a list by: the
  caller's, or the one asked for (``?community=``) if the caller sees it;
- `require(caller, community, field=…, what=…)` — 404 unless the caller sees
  that community (a body's ``community_id``, a row's community found by id);
- `sees(caller, communities)` — the rule itself, for a thing of several
  communities (a user);
- `administers(caller, user)` — the rule applied to a user account;
- store functions filter rows in SQL by ``caller.communities``, which
  `api.users.caller_for_secret` fills: the user's communities, or for an
  installation-wide administrator every community the installation knows
  (`api.users.known_communities`).

`tests/api/test_tenancy.py` holds the attacks this rule stops;
`tests/api/test_tenancy_matrix.py` checks every route of the app, for every
role, as a caller of one community and of two and as an installation-wide
administrator, against targets in their own community, in another, and shared
with another. A route without an entry there fails the test.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from api.errors import NotFound

if TYPE_CHECKING:
    from api.users import Caller, UserRecord


def sees(caller: Caller, communities: Iterable[str]) -> bool:
    """The rule: every community of the thing is one of the caller's (a thing of no community: installation only)."""
    if caller.all_communities:
        return True
    wanted = set(communities)
    return bool(wanted) and wanted <= caller.communities


def sees_community(caller: Caller, community: str | None) -> bool:
    return community is not None and sees(caller, (community,))


def require(caller: Caller, community: str | None, *, field: str, what: str | None = None) -> str:
    """``community`` if the caller sees it; otherwise 404 naming ``what`` (default: the community)."""
    if community is None or not sees(caller, (community,)):
        raise NotFound(f"{what or f'community {community!r}'} not found", field=field)
    return community


def visible(caller: Caller, community: str | None, *, field: str = "query.community") -> list[str]:
    """The communities to filter a list by: all of the caller's, or the one asked for if the caller sees it."""
    if community is None:
        return sorted(caller.communities)
    return [require(caller, community, field=field)]


def administers(caller: Caller, user: UserRecord) -> bool:
    """An admin administers exactly the users whose communities are all within their own."""
    if user.all_communities:
        return caller.all_communities
    return sees(caller, user.communities)


def belongs_to(user: UserRecord, community: str) -> bool:
    """Whether ``community`` is one of the user's own (an installation-wide user has them all)."""
    return user.all_communities or community in user.communities


def user_communities(user: UserRecord) -> list[str]:
    """The communities an entry about this user belongs to ([] for an installation-wide one: installation only)."""
    return [] if user.all_communities else sorted(user.communities)


def sql_sees(caller: Caller, column: str) -> tuple[str, dict[str, object]]:
    """The rule in SQL for a ``text[]`` column of communities: a WHERE fragment and its named parameters."""
    fragment = (f"(%(tenancy_all)s OR (cardinality({column}) > 0 AND {column} <@ %(tenancy_communities)s::text[]))")
    return fragment, {"tenancy_all": caller.all_communities, "tenancy_communities": sorted(caller.communities)}
