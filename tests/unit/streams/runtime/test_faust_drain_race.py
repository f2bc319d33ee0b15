"""The cause of issue #26, reproduced on Faust's own drain loop (no broker needed).

Faust's fetcher loop (``Consumer._drain_messages``) hands each fetched record to the streams
and only then records it as read (``set_read_offset``); it drops any record fetched later
below that read offset ("DROPPED MESSAGE ROFF", logged at Faust's dev level only). A seek
(Faust's recovery seeks the stream partitions to their committed offsets when a rebalance
completes, after it has already resumed the fetcher) resets the read offset. When the seek
lands while a record fetched before it is being handed over, the loop then records that
record's offset as read, after the seek: the records between the committed offset and it,
fetched again, are dropped and never reach the agent. With one missing record Faust's commit
rule lets the gap through and commits past it; with two or more at the head it never commits
that partition again. That is issue #26: 2666 and 2667 dropped, 2668 handed over, commits
stuck at 2666.

The person stage's applied-offset marker (``streams/runtime/applied.py``) does not depend on
any of this. If a Faust upgrade fixes the race, this test fails: say so in the docs.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from faust.types import TP
from faust.types.tuples import Message

from streams.runtime.faust_compat import App


def test_a_seek_during_a_hand_over_makes_faust_drop_the_records_fetched_again(tmp_path):
    handed = asyncio.run(asyncio.wait_for(hand_overs_around_a_seek(str(tmp_path)), 10))
    assert handed == [2668, 2668, 2669], f"Faust's drain loop changed: handed {handed}"  # 2666, 2667 never


async def hand_overs_around_a_seek(datadir: str) -> list[int]:
    """The offsets Faust hands to the streams: 2668 fetched before the recovery's seek to the
    committed 2666, which lands while 2668 is being handed over; then 2666-2669 fetched again."""
    app = App("race", broker="kafka://localhost:1", datadir=datadir, web_enabled=False)
    app.finalize()
    consumer = app.consumer
    consumer.app.topics.acks_enabled_for = lambda topic: True
    tp = TP("zhucan.person-commands", 2)
    fetches = [[2668], [2666, 2667, 2668, 2669]]  # fetched before the seek, then again from the commit
    handed: list[int] = []
    seeking, sought = asyncio.Event(), asyncio.Event()
    fetcher = SimpleNamespace(_stopped=asyncio.Event())

    async def getmany(timeout: float):
        if not fetches:
            await asyncio.sleep(0.01)
            fetcher._stopped.set()
            return
        for offset in fetches.pop(0):
            yield tp, Message(tp.topic, tp.partition, offset, 0.0, None, None, None, None, None, None, tp=tp)

    async def hand_over(message: Message) -> None:  # the conductor putting it on the agent's queue
        handed.append(message.offset)
        if len(handed) == 1:
            seeking.set()
            await sought.wait()

    async def recovery_seeks() -> None:  # Recovery.on_recovery_completed -> perform_seek
        await seeking.wait()
        consumer._read_offset[tp] = 2666  # the committed offset
        sought.set()

    consumer.getmany = getmany
    consumer.callback = hand_over
    await asyncio.gather(consumer._drain_messages(fetcher), recovery_seeks())
    return handed
