"""An example third-party hookgate plugin package.

hookgate finds these plugins through the ``hookgate.plugins`` entry points declared in
this package's pyproject.toml; nothing here is imported until a config names them:

- `received_at`: the ``add-received-at`` relay middleware;
- `shared_token`: the ``shared-token`` verifier;
- `jsonl_file`: the ``jsonl-file`` target.
"""
