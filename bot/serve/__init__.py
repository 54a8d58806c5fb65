"""`bot serve`: the HTTP API and the web page, over the same pipelines as the CLI.

`run.py` starts uvicorn, `api.py` holds the routes, `guard.py` the safety rules (bearer token,
body limits, JSON errors), `state.py` the warm index and models, `events.py` the streamed answer;
`static/` is the page. FastAPI and uvicorn are imported only here, never by `bot --help` or
`bot ask`.
"""
