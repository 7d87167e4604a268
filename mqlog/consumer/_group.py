"""A group's files, the rebalance coordinator, and the probes of liveness.

Files of a group, under ``<log>/groups/<group>/``::

    members/<member_id>.json     who the member is and what it subscribes to; its
                                 membership holds an exclusive flock on it while the
                                 member lives, so a killed process leaves at once
    coordinator.lock             flock held while computing an assignment
    assignment.json              {generation, members, partitions, assignment,
                                 assigned_by if a leader assigned}: the latest plan
    owners/<topic>.<partition>   a membership holds an exclusive flock on this file
                                 while its member owns the partition

Protocol. Any membership that notices a change -- a member file appeared, a
member's lock is free (it died or left), a subscribed topic appeared or grew --
calls :func:`rebalance`: under the coordinator lock it works out the live
members (flock probes) and, if they (or their subscriptions, or the partition
counts) differ from the plan's, runs the assignor over their subscriptions
and publishes the new plan with the next generation number. Each membership
applies the plan cooperatively (see ``_membership``): its member gives up the
partitions it lost (revoked first, then their locks released) and takes the
ones it gained as soon as their locks are free.

Invariants. Generations only grow; a published plan assigns each partition of
the subscribed topics to at most one live member; the plan file is replaced
whole (atomic rename), so a reader sees one plan or the next, never a mix.
Queue groups (``queues/<group>/``) use the same member files and lock probes,
not the plan.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
from collections.abc import Set as AbstractSet
from typing import Any

from mqlog.consumer._assignors import ASSIGNORS
from mqlog.consumer._config import TopicPartition
from mqlog.consumer._offsets import OFFSETS_TOPIC, offset_store
from mqlog.errors import ConfigError, MqlogError
from mqlog.logstore import Engine, atomic_write
from mqlog.names import validate_name

#: A JSON document of a group's files (a plan, a member's info), as read or written.
Document = dict[str, Any]

GROUPS_DIR = "groups"
QUEUES_DIR = "queues"


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


def _write_json_atomically(path: str, document: Document) -> None:
    atomic_write(path, json.dumps(document, sort_keys=True).encode())


def read_plan(directory: str) -> Document:
    """The published plan of a group, as its JSON document (generation 0 and
    nothing assigned if none, or if the group has no directory)."""
    try:
        with open(os.path.join(directory, "assignment.json")) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return {"generation": 0, "members": {}, "assignment": {}}


def live_members(directory: str, own: AbstractSet[str] = frozenset(),
                 prune: bool = True) -> dict[str, Document]:
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




def mixed_membership(directory: str, group: str, member_id: str) -> str | None:
    """Why member ``member_id`` may not stay in the group in ``directory``, or
    None: it is local (an embedded consumer) and some live member is remote (a
    server's member for a remote client, such as a Kafka client), or the other
    way round. The two kinds assign partitions differently (the plan's
    assignor, or a remote leader's assignment relayed by the server), so a
    group's live members are all of one kind."""
    members = live_members(directory, {member_id})
    remote = bool(members.get(member_id, {}).get("remote"))
    others = {other: info for other, info in members.items()
              if bool(info.get("remote")) != remote}
    if not others:
        return None
    who = ", ".join(f"{other} (client {info.get('client_id')} on {info.get('host')}"
                    f"{'' if info.get('remote') else ', pid ' + str(info.get('pid'))})"
                    for other, info in sorted(others.items()))
    if remote:
        return (f"group {group!r} has embedded consumers as members: {who}; a client of "
                f"mqlog serve cannot join it while they are members")
    return (f"group {group!r} has members that are clients of mqlog serve (Kafka clients): "
            f"{who}; an embedded consumer cannot join it while they are members")


def member_file(directory: str, member_id: str) -> str:
    """The file of member ``member_id`` of the group in ``directory``."""
    return os.path.join(directory, "members", f"{member_id}.json")


def owner_file(directory: str, tp: TopicPartition) -> str:
    """The file whose flock is the ownership of ``tp`` in the group in ``directory``."""
    return os.path.join(directory, "owners", f"{tp.topic}.{tp.partition}")


def partition_counts(log: Engine, members: dict[str, Document]) -> dict[str, int]:
    """Partition count of every topic some member subscribes to (by name or by
    pattern; internal topics never match a pattern)."""
    wanted: set[str] = set()
    patterns = []
    for info in members.values():
        if info.get("topics") is not None:
            wanted.update(info["topics"])
        elif info.get("pattern") is not None:
            patterns.append(re.compile(info["pattern"]))
    if patterns:
        for name in log.topics():
            if not name.startswith("__") and any(p.fullmatch(name) for p in patterns):
                wanted.add(name)
    counts = {}
    for name in sorted(wanted):
        try:
            counts[name] = log.partition_count(name)
        except MqlogError:
            continue  # deleted meanwhile
    return counts


def subscribed_topics(info: Document, counts: dict[str, int]) -> set[str]:
    """The topics of ``counts`` that the member described by ``info`` subscribes to."""
    if info.get("topics") is not None:
        return set(info["topics"]) & set(counts)
    pattern = re.compile(info.get("pattern") or r"(?!)")
    return {topic for topic in counts if pattern.fullmatch(topic)}


def plan_is_stale(log: Engine, directory: str, own: str) -> bool:
    """Cheap check whether the published plan is out of date: a member joined,
    left or died, or a subscribed topic appeared or grew (``own``: the caller's
    member id, alive by definition)."""
    plan = read_plan(directory)
    planned = set(plan["members"])
    names = {n[:-5] for n in os.listdir(os.path.join(directory, "members"))
             if n.endswith(".json")}
    if names != planned:
        return True
    for member_id in planned:
        if member_id != own and not lock_is_held(member_file(directory, member_id)):
            return True
    return partition_counts(log, plan["members"]) != plan.get("partitions", {})


def _coordinator_lock(directory: str) -> int:
    """An fd holding the group's coordinator lock (closing it releases the lock)."""
    fd = os.open(os.path.join(directory, "coordinator.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


def rebalance(log: Engine, directory: str, own: str, assignor: str) -> Document:
    """Publish a new plan, computed by ``assignor``, with the next generation if
    the live members (and their subscriptions) or the partition counts differ
    from the plan's; return the plan now in force. A plan whose inputs did not
    change stays as it is (so does a leader's, see :func:`install_plan`). Runs
    under the coordinator lock: concurrent coordinators publish one after the
    other."""
    fd = _coordinator_lock(directory)
    try:
        plan = read_plan(directory)
        members = live_members(directory, {own} if own else set())
        counts = partition_counts(log, members)
        if (members, counts) == (plan["members"], plan.get("partitions")):
            return plan
        subscriptions = {member_id: subscribed_topics(info, counts)
                         for member_id, info in members.items()}
        previous = {m: [TopicPartition(*tp) for tp in tps]
                    for m, tps in plan["assignment"].items()}
        assignment = ASSIGNORS[assignor](subscriptions, counts, previous)
        document = {
            "members": members,
            "partitions": counts,
            "assignment": {m: [list(tp) for tp in tps] for m, tps in assignment.items()},
        }
        document["generation"] = plan["generation"] + 1
        _write_json_atomically(os.path.join(directory, "assignment.json"), document)
        return document
    finally:
        os.close(fd)


def install_plan(directory: str, generation: int, leader: str,
                 assignment: dict[str, list[TopicPartition]]) -> Document | None:
    """Replace the assignment of the published plan by the one its leader
    computed (client-side assignment), if the plan is still of ``generation``;
    return the plan now in force, or None when a newer generation came first.
    The plan keeps its generation and records the leader in ``assigned_by``."""
    fd = _coordinator_lock(directory)
    try:
        plan = read_plan(directory)
        if plan["generation"] != generation:
            return None
        plan["assignment"] = {m: [list(tp) for tp in sorted(tps)] for m, tps in assignment.items()}
        plan["assigned_by"] = leader
        _write_json_atomically(os.path.join(directory, "assignment.json"), plan)
        return plan
    finally:
        os.close(fd)
