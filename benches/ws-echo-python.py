"""An echo server with Python websockets (asyncio), for scripts/bench-ws: every
message goes back as it came, no compression, no pings. Prints {"port": N}
once it listens on 127.0.0.1 (ephemeral port)."""
import asyncio
import json

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed


async def echo(ws):
    try:
        async for msg in ws:
            await ws.send(msg)
    except ConnectionClosed:  # the load client ends without a close handshake
        pass


async def main():
    async with serve(echo, "127.0.0.1", 0, compression=None, ping_interval=None, max_size=1 << 24) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(json.dumps({"port": port}), flush=True)
        await asyncio.get_running_loop().create_future()


asyncio.run(main())
