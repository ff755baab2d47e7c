"""Tools for whoever reviews the policy: why a decision was taken (`explain`), the policy's
own tests as data with rule coverage (`suites`), and what a policy change grants or revokes
(`diff`). Plain functions over an `AuthzEngine` and the policy files: no Flask globals, so
the CLI (app/cli.py) and the tests call the same code.
"""
