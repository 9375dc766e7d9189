"""`--serve`: the run seen from a browser, scraped by Prometheus, probed by a health check.

Imported only when `--serve` is given (the command line parses the address with
`realtime.web.address`, which needs nothing beyond the standard library).

- `address`: `[HOST:]PORT`, whether it is loopback, and the token rule.
- `state`: what the pages and the API read, kept by a sink on the inference thread.
- `prometheus`: the `/metrics` text.
- `server`: the HTTP server (standard library, bounded connections, one thread each).
"""
