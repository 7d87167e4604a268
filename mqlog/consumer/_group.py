"""Group membership, the rebalance coordinator, and partition ownership locks.

Files of a group, under ``<log>/groups/<group>/``::

    members/<member_id>.json     who the member is; it holds an exclusive flock on
                                 it while alive, so a killed process leaves at once
    coordinator.lock             flock held while computing an assignment
    assignment.json              {generation, members, assignment}: the latest plan
    owners/<topic>.<partition>   a member holds an exclusive flock on this file while
                                 it owns the partition

Protocol. Any member that notices a change -- a member file appeared, a
member's lock is free (it died or left), a subscribed topic appeared or grew --
takes the coordinator lock, works out the live members (flock probes), runs the
assignor over their subscriptions and, if the plan changed, publishes it with
the next generation number. Every member checks the plan on each poll (at most
every ``group_check_interval_ms``) and applies it cooperatively: it gives up
the partitions it lost (``on_revoked`` first, then releases their locks) and
takes the ones it gained as soon as their locks are free (the previous owner
releases them on its next poll, or its death releases them). Partitions that
stay keep being consumed throughout.

Guarantees. A member fetches and commits a partition only while it holds the
partition's lock, so no two members (threads or processes) ever consume one
partition at the same time, and a commit from a member that lost a partition
fails. A member that does not poll for ``max_poll_interval_ms`` gives up all
its partitions by itself (a watchdog thread), as a Kafka client leaves its
group; its next poll joins again.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from mqlog.consumer._assignors import ASSIGNORS
from mqlog.consumer._config import ConsumerConfig, TopicPartition
from mqlog.consumer._offsets import OFFSETS_TOPIC, offset_store
from mqlog.errors import ConfigError, MqlogError
from mqlog.logstore import Engine, atomic_write
from mqlog.names import validate_name

if TYPE_CHECKING:
    from mqlog.consumer._consumer import Consumer

GROUPS_DIR = "groups"
QUEUES_DIR = "queues"
Listener = Callable[[set[TopicPartition]], None]


def group_directory(log: Engine, group: str) -> str:
    """Where a consumer group keeps its members' files and its plan (ConfigError
    for an invalid group name: no path outside ``groups/``)."""
    return os.path.join(log.path, GROUPS_DIR, validate_name("group", group))


def queue_directory(log: Engine, group: str) -> str:
    """Where a queue group keeps its members' files and its share states (ConfigError
    for an invalid group name: no path outside ``queues/``)."""
    return os.path.join(log.path, QUEUES_DIR, validate_name("group", group))


def is_consumer_group(log: Engine, group: str) -> bool:
    """True if ``group`` has a consumer group's files or committed offsets (looked
    up only when some offsets were ever committed: asking does not create the
    offsets topic)."""
    if os.path.isdir(group_directory(log, group)):
        return True
    if not log.has_topic(OFFSETS_TOPIC):
        return False
    return bool(offset_store(log).group_offsets(group))


def is_queue_group(log: Engine, group: str) -> bool:
    return os.path.isdir(queue_directory(log, group))


def refuse_other_kind(log: Engine, group: str, kind: str) -> None:
    """Consumer groups and queue groups share one namespace, as Kafka's group ids
    do: raise ConfigError when ``group`` already is a group of the other kind
    (``kind`` is the one wanted: "consumer" or "queue")."""
    taken = is_queue_group(log, group) if kind == "consumer" else is_consumer_group(log, group)
    if taken:
        other = "queue" if kind == "consumer" else "consumer"
        raise ConfigError(f"{group!r} is a {other} group; a {kind} group needs another name")


def _write_json_atomically(path: str, document: dict) -> None:
    atomic_write(path, json.dumps(document, sort_keys=True).encode())


def read_plan(directory: str) -> dict:
    """The published plan of a group (generation 0 and nothing assigned if none)."""
    try:
        with open(os.path.join(directory, "assignment.json")) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return {"generation": 0, "members": {}, "assignment": {}}


def live_members(directory: str, own: set[str] = frozenset(),
                 prune: bool = True) -> dict[str, dict]:
    """Member id -> info of the members whose lock is held (``own``: ours, held
    in this process, where a probe would wrongly succeed). Files of dead
    members are removed (unless not ``prune``: a read-only Log)."""
    members_dir = os.path.join(directory, "members")
    alive = {}
    for name in sorted(os.listdir(members_dir)):
        if not name.endswith(".json"):
            continue
        member_id = name[: -len(".json")]
        path = os.path.join(members_dir, name)
        if member_id not in own and not lock_is_held(path):
            if prune:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
            continue
        try:
            with open(path) as handle:
                alive[member_id] = json.load(handle)
        except (FileNotFoundError, json.JSONDecodeError):
            continue  # a member being created or removed right now
    return alive


def lock_is_held(path: str) -> bool:
    """True if another open file description holds a flock on ``path``."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return True
        raise
    finally:
        os.close(fd)


class GroupMember:
    """This consumer's membership of one group."""

    def __init__(self, log: Engine, group: str, config: ConsumerConfig, consumer: Consumer) -> None:
        validate_name("group", group)
        self._log = log
        self.group = group
        self.config = config
        self._consumer = consumer
        refuse_other_kind(log, group, "consumer")
        self.directory = group_directory(log, group)
        for sub in ("members", "owners"):
            os.makedirs(os.path.join(self.directory, sub), exist_ok=True)
        self._lock = threading.RLock()
        self._topics: list[str] | re.Pattern = []
        self._on_assigned: Listener | None = None
        self._on_revoked: Listener | None = None
        self.member_id = ""
        self._member_fd = -1
        self._owned: dict[TopicPartition, int] = {}  # partition -> fd holding its lock
        self._wanted: set[TopicPartition] = set()
        self._generation = -1
        self._plan_stamp: tuple[int, int] | None = None
        self._last_check = 0.0
        self.last_poll = time.monotonic()
        self._closed = False
        #: Set when the watchdog gave the partitions up (no poll for max_poll_interval_ms);
        #: commits fail until the next poll joins again.
        self.evicted = False
        self._watchdog: threading.Thread | None = None

    # -- joining and leaving ---------------------------------------------------------

    def subscribe(self, topics: list[str] | re.Pattern, on_assigned: Listener | None,
                  on_revoked: Listener | None) -> None:
        with self._lock:
            self._topics = topics
            self._on_assigned, self._on_revoked = on_assigned, on_revoked
            if self.member_id:
                self._write_member_file()
            else:
                self._join()
            self.rebalance()
            self._apply_plan(force=True)
        if self._watchdog is None:
            self._watchdog = threading.Thread(target=self._watch, daemon=True,
                                              name=f"mqlog-group-{self.group}")
            self._watchdog.start()

    def _join(self) -> None:
        """Appear as a member: the file is locked and filled under a temporary name,
        then renamed, so no prober ever sees an unlocked member file."""
        self.member_id = f"{self.config.client_id}-{uuid.uuid4().hex[:12]}"
        path = self._member_path()
        staging = path + ".joining"
        self._member_fd = os.open(staging, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        fcntl.flock(self._member_fd, fcntl.LOCK_EX)
        self._write_member_file()
        os.rename(staging, path)

    def _member_path(self) -> str:
        return os.path.join(self.directory, "members", f"{self.member_id}.json")

    def _write_member_file(self) -> None:
        topics = self._topics
        info = {
            "client_id": self.config.client_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "assignor": self.config.assignor,
            "topics": topics if isinstance(topics, list) else None,
            "pattern": topics.pattern if isinstance(topics, re.Pattern) else None,
            "joined_ms": self._log.now_ms(),
        }
        data = json.dumps(info, sort_keys=True).encode()
        os.ftruncate(self._member_fd, 0)
        os.pwrite(self._member_fd, data, 0)

    def leave(self) -> None:
        """Give up every partition and leave the group at once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._drop_membership(revoke_callback=True)
            finally:
                self.rebalance()

    def _drop_membership(self, revoke_callback: bool) -> None:
        self._wanted = set()
        try:
            self._release(set(self._owned), revoke_callback)
        finally:
            if self._member_fd >= 0:
                try:
                    os.unlink(self._member_path())
                except FileNotFoundError:
                    pass
                os.close(self._member_fd)
                self._member_fd = -1
            self.member_id = ""

    # -- polling ------------------------------------------------------------------------

    def on_poll(self) -> None:
        """Called by every poll: rejoin if evicted, look for changes, apply the plan."""
        self.last_poll = time.monotonic()
        with self._lock:
            if self._closed:
                return
            if not self.member_id:  # gave up its partitions after a long pause
                self._join()
                self.evicted = False
                self.rebalance()
            now = time.monotonic()
            if now - self._last_check >= self.config.group_check_interval_ms / 1000:
                self._last_check = now
                if self._membership_changed():
                    self.rebalance()
                self._apply_plan()
            elif self._wanted - set(self._owned):
                self._take(self._wanted - set(self._owned))

    def owns(self, tp: TopicPartition) -> bool:
        return tp in self._owned

    def _membership_changed(self) -> bool:
        """Cheap check whether the plan is out of date: members or topics changed."""
        plan = read_plan(self.directory)
        planned = set(plan["members"])
        names = {n[:-5] for n in os.listdir(os.path.join(self.directory, "members"))
                 if n.endswith(".json")}
        if names != planned:
            return True
        for member_id in planned:
            if member_id != self.member_id and not lock_is_held(
                os.path.join(self.directory, "members", f"{member_id}.json")
            ):
                return True
        return self._partition_counts(plan["members"]) != plan.get("partitions", {})

    def _partition_counts(self, members: dict[str, dict]) -> dict[str, int]:
        """Partition count of every topic some member subscribes to."""
        wanted: set[str] = set()
        patterns = []
        for info in members.values():
            if info.get("topics") is not None:
                wanted.update(info["topics"])
            elif info.get("pattern") is not None:
                patterns.append(re.compile(info["pattern"]))
        if patterns:
            for name in self._log.topics():
                if not name.startswith("__") and any(p.fullmatch(name) for p in patterns):
                    wanted.add(name)
        counts = {}
        for name in sorted(wanted):
            try:
                counts[name] = self._log.partition_count(name)
            except MqlogError:
                continue  # deleted meanwhile
        return counts

    # -- the coordinator -----------------------------------------------------------------

    def rebalance(self) -> None:
        """Recompute and publish the plan if it changed (under the coordinator lock)."""
        fd = os.open(os.path.join(self.directory, "coordinator.lock"),
                     os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            plan = read_plan(self.directory)
            own = {self.member_id} if self.member_id else set()
            members = live_members(self.directory, own)
            counts = self._partition_counts(members)
            subscriptions = {}
            for member_id, info in members.items():
                if info.get("topics") is not None:
                    subscriptions[member_id] = set(info["topics"]) & set(counts)
                else:
                    pattern = re.compile(info.get("pattern") or r"(?!)")
                    subscriptions[member_id] = {t for t in counts if pattern.fullmatch(t)}
            previous = {m: [TopicPartition(*tp) for tp in tps]
                        for m, tps in plan["assignment"].items()}
            assignor = ASSIGNORS[self.config.assignor]
            assignment = assignor(subscriptions, counts, previous)
            document = {
                "members": members,
                "partitions": counts,
                "assignment": {m: [list(tp) for tp in tps] for m, tps in assignment.items()},
            }
            if any(document[key] != plan.get(key) for key in document):
                document["generation"] = plan["generation"] + 1
                _write_json_atomically(os.path.join(self.directory, "assignment.json"), document)
        finally:
            os.close(fd)

    # -- applying the plan ---------------------------------------------------------------

    def _apply_plan(self, force: bool = False) -> None:
        path = os.path.join(self.directory, "assignment.json")
        try:
            stat = os.stat(path)
            stamp = (stat.st_ino, stat.st_mtime_ns)
        except FileNotFoundError:
            stamp = None
        if stamp == self._plan_stamp and not force:
            if self._wanted - set(self._owned):
                self._take(self._wanted - set(self._owned))
            return
        self._plan_stamp = stamp
        plan = read_plan(self.directory)
        self._generation = plan["generation"]
        wanted = {TopicPartition(*tp) for tp in plan["assignment"].get(self.member_id, ())}
        self._wanted = wanted  # first: a failing on_revoked must not make us take them back
        self._release(set(self._owned) - wanted, revoke_callback=True)
        self._take(wanted - set(self._owned))

    def _release(self, partitions: set[TopicPartition], revoke_callback: bool) -> None:
        if not partitions:
            return
        consumer = self._consumer
        try:
            if revoke_callback:
                if consumer.config.enable_auto_commit and consumer.group is not None:
                    positions = {tp: a.position for tp, a in consumer._assigned.items()
                                 if tp in partitions and a.position is not None}
                    if positions:
                        consumer._offsets.commit(self.group, positions, self.member_id)
                if self._on_revoked is not None:
                    self._on_revoked(set(partitions))
        finally:  # the partitions go even if the callback or the commit failed
            for tp in partitions:
                fd = self._owned.pop(tp, None)
                if fd is not None:
                    os.close(fd)  # closing releases the flock
            consumer._set_assignment(set(self._owned))

    def _take(self, partitions: set[TopicPartition]) -> None:
        taken = set()
        for tp in sorted(partitions):
            path = os.path.join(self.directory, "owners", f"{tp.topic}.{tp.partition}")
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)  # the previous owner has not let go yet
                continue
            self._owned[tp] = fd
            taken.add(tp)
        if taken:  # new partitions start from the group's committed offset
            self._consumer._set_assignment(set(self._owned))
            if self._on_assigned is not None:
                self._on_assigned(taken)

    # -- the watchdog -----------------------------------------------------------------------

    def _watch(self) -> None:
        limit_s = self.config.max_poll_interval_ms / 1000
        step_s = min(1.0, limit_s / 10)
        while not self._closed:
            time.sleep(step_s)
            if time.monotonic() - self.last_poll > limit_s:
                with self._lock:
                    if self.member_id and not self._closed and (
                        time.monotonic() - self.last_poll > limit_s
                    ):
                        self._drop_membership(revoke_callback=False)
                        self.evicted = True
                        self.rebalance()
