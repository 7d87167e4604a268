"""One member's membership of a consumer group: join, heartbeat, sync, leave,
generation fencing and commit authority.

A :class:`GroupMembership` stands for one member of one group, whoever drives
it: an embedded :class:`~mqlog.Consumer` (its ``poll`` heartbeats and syncs)
or a server holding the group on behalf of a remote client (a Kafka client's
JoinGroup, SyncGroup, Heartbeat, LeaveGroup and OffsetCommit map one to one
onto :meth:`~GroupMembership.join`, :meth:`~GroupMembership.sync`,
:meth:`~GroupMembership.heartbeat`, :meth:`~GroupMembership.leave` and
:meth:`~GroupMembership.authorize_commit`). The group's shared state is on
disk (see ``_group``): the member file, whose flock this membership holds, the
published plan, and one owner lock per partition, held by the membership for
its member. The membership tells its member what changed through a
:class:`MembershipListener`; it never looks inside the member.

The lifecycle::

    join -> (member id, generation) -> sync(generation) -> assignment
      ^                                   ^
      |                                   | heartbeat: rebalance=True
      |                                   |   (a newer generation is published)
      +-- UnknownMemberError <- removed: no heartbeat within the session timeout,
                                 or no sync within the rebalance timeout of a
                                 newer generation

Invariants (under the membership's lock):

1. The member owns a partition exactly while this membership holds the
   partition's owner lock; the owned partitions are a subset of what the plan
   of the member's generation assigns it, or of an older plan's while it
   still has to give them up.
2. Cooperative rebalancing: at :meth:`sync` the partitions the new plan takes
   away are revoked (``partitions_revoked`` first, then their locks
   released, even if the listener failed); the ones it adds are taken as
   soon as their previous owner let go (``partitions_assigned`` after the
   lock is held), at this sync or a later heartbeat. Partitions that stay
   are never released.
3. The member's generation is the generation of the last plan it synced
   completely; a sync or commit naming another generation raises
   IllegalGenerationError, one naming another member id (or a member that
   was removed) UnknownMemberError. Both are CommitFailedErrors.
4. A member is removed -- its locks released (``partitions_lost``, no revoke:
   it may not commit them any more), its member file deleted, the group
   rebalanced -- when it does not heartbeat for its session timeout, or does
   not sync a newer generation within its rebalance timeout. An embedded
   member whose process dies is removed at once: the kernel releases its
   locks. A removed membership may join again, under a new member id; one
   that left (or was closed) may not.
5. Commit authority: only the member that owns a partition (holds its lock)
   may commit its offset, with its current member id and generation
   (:meth:`authorize_commit`; :meth:`commit` checks and writes under the lock).
6. Live members are all local (embedded consumers) or all remote (a server's,
   joined with ``remote_host``): a join of the other kind raises ConfigError.

Assignment. The membership that publishes a generation computes its plan with
its member's first known assignor. Client-side assignment, as Kafka's: the
leader (lowest member id of the generation) gets every member's subscription
in its JoinResult (or from :meth:`members`) and hands its own plan to
:meth:`sync`; it replaces the generation's assignment (``assigned_by`` in the
plan) and every member's next heartbeat asks it to sync again. A plan changes
only when the live members, their subscriptions or the partition counts
change (or its leader replaces it); a rejoin with an unchanged subscription
changes nothing, so the group does not go round again.

Deadlines are enforced by :meth:`expire`, which a watchdog thread runs (or, for
a server hosting many members with ``watchdog=False``, its own timer); the
clock is injectable so tests need no sleeps.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence

from mqlog.consumer._config import TopicPartition
from mqlog.consumer._group import (
    Document,
    group_directory,
    install_plan,
    member_file,
    mixed_membership,
    owner_file,
    plan_is_stale,
    read_plan,
    rebalance,
    refuse_other_kind,
)
from mqlog.consumer._membership_messages import (
    HeartbeatResult,
    JoinResult,
    MembershipListener,
    MemberSubscription,
    SyncResult,
    check_join,
    checked_assignment,
    member_info,
    named,
    subscriptions,
    unstamped,
)
from mqlog.consumer._offsets import offset_store
from mqlog.errors import (
    CommitFailedError,
    ConfigError,
    IllegalGenerationError,
    IllegalStateError,
    UnknownMemberError,
)
from mqlog.logstore import Engine

#: Longest sleep of the watchdog between two deadline checks.
WATCHDOG_STEP_MAX_S = 1.0


class GroupMembership:
    """The membership of one member of consumer group ``group`` (see the module).

    Thread-safe: every method takes the membership's lock. ``check_interval_ms``
    bounds how often a heartbeat looks for members that joined, left or died
    and for topics that appeared or grew.
    """

    def __init__(self, log: Engine, group: str, *, listener: MembershipListener | None = None,
                 check_interval_ms: int = 100, watchdog: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        refuse_other_kind(log, group, "consumer")
        self._log = log
        self.group = group
        self.directory = group_directory(log, group)
        for sub in ("members", "owners"):
            os.makedirs(os.path.join(self.directory, sub), exist_ok=True)
        self._listener = listener
        self._check_s = check_interval_ms / 1000
        self._use_watchdog = watchdog
        self._clock = clock
        self._lock = threading.RLock()
        self._member_id = ""
        self._member_fd = -1
        self._info: Document = {}
        self._assignor = ""
        self._session_s = 0.0
        self._rebalance_s = 0.0
        self._owned: dict[TopicPartition, int] = {}  # partition -> fd holding its lock
        self._wanted: set[TopicPartition] = set()
        self._generation = -1
        self._latest = -1
        #: Who computed the plan synced last / the newest plan seen: "" for the
        #: assignor, else the leader that replaced its assignment (``sync``).
        self._synced_by = ""
        self._latest_by = ""
        self._plan: Document | None = None
        self._plan_stamp: tuple[int, int] | None = None
        self._last_check = -float("inf")
        self._last_heartbeat = clock()
        self._behind_since: float | None = None
        self._removed: tuple[str, str] | None = None  # (member id, why) of the last removal
        self._closed = False
        self._watchdog: threading.Thread | None = None

    # -- what the member may ask -------------------------------------------------------

    @property
    def member_id(self) -> str:
        """The member's id; "" while it is not a member (before joining, once removed)."""
        return self._member_id

    @property
    def generation(self) -> int:
        """The generation the member last synced; -1 before its first sync."""
        return self._generation

    def owns(self, tp: TopicPartition) -> bool:
        """True while the member owns ``tp`` (holds its lock)."""
        return tp in self._owned

    def assignment(self) -> frozenset[TopicPartition]:
        """The partitions the member owns now."""
        with self._lock:
            return frozenset(self._owned)

    # -- join, sync, heartbeat, leave --------------------------------------------------

    def join(self, *, client_id: str, topics: Sequence[str] | re.Pattern[str],
             assignors: Sequence[str], session_timeout_ms: int, rebalance_timeout_ms: int,
             member_id: str = "", remote_host: str | None = None) -> JoinResult:
        """Become a member (``member_id`` "") or change the subscription of the
        member (``member_id`` its id); the group rebalances if that changed its
        plan. The member owns nothing new until it syncs the returned generation.

        ``assignors``: names the member supports, preferred first; the first
        known one (range, roundrobin, sticky) computes plans this membership
        publishes. ``remote_host``: the host of the remote client this member
        stands for (rule 6). ConfigError for bad values or a group of the other
        kind, UnknownMemberError for an id not this member's, IllegalStateError
        once it left.
        """
        chosen = check_join(client_id, topics, assignors, session_timeout_ms,
                             rebalance_timeout_ms)
        with self._lock:
            if self._closed:
                raise IllegalStateError(f"this member of group {self.group!r} left; "
                                        f"a new membership is needed to join again")
            if self._member_id and not member_id:
                raise IllegalStateError(f"already a member of group {self.group!r} as "
                                        f"{self._member_id}; join with that id")
            if member_id:
                self._check_member(member_id)
            self._assignor = chosen
            self._session_s = session_timeout_ms / 1000
            self._rebalance_s = rebalance_timeout_ms / 1000
            info = member_info(client_id, chosen, assignors, topics, remote_host,
                               self._log.now_ms())
            if not self._member_id:
                self._info = info
                self._create_member(client_id)
                refusal = mixed_membership(self.directory, self.group, self._member_id)
                if refusal:  # rule 6; of two kinds joining at once, one at least sees the other
                    self._drop(revoke=False)
                    raise ConfigError(refusal)
            elif unstamped(info) != unstamped(self._info):
                self._info = info
                self._write_member_file()
            self._last_heartbeat = self._clock()
            plan = rebalance(self._log, self.directory, self._member_id, self._assignor)
            self._plan_stamp = None
            self._note_latest(plan)
            result = self._join_result(plan)
        self._start_watchdog()
        return result

    def sync(self, member_id: str, generation: int,
             assignment: Mapping[str, Iterable[TopicPartition]] | None = None) -> SyncResult:
        """Apply the plan of ``generation`` (which must be the group's newest):
        revoke what it takes away, take what it gives as far as the locks are
        free. UnknownMemberError / IllegalGenerationError when fenced.

        ``assignment`` (member id -> partitions): the plan the group's leader
        computed (client-side assignment, Kafka's SyncGroup from the leader).
        It replaces the assignment of ``generation`` (ConfigError if it names
        a non-member, a topic its member does not subscribe to, a partition
        that does not exist or one twice; IllegalStateError from a member that
        is not the leader); the other members' next heartbeat asks them to sync.
        """
        with self._lock:
            self._check_member(member_id)
            self._last_heartbeat = self._clock()
            plan = self._current_plan()
            self._note_latest(plan)
            if generation != plan["generation"]:
                raise IllegalGenerationError(
                    f"generation {generation} of group {self.group!r} is not the current "
                    f"one ({plan['generation']}); sync that generation")
            if assignment is not None:
                plan = self._install(plan, assignment)
            self._apply(plan)
            return SyncResult(self._generation, frozenset(self._owned),
                              frozenset(self._wanted - set(self._owned)))

    def heartbeat(self, member_id: str, generation: int, *, look: bool = True
                  ) -> HeartbeatResult:
        """Keep the member alive; at most every ``check_interval_ms`` look for
        changes and rebalance (this membership is the coordinator then); take
        pending partitions whose locks came free. ``rebalance`` in the result:
        ``generation`` is not the newest, the member must sync. ``look=False``:
        only note the time -- no look, no take, whatever is due (the next
        heartbeat does them); it touches no file and no lock of the group."""
        with self._lock:
            self._check_member(member_id)
            now = self._clock()
            self._last_heartbeat = now
            if look and now - self._last_check >= self._check_s:
                self._last_check = now
                if plan_is_stale(self._log, self.directory, self._member_id):
                    rebalance(self._log, self.directory, self._member_id, self._assignor)
                self._note_latest(self._current_plan())
            if look and self._wanted - set(self._owned):
                self._take(self._wanted - set(self._owned))
            return HeartbeatResult(self._latest, generation != self._latest or (
                self._synced_by != self._latest_by))

    def heartbeat_is_quick(self, member_id: str, generation: int) -> bool:
        """True if ``heartbeat(member_id, generation)`` now would only note the
        time: the member is one, synced the newest plan seen (``generation``),
        wants no partition it does not hold, no look at the group is due, and its
        session is far from its deadline (so the watchdog is not removing it and
        will not hold the lock for longer than a look at the clock). A look may
        fall due a moment later: a caller that must not wait heartbeats with
        ``look=False``. Read without the lock: only the member's own calls
        change what it reads, the watchdog only when the session is over."""
        now = self._clock()
        return (bool(member_id) and member_id == self._member_id and not self._closed
                and now - self._last_check < self._check_s
                and now - self._last_heartbeat < self._session_s / 2
                and self._behind_since is None
                and self._wanted.issubset(self._owned)
                and generation == self._latest and self._synced_by == self._latest_by)

    def leave(self, member_id: str) -> None:
        """Revoke every partition, leave the group at once, and end this membership
        (the locks go even if the listener fails)."""
        with self._lock:
            self._check_member(member_id)
            self._closed = True
            try:
                self._drop(revoke=True)
            finally:
                rebalance(self._log, self.directory, "", self._assignor)

    def close(self) -> None:
        """Leave if still a member; end this membership. Idempotent."""
        with self._lock:
            if self._closed:
                return
            if self._member_id:
                self.leave(self._member_id)
            self._closed = True

    def members(self) -> dict[str, MemberSubscription]:
        """Every member of the current plan and its subscription: what a leader
        needs to compute a plan (client-side assignment)."""
        with self._lock:
            return subscriptions(self._current_plan())

    # -- fencing and commit authority --------------------------------------------------

    def authorize_commit(self, member_id: str, generation: int,
                         partitions: Iterable[TopicPartition]) -> None:
        """Raise unless the member may commit offsets of ``partitions`` now: it is a
        member under ``member_id`` (else UnknownMemberError), ``generation`` is
        its generation (else IllegalGenerationError) and it owns each of them
        (else CommitFailedError). Returns quietly when all hold."""
        partitions = sorted(set(partitions))
        with self._lock:
            self._check_member(member_id, partitions)
            if generation != self._generation:
                raise IllegalGenerationError(
                    f"member {member_id} of group {self.group!r} committed with generation "
                    f"{generation}, its generation is {self._generation}")
            not_owned = [tp for tp in partitions if tp not in self._owned]
            if not_owned:
                raise CommitFailedError(f"member {member_id} of group {self.group!r} does "
                                        f"not own {named(not_owned)} (any more)")

    def commit(self, member_id: str, generation: int, offsets: Mapping[TopicPartition, int],
               metadata: str = "") -> None:
        """Commit ``offsets`` for the group if :meth:`authorize_commit` passes, both
        under the membership's lock: the partitions cannot be lost in between."""
        with self._lock:
            self.authorize_commit(member_id, generation, offsets)
            offset_store(self._log).commit(self.group, offsets, member_id, metadata)

    def _check_member(self, member_id: str, partitions: Sequence[TopicPartition] = ()) -> None:
        if member_id and member_id == self._member_id:
            return
        what = f"does not own {named(partitions)} (any more)" if partitions else (
            "is not a member (any more)")
        why = (self._removed[1] if self._removed and self._removed[0] == member_id
               else "unknown member id")
        raise UnknownMemberError(f"member {member_id} of group {self.group!r} {what}: {why}")

    # -- deadlines -------------------------------------------------------------------------

    def expire(self) -> bool:
        """Remove the member if it missed its session or rebalance deadline (see
        the module, rule 4); True if it was removed now."""
        with self._lock:
            if not self._member_id or self._closed:
                return False
            now = self._clock()
            if now - self._last_heartbeat > self._session_s:
                why = (f"removed after {round(self._session_s * 1000)} ms without a poll or "
                       f"heartbeat; joining again (the next poll) makes it a member again")
            elif self._behind_since is not None and now - self._behind_since > self._rebalance_s:
                why = (f"removed for not syncing generation {self._latest} within "
                       f"{round(self._rebalance_s * 1000)} ms; it must join again")
            else:
                return False
            self._removed = (self._member_id, why)
            self._drop(revoke=False)
            rebalance(self._log, self.directory, "", self._assignor)
            return True

    def _start_watchdog(self) -> None:
        if self._use_watchdog and self._watchdog is None:
            self._watchdog = threading.Thread(target=self._watch, daemon=True,
                                              name=f"mqlog-group-{self.group}")
            self._watchdog.start()

    def _watch(self) -> None:
        while not self._closed:
            step_s = min(WATCHDOG_STEP_MAX_S, min(self._session_s, self._rebalance_s) / 10)
            time.sleep(step_s)
            self.expire()

    # -- the member file -----------------------------------------------------------------

    def _create_member(self, client_id: str) -> None:
        """Appear as a member: the file is locked and filled under a temporary name,
        then renamed, so no prober ever sees an unlocked member file."""
        self._member_id = f"{client_id}-{uuid.uuid4().hex[:12]}"
        path = member_file(self.directory, self._member_id)
        staging = path + ".joining"
        self._member_fd = os.open(staging, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        fcntl.flock(self._member_fd, fcntl.LOCK_EX)
        self._write_member_file()
        os.rename(staging, path)
        self._generation = -1
        self._behind_since = None

    def _write_member_file(self) -> None:
        data = json.dumps(self._info, sort_keys=True).encode()
        os.ftruncate(self._member_fd, 0)
        os.pwrite(self._member_fd, data, 0)

    def _drop(self, revoke: bool) -> None:
        """Give up every partition (revoked or lost) and the member file."""
        self._wanted = set()
        try:
            self._release(set(self._owned), revoke)
        finally:
            if self._member_fd >= 0:
                try:
                    os.unlink(member_file(self.directory, self._member_id))
                except FileNotFoundError:
                    pass
                os.close(self._member_fd)
                self._member_fd = -1
            self._member_id = ""
            self._generation = -1
            self._behind_since = None

    # -- the plan --------------------------------------------------------------------------

    def _current_plan(self) -> Document:
        """The published plan, read again only when the file changed."""
        path = os.path.join(self.directory, "assignment.json")
        try:
            stat = os.stat(path)
            stamp: tuple[int, int] | None = (stat.st_ino, stat.st_mtime_ns)
        except FileNotFoundError:
            stamp = None
        if self._plan is None or stamp is None or stamp != self._plan_stamp:
            self._plan_stamp = stamp
            self._plan = read_plan(self.directory)
        return self._plan

    def _note_latest(self, plan: Document) -> None:
        """Remember the newest plan seen; start the rebalance deadline when the
        member's synced plan falls behind it."""
        if plan["generation"] >= self._latest:
            self._latest, self._latest_by = plan["generation"], plan.get("assigned_by", "")
        if (self._latest, self._latest_by) == (self._generation, self._synced_by):
            self._behind_since = None
        elif self._behind_since is None:
            self._behind_since = self._clock()

    def _install(self, plan: Document, assignment: Mapping[str, Iterable[TopicPartition]]
                 ) -> Document:
        """Publish the leader's ``assignment`` as the plan of ``plan``'s generation."""
        leader = min(plan["members"], default="")
        if leader != self._member_id:
            raise IllegalStateError(f"member {self._member_id} is not the leader of group "
                                    f"{self.group!r} ({leader}); only the leader assigns")
        checked = checked_assignment(plan, assignment)
        installed = install_plan(self.directory, plan["generation"], self._member_id, checked)
        self._plan_stamp = None
        if installed is None:
            raise IllegalGenerationError(
                f"generation {plan['generation']} of group {self.group!r} ended before its "
                f"leader's assignment came; join again")
        self._note_latest(installed)
        return installed

    def _join_result(self, plan: Document) -> JoinResult:
        leader = min(plan["members"], default="")
        members = subscriptions(plan) if leader == self._member_id else {}
        return JoinResult(self._member_id, plan["generation"], leader, members)

    def _apply(self, plan: Document) -> None:
        """Rule 2 of the module; the generation is the plan's once it is applied."""
        wanted = {TopicPartition(*tp) for tp in plan["assignment"].get(self._member_id, ())}
        self._wanted = wanted  # first: a failing revoke must not make us take them back
        self._release(set(self._owned) - wanted, revoke=True)
        self._take(wanted - set(self._owned))
        self._generation, self._synced_by = plan["generation"], plan.get("assigned_by", "")
        self._note_latest(plan)

    def _release(self, partitions: set[TopicPartition], revoke: bool) -> None:
        if not partitions:
            return
        try:
            if revoke and self._listener is not None:
                self._listener.partitions_revoked(set(partitions))
        finally:  # the partitions go even if the listener failed
            for tp in partitions:
                fd = self._owned.pop(tp, None)
                if fd is not None:
                    os.close(fd)  # closing releases the flock
            if not revoke and self._listener is not None:
                self._listener.partitions_lost(set(partitions))

    def _take(self, partitions: set[TopicPartition]) -> None:
        taken = set()
        for tp in sorted(partitions):
            fd = os.open(owner_file(self.directory, tp), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)  # the previous owner has not let go yet
                continue
            self._owned[tp] = fd
            taken.add(tp)
        if taken and self._listener is not None:
            self._listener.partitions_assigned(taken)
