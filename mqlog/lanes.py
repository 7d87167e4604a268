"""Priority lanes: where a record sent with a priority is stored.

A record of priority 0 goes to its topic; one of priority ``p`` (1 to
``PRIORITY_MAX``) to the lane topic ``<topic>.p<p>``, made on first use with
the topic's partition count and config. Producers write lanes
(``Producer.send(priority=...)``) and queue workers read them, highest
priority first (``Log.queue``).
"""

#: Priorities run from 0 (the topic itself) to PRIORITY_MAX (lane topics).
PRIORITY_MAX = 9


def lane_topic(topic: str, priority: int) -> str:
    """The topic that holds ``topic``'s messages of ``priority``: the topic itself
    for 0, ``<topic>.p<priority>`` (a lane) above."""
    return topic if priority == 0 else f"{topic}.p{priority}"
