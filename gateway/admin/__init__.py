"""The admin surface: access (auth.py), the read and replay model (model.py), the JSON API
(api.py), its live stream (stream.py) and the CLI commands that talk to it (cli.py).

The inspector's HTML pages (gateway/ui/) use the same auth and model."""
