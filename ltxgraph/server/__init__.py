"""``ltxgraph serve``: ComfyUI's HTTP and websocket API over ltxgraph, headless, so clients written for ComfyUI
(scripts, bots, front ends) drive ltxgraph unchanged.

Modules: :mod:`.app` (routes and the server), :mod:`.store` (queue and history in SQLite), :mod:`.worker` (the
one thread that runs prompts, models kept warm), :mod:`.prompts` (API-format prompts checked, ComfyUI's error
shapes), :mod:`.messages` (progress as ComfyUI's websocket messages), :mod:`.object_info` (our ops as ComfyUI
node definitions), :mod:`.stats` (/system_stats), :mod:`.safety` (confined paths, size limits, same-origin
check), :mod:`.command` (the CLI). Only :mod:`.app` imports aiohttp.
"""
