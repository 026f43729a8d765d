"""Drives NATS JetStream with the same shape as `pixstream bench --preload`.

T "ISPBs" are subjects pix.<ispb> of one file-backed stream; each ISPB has one
durable pull consumer read by S concurrent fetchers (fetch up to 10, ack each
message), the JetStream equivalent of S ICOM streams of one participant. The
driver preloads N messages of ~2 KB per ISPB, then drains them and prints one JSON
line: messages, seconds, messages/s, fetches/s. Every loop is bounded by --timeout.
"""

import argparse
import asyncio
import json
import time

import nats
from nats.errors import TimeoutError as NatsTimeout


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="nats://127.0.0.1:4222")
    parser.add_argument("--ispbs", type=int, default=100)
    parser.add_argument("--streams", type=int, default=6)
    parser.add_argument("--preload", type=int, default=100)
    parser.add_argument("--message-bytes", type=int, default=2048)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()

    nc = await nats.connect(args.url)
    js = nc.jetstream()
    await js.add_stream(name="PIX", subjects=["pix.>"])
    ispbs = [f"N{i:07d}" for i in range(args.ispbs)]
    body = b"<Envelope>" + b"x" * max(0, args.message_bytes - 21) + b"</Envelope>"

    started = time.monotonic()
    for ispb in ispbs:
        acks = [js.publish(f"pix.{ispb}", body) for _ in range(args.preload)]
        await asyncio.gather(*acks)
    preload_secs = time.monotonic() - started

    total = args.ispbs * args.preload
    received = 0
    fetches = 0
    deadline = time.monotonic() + args.timeout
    done = asyncio.Event()

    async def fetcher(sub) -> None:
        nonlocal received, fetches
        while not done.is_set() and time.monotonic() < deadline:
            try:
                msgs = await sub.fetch(10, timeout=1)
            except NatsTimeout:
                continue
            fetches += 1
            for msg in msgs:
                await msg.ack()
            received += len(msgs)
            if received >= total:
                done.set()

    subs = []
    for ispb in ispbs:
        subs.append(await js.pull_subscribe(f"pix.{ispb}", durable=f"c{ispb}", stream="PIX"))
    drain_started = time.monotonic()
    tasks = [asyncio.create_task(fetcher(sub)) for sub in subs for _ in range(args.streams)]
    await asyncio.wait([asyncio.create_task(done.wait())], timeout=args.timeout)
    drain_secs = time.monotonic() - drain_started
    done.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    await nc.close()
    print(json.dumps({
        "system": "nats-jetstream",
        "messages": received,
        "expected": total,
        "preload_secs": round(preload_secs, 2),
        "drain_secs": round(drain_secs, 2),
        "messages_per_sec": round(received / drain_secs, 1),
        "fetches_per_min": round(fetches / drain_secs * 60, 1),
    }))


if __name__ == "__main__":
    asyncio.run(main())
